"""The fitted model and the per-user index it needs, cached next to the dataset.

Reading a multi-million-row ratings CSV takes seconds; recommending must not.
So the first run fits the model on every rating and stores it, with each
user's ratings as compact arrays, under `model/`, keyed by the dataset's
fingerprint. Later runs load plain arrays (never a pickle) in a fraction of a
second. Anything missing, corrupt, truncated or stale is refitted, not trusted.
"""
from __future__ import annotations

import io
import json
import logging
import re
import secrets
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from dataset import layout
from dataset.loading import (RatingsData, dataset_fingerprint, load_film_table,
                             load_ratings_dataset)
from errors import DatasetError, DiskFullError, ModelFileError, UnusableFileError
from films.matching import FilmCatalogue
from progress import ShareBar
from recommender.fit import fit_model
from recommender.model import RecommenderModel
from recommender.model_file import META_FILE, load_model, save_model
from recommender.params import MAX_RATING, MIN_RATING
from safe_files import (check_regular_entries, parse_json_limited, read_regular_file,
                        write_atomically)

logger = logging.getLogger(__name__)

INDEX_META_FILE = "dataset_index.json"
# 4: film_canonical (one film under two slugs counts once)
INDEX_FORMAT = 4
INDEX_FOLDER_PREFIX = "index-"
_INDEX_FOLDER_PATTERN = re.compile(r"index-[0-9a-f]{16}")
_INDEX_FOLDER_GRACE_SECONDS = 600
# A fit's seconds, roughly: a fixed part plus a part per rating, from the fit times in
# BENCHMARKS.md (figure 5) on a quiet machine; only to tell a person how long to wait.
_FIT_FIXED_SECONDS = 2.0
_FIT_SECONDS_PER_RATING = 6e-6
# The index's JSON lists every username: tens of bytes per user.
_MAX_INDEX_META_BYTES = 1 << 30
# Each a plain .npy, memory-mapped on load: a recommendation touches one user's rows,
# so a cache of tens of millions of ratings opens in milliseconds.
INDEX_ARRAYS = ("rating_indptr", "rating_films", "rating_values", "unrated_indptr",
                "unrated_films", "rating_counts", "film_canonical")


