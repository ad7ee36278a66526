"""The fitted model and what it needs of the dataset, cached next to the dataset.

Reading a multi-million-row ratings CSV takes seconds; recommending must not.
So the first run fits the model on every rating and stores it under `model/`, keyed
by the dataset's fingerprint, with the dataset's index (`dataset_index`: each user's
ratings as compact arrays, and lookups of usernames and boxd.it ids) and a binary copy
of the film table (`film_copy`). Later runs map plain arrays (never a pickle) in a
fraction of a second. Anything missing, corrupt, truncated or stale is refitted (or,
for the film table's copy, made again from the CSV), not trusted.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from dataset import layout
from dataset.loading import (RatingsData, dataset_fingerprint, load_film_table,
                             load_ratings_dataset)
from errors import DatasetError, DiskFullError, ModelFileError, UnusableFileError
from films.matching import FilmCatalogue
from films.name_lookup import NameLookup
from progress import ShareBar
from recommender.dataset_index import build_index, load_index, save_index
from recommender.film_copy import load_film_copy, save_film_copy
from recommender.fit import fit_model
from recommender.model import RecommenderModel
from recommender.model_file import META_FILE, load_model, save_model
from recommender.params import MAX_RATING, MIN_RATING
from safe_files import check_regular_entries

logger = logging.getLogger(__name__)

# A fit's seconds, roughly: a fixed part plus a part per rating, from the fit times in
# BENCHMARKS.md (figure 5) on a quiet machine; only to tell a person how long to wait.
_FIT_FIXED_SECONDS = 2.0
_FIT_SECONDS_PER_RATING = 6e-6


@dataclass
class CachedModel:
    """A fitted model plus what the recommender needs to know of the dataset."""

    model: RecommenderModel
    films: pd.DataFrame            # by film id: slug, lid, letterboxd_id, title, year, genres
    users: NameLookup              # username -> user id
    lids: NameLookup               # boxd.it id -> the first film holding it
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
        return FilmCatalogue(self.films, canonical=np.asarray(self.film_canonical),
                             lids=self.lids)

    @cached_property
    def _film_ids(self) -> dict[str, int]:
        return {slug: index for index, slug in enumerate(self.films["slug"].tolist())}

    def user_id(self, username: str) -> int | None:
        found = int(self.users.find([username.lower()])[0])
        return found if found >= 0 else None

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


def _cached_model(model: RecommenderModel, films: pd.DataFrame, index: dict[str, np.ndarray],
                  fingerprint: str) -> CachedModel:
    arrays = dict(index)
    users = NameLookup(arrays.pop("user_names"), arrays.pop("user_ids"))
    lids = NameLookup(arrays.pop("lid_names"), arrays.pop("lid_films"))
    return CachedModel(model=model, films=films, users=users, lids=lids,
                       fingerprint=fingerprint, **arrays)


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


def _films_of(data_dir: Path, model_dir: Path, fingerprint: str) -> tuple[pd.DataFrame, bool]:
    """The film table from its copy beside the model, else from the CSV (and whether the
    copy should be written again, once the model says the CSV is the one it was fitted on)."""
    try:
        return load_film_copy(model_dir, fingerprint), False
    except ModelFileError as reason:
        logger.debug("reading the film table from its CSV: %s", reason)
    # The fingerprint says the file is the one validated when the model was fitted, if
    # the model turns out to be of this fingerprint.
    return load_film_table(data_dir, validated_before=True), True


def _save_cache(data_dir: Path, then: str, *saves: Callable[[Path], None]) -> None:
    """Best effort: a folder that cannot hold the cache only costs the next run `then`."""
    model_dir = data_dir / layout.MODEL_DIR
    try:
        check_regular_entries(data_dir, folders=(layout.MODEL_DIR,))
        for save in saves:
            save(model_dir)
    except (OSError, UnusableFileError, DiskFullError) as error:
        logger.warning("could not cache the model in %s (%s): the next run %s", model_dir,
                       error, then)


def load_or_fit(data_dir: Path, *, refit: bool = False) -> CachedModel:
    """The cached model if it matches the dataset, else a fresh fit saved for next time.

    `refit` replaces a cache that was found damaged after it loaded (the index is
    memory-mapped, so its values are checked only as they are read)."""
    data_dir = Path(data_dir)
    if not (data_dir / layout.STATE_FILE).exists():
        load_ratings_dataset(data_dir)  # says what is missing, and how to build it
    model_dir = data_dir / layout.MODEL_DIR
    fingerprint = dataset_fingerprint(data_dir)
    try:
        if refit:
            raise ModelFileError("the cache was found damaged")
        # A model not checked yet is hashed in a thread (hashing releases the GIL) while
        # the film table is read.
        with ThreadPoolExecutor(max_workers=1) as pool:
            loading = pool.submit(load_model, model_dir, fingerprint)
            try:
                films, copy_films = _films_of(data_dir, model_dir, fingerprint)
            except Exception:
                # A stale model's error wins (the table is then read again with its
                # checks). Ctrl-C is not caught here.
                loading.result()
                raise
            model = loading.result()
        if model.n_films != len(films):
            raise ModelFileError("the model does not match the dataset's size")
        index = load_index(model_dir, fingerprint, films)
        if model.n_users != len(index["rating_indptr"]) - 1:
            raise ModelFileError("the model does not match the dataset's size")
        if copy_films:
            _save_cache(data_dir, "reads the film table's CSV again",
                        lambda folder: save_film_copy(folder, films, fingerprint))
        logger.debug("using the cached model in %s", model_dir)
        return _cached_model(model, films, index, fingerprint)
    except ModelFileError as reason:
        return _fit_and_save(data_dir, fingerprint, reason)


def _fit_and_save(data_dir: Path, fingerprint: str, reason: ModelFileError) -> CachedModel:
    """Fit on every rating of the dataset, and cache the model, index and film table."""
    model_dir = data_dir / layout.MODEL_DIR
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
    index = build_index(data, canonical)
    _save_cache(data_dir, "fits it again", lambda folder: save_model(model, folder, fingerprint),
                lambda folder: save_index(folder, index, fingerprint),
                lambda folder: save_film_copy(folder, data.films, fingerprint))
    return _cached_model(model, data.films, index, fingerprint)
