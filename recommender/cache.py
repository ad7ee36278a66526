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
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from dataset import layout
from dataset.loading import (RatingsData, dataset_fingerprint, load_film_table,
                             load_ratings_dataset)
from errors import DatasetError, ModelFileError
from recommender.fit import fit_model
from recommender.model import RecommenderModel
from recommender.model_file import load_model, save_model
from recommender.params import MAX_RATING, MIN_RATING
from safe_files import write_atomically

logger = logging.getLogger(__name__)

INDEX_META_FILE = "dataset_index.json"
INDEX_FORMAT = 3
INDEX_FOLDER_PREFIX = "index-"
_INDEX_FOLDER_PATTERN = re.compile(r"index-[0-9a-f]{16}")
_INDEX_FOLDER_GRACE_SECONDS = 600
# Each a plain .npy, memory-mapped on load: a recommendation touches one user's rows,
# so a cache of tens of millions of ratings opens in milliseconds.
INDEX_ARRAYS = ("rating_indptr", "rating_films", "rating_values", "unrated_indptr",
                "unrated_films", "rating_counts")


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
    fingerprint: str               # of the dataset files the model was fitted on

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


def build_index(data: RatingsData) -> dict[str, np.ndarray]:
    """The per-user index of the dataset's ratings and unrated films (INDEX_ARRAYS)."""
    rating_indptr, rating_films, rating_values = _csr(data.user_index, data.film_index,
                                                      data.n_users, data.rating)
    unrated_indptr, unrated_films = _csr(data.unrated_user, data.unrated_film, data.n_users)
    return {"rating_indptr": rating_indptr, "rating_films": rating_films,
            "rating_values": rating_values, "unrated_indptr": unrated_indptr,
            "unrated_films": unrated_films,
            "rating_counts": np.bincount(data.film_index, minlength=data.n_films)}


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
        meta = json.loads((directory / INDEX_META_FILE).read_bytes())
        if meta.get("format") != INDEX_FORMAT or meta.get("fingerprint") != fingerprint:
            raise ModelFileError("the dataset index was built from other data")
        usernames = meta["usernames"]
        folder = meta["folder"]
        if not isinstance(folder, str) or not _INDEX_FOLDER_PATTERN.fullmatch(folder):
            raise ModelFileError("the dataset index names no valid folder")
        arrays = {name: np.load(directory / folder / f"{name}.npy", mmap_mode="r",
                                allow_pickle=False)
                  for name in INDEX_ARRAYS}
        lengths = meta["lengths"]
    except ModelFileError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, AttributeError) as error:
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
    if (len(arrays["rating_values"]) != len(arrays["rating_films"])
            or len(arrays["rating_counts"]) != n_films):
        raise ModelFileError("the dataset index is inconsistent")
    arrays["usernames"] = usernames
    return arrays


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
        logger.info("fitting the model: no usable cached one (%s)", reason)
        data = load_ratings_dataset(data_dir)
        if not len(data.rating):
            raise DatasetError(data_dir, "holds no ratings yet: add users with "
                               "`compile_training_data.py continue` first") from None
        model = fit_model(data.user_index, data.film_index, data.rating, data.n_users,
                          data.n_films, watched=(data.unrated_user, data.unrated_film))
        arrays = build_index(data)
        try:
            save_model(model, model_dir, fingerprint)
            save_index(model_dir, arrays, data, fingerprint)
        except OSError as error:
            logger.warning("could not cache the model in %s (%s): the next run fits it again",
                           model_dir, error)
        index = {**arrays, "usernames": data.usernames}
        films = data.films
    usernames = index.pop("usernames")
    return CachedModel(model=model, films=films, usernames=usernames, fingerprint=fingerprint,
                       **index)