@dataclass
class CachedModel:
    """A fitted model plus what the recommender needs to know of the dataset."""

    model: RecommenderModel
    films: pd.DataFrame            # by film id: slug, lid, letterboxd_id, title, year, genres
    usernames: list[str]           # by user id
    rating_indptr: np.ndarray      # CSR by user over (rating_films, rating_values)
    rating_films: np.ndarray
    rating_values: np.ndarray
    unrated_indptr: np.ndarray     # CSR by user over unrated_films
    unrated_films: np.ndarray
    rating_counts: np.ndarray      # ratings per film: the popularity filter
    film_canonical: np.ndarray     # the id that stands for each film (see films/matching.py)
    fingerprint: str               # of the dataset files the model was fitted on

    @cached_property
    def catalogue(self) -> FilmCatalogue:
        """The films as one identity each: matching, titles as shown, aliases."""
        return FilmCatalogue(self.films, canonical=np.asarray(self.film_canonical))

    @cached_property
    def _user_ids(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.usernames)}

    @cached_property
    def _film_ids(self) -> dict[str, int]:
        return {slug: index for index, slug in enumerate(self.films["slug"].tolist())}

    def user_id(self, username: str) -> int | None:
        return self._user_ids.get(username.lower())

    def user_ratings(self, user_id: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.rating_indptr[user_id], self.rating_indptr[user_id + 1]
        ratings = np.asarray(self.rating_values[start:end], dtype=np.int64)
        if len(ratings) and (ratings.min() < MIN_RATING or ratings.max() > MAX_RATING):
            raise ModelFileError("the cached dataset index holds impossible ratings")
        return self._films_in(self.rating_films[start:end]), ratings

    def user_unrated(self, user_id: int) -> np.ndarray:
        start, end = self.unrated_indptr[user_id], self.unrated_indptr[user_id + 1]
        return self._films_in(self.unrated_films[start:end])

    def _films_in(self, films: np.ndarray) -> np.ndarray:
        films = np.asarray(films, dtype=np.int64)
        if len(films) and (films.min() < 0 or films.max() >= len(self.films)):
            raise ModelFileError("the cached dataset index names unknown films")
        return films

    def film_ids_for_slugs(self, slugs: Sequence[str]) -> np.ndarray:
        """Film id per slug, -1 where the dataset does not know the film."""
        return np.array([self._film_ids.get(slug, -1) for slug in slugs], dtype=np.int64)


def _csr(rows: np.ndarray, columns: np.ndarray, n_rows: int,
         values: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    sorted_columns = columns[order].astype(np.int32)
    if values is None:
        return indptr, sorted_columns
    return indptr, sorted_columns, values[order].astype(np.int8)


def build_index(data: RatingsData, canonical: np.ndarray) -> dict[str, np.ndarray]:
    """The per-user index of the dataset's ratings and unrated films (INDEX_ARRAYS), in
    `canonical` film ids as `by_film_identity` gives them."""
    rating_indptr, rating_films, rating_values = _csr(data.user_index, data.film_index,
                                                      data.n_users, data.rating)
    unrated_indptr, unrated_films = _csr(data.unrated_user, data.unrated_film, data.n_users)
    return {"rating_indptr": rating_indptr, "rating_films": rating_films,
            "rating_values": rating_values, "unrated_indptr": unrated_indptr,
            "unrated_films": unrated_films,
            "rating_counts": np.bincount(data.film_index, minlength=data.n_films),
            "film_canonical": canonical.astype(np.int64)}


def by_film_identity(data: RatingsData, canonical: np.ndarray) -> RatingsData:
    """The dataset with each film's ratings moved to its canonical id, so one film stored
    under two slugs counts as one; a user who rated both copies keeps the later rating
    (the later scrape), and an unrated watch of a film they rated is dropped."""
    if np.array_equal(canonical, np.arange(len(canonical))):
        return data
    films = canonical[data.film_index].astype(np.int32)
    key = data.user_index.astype(np.int64) * len(canonical) + films
    # np.unique keeps the first of equal keys: look from the end to keep the later rating.
    _, last = np.unique(key[::-1], return_index=True)
    keep = np.sort(len(key) - 1 - last)
    unrated_films = canonical[data.unrated_film].astype(np.int32)
    unrated_key = data.unrated_user.astype(np.int64) * len(canonical) + unrated_films
    _, first_unrated = np.unique(unrated_key, return_index=True)
    unrated_keep = np.sort(first_unrated)
    unrated_keep = unrated_keep[~np.isin(unrated_key[unrated_keep], key)]
    return replace(data, user_index=data.user_index[keep], film_index=films[keep],
                   rating=data.rating[keep], unrated_user=data.unrated_user[unrated_keep],
                   unrated_film=unrated_films[unrated_keep])


def save_index(directory: Path, arrays: dict[str, np.ndarray], data: RatingsData,
               fingerprint: str) -> None:
    """Write the arrays into a folder of their own, then point the JSON at it.

    Two runs refitting at once (on different data) each fill their own folder, so the
    JSON, replaced last and atomically, always names arrays written together.
    """
    folder = directory / f"{INDEX_FOLDER_PREFIX}{secrets.token_hex(8)}"
    folder.mkdir(parents=True)
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        write_atomically(folder / f"{name}.npy", buffer.getvalue())
    meta = {"format": INDEX_FORMAT, "fingerprint": fingerprint, "folder": folder.name,
            "usernames": data.usernames, "n_films": data.n_films,
            "lengths": {name: len(array) for name, array in arrays.items()}}
    write_atomically(directory / INDEX_META_FILE, json.dumps(meta).encode("utf-8"))
    _remove_old_index_folders(directory, keep=folder.name)


def _remove_old_index_folders(directory: Path, keep: str) -> None:
    """Best effort; a folder younger than a few minutes may be another run's, still filling."""
    cutoff = time.time() - _INDEX_FOLDER_GRACE_SECONDS
    for folder in directory.glob(f"{INDEX_FOLDER_PREFIX}*"):
        try:
            if folder.name != keep and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder)
        except OSError as error:
            logger.debug("could not remove the old index %s: %s", folder, error)


def _load_index(directory: Path, fingerprint: str, n_films: int) -> dict:
    """The stored per-user index (memory-mapped), or ModelFileError if it cannot be trusted."""
    try:
        meta = parse_json_limited(read_regular_file(directory / INDEX_META_FILE,
                                                    _MAX_INDEX_META_BYTES), max_depth=2)
        if meta.get("format") != INDEX_FORMAT or meta.get("fingerprint") != fingerprint:
            raise ModelFileError("the dataset index was built from other data")
        usernames = meta["usernames"]
        folder = meta["folder"]
        if not isinstance(folder, str) or not _INDEX_FOLDER_PATTERN.fullmatch(folder):
            raise ModelFileError("the dataset index names no valid folder")
        if not isinstance(usernames, list):
            raise ModelFileError("the dataset index holds no list of usernames")
        files = [f"{name}.npy" for name in INDEX_ARRAYS]
        check_regular_entries(directory / folder, files=files)  # np.load would wait on a FIFO
        arrays = {name: np.load(directory / folder / file, mmap_mode="r", allow_pickle=False)
                  for name, file in zip(INDEX_ARRAYS, files)}
        lengths = meta["lengths"]
    except ModelFileError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, AttributeError,
            UnusableFileError) as error:
        raise ModelFileError(f"unreadable dataset index ({error})") from None
    n_users = len(usernames)
    if any(arrays[name].ndim != 1 or len(arrays[name]) != lengths.get(name)
           for name in INDEX_ARRAYS):
        raise ModelFileError("the dataset index is truncated or inconsistent")
    for prefix, values in (("rating", "rating_films"), ("unrated", "unrated_films")):
        indptr = np.asarray(arrays[f"{prefix}_indptr"])
        if (indptr.shape != (n_users + 1,) or indptr[0] != 0 or np.any(np.diff(indptr) < 0)
                or indptr[-1] != len(arrays[values])):
            raise ModelFileError("the dataset index is inconsistent")
    canonical = np.asarray(arrays["film_canonical"])
    if (len(arrays["rating_values"]) != len(arrays["rating_films"])
            or len(arrays["rating_counts"]) != n_films or len(canonical) != n_films
            or (n_films and (canonical.min() < 0 or np.any(canonical > np.arange(n_films))))):
        raise ModelFileError("the dataset index is inconsistent")
    arrays["usernames"] = usernames
    return arrays


def fit_time_estimate(n_ratings: int) -> str:
    """How long a fit on `n_ratings` ratings takes, in words: "about 5 s", "about 2 min"."""
    seconds = _FIT_FIXED_SECONDS + _FIT_SECONDS_PER_RATING * n_ratings
    if seconds < 90:
        return f"about {max(1, round(seconds / 5) * 5) if seconds > 10 else round(seconds)} s"
    return f"about {round(seconds / 60)} min"


def _why_fit(model_dir: Path, reason: ModelFileError) -> str:
    """The first words of the line announcing a fit: a first fit is no error."""
    if not (model_dir / META_FILE).exists():
        return "no model yet: fitting one"
    return f"the saved model cannot be used ({reason}): fitting a new one"


def load_or_fit(data_dir: Path, *, refit: bool = False) -> CachedModel:
    """The cached model if it matches the dataset, else a fresh fit saved for next time.

    `refit` replaces a cache that was found damaged after it loaded (the per-user index
    is memory-mapped, so its values are checked only as they are read)."""
    data_dir = Path(data_dir)
    if not (data_dir / layout.STATE_FILE).exists():
        load_ratings_dataset(data_dir)  # says what is missing, and how to build it
    model_dir = data_dir / layout.MODEL_DIR
    fingerprint = dataset_fingerprint(data_dir)
    try:
        if refit:
            raise ModelFileError("the cache was found damaged")
        # Hashing the model file releases the GIL, so it overlaps most of the film table's
        # parsing.
        with ThreadPoolExecutor(max_workers=1) as pool:
            loading = pool.submit(load_model, model_dir, fingerprint)
            try:
                # The fingerprint says the files are the ones validated when the model was
                # fitted...
                films = load_film_table(data_dir, validated_before=True)
            except Exception:
                # ...which only the model can tell: a stale model's error wins (the table
                # is then read again with its checks). Ctrl-C is not caught here.
                loading.result()
                raise
            model = loading.result()
        index = _load_index(model_dir, fingerprint, model.n_films)
        if model.n_films != len(films) or model.n_users != len(index["usernames"]):
            raise ModelFileError("the model does not match the dataset's size")
        logger.debug("using the cached model in %s", model_dir)
    except ModelFileError as reason:
        data = load_ratings_dataset(data_dir)
        if not len(data.rating):
            raise DatasetError(data_dir, "holds no ratings yet: add users with "
                               "`compile_training_data.py continue` first") from None
        canonical = FilmCatalogue(data.films).canonical
        data = by_film_identity(data, canonical)
        logger.info("%s (%s for %s ratings)", _why_fit(model_dir, reason),
                    fit_time_estimate(len(data.rating)), f"{len(data.rating):,}")
        started = time.monotonic()
        with ShareBar("fitting the model") as bar:
            model = fit_model(data.user_index, data.film_index, data.rating, data.n_users,
                              data.n_films, watched=(data.unrated_user, data.unrated_film),
                              progress=bar)
        logger.info("model fitted in %.1f s; later runs reuse it", time.monotonic() - started)
        arrays = build_index(data, canonical)
        try:
            check_regular_entries(data_dir, folders=(layout.MODEL_DIR,))
            save_model(model, model_dir, fingerprint)
            save_index(model_dir, arrays, data, fingerprint)
        except (OSError, UnusableFileError, DiskFullError) as error:
            logger.warning("could not cache the model in %s (%s): the next run fits it again",
                           model_dir, error)
        index = {**arrays, "usernames": data.usernames}
        films = data.films
    usernames = index.pop("usernames")
    return CachedModel(model=model, films=films, usernames=usernames, fingerprint=fingerprint,
                       **index)
