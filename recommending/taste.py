"""Whose taste: a dataset member's stored films, a public profile read live, or the
person's own Letterboxd export, each turned into the same `UserTaste`."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from config import Config
from errors import BadInputError, ModelFileError, NotFoundError, PrivateError
from films.matching import FilmReference, MatchResult, Unmatched
from letterboxd.export_reader import read_export
from progress import progress_bar
from recommender.cache import CachedModel, load_or_fit

logger = logging.getLogger("letterboxd.recommend")


class TasteSource(Enum):
    """Where a taste was read: it says what is known of when each film was logged."""

    DATASET = "dataset"  # a member's stored films: no dates, as of their latest scrape
    SITE = "site"        # a public profile read now: a films page shows no dates
    EXPORT = "export"    # the person's own export: a date on every row


def _no_films() -> np.ndarray:
    return np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class UserTaste:
    """What we know of the user, in dataset film ids."""

    name: str
    rated_films: np.ndarray       # film ids
    ratings: np.ndarray           # 1..10, aligned with rated_films
    watched: np.ndarray           # every film seen, rated or not
    watchlist: np.ndarray | None  # None when unknown
    source_note: str
    unmatched: tuple[Unmatched, ...] = ()  # logged films the dataset could not be told of
    source: TasteSource | None = None
    # When each film was logged (datetime64[D], NaT where a row had no date); None where
    # the source keeps no dates. rated_on: the latest of a rated film's ratings.csv and
    # diary rows; watched_on: the latest row of any kind logging the film.
    rated_on: np.ndarray | None = None    # aligned with rated_films
    watched_on: np.ndarray | None = None  # aligned with watched
    # Films logged before a `--since` date: never listed again, but not folded in.
    earlier: np.ndarray = field(default_factory=_no_films)

    @property
    def average_stars(self) -> float | None:
        """The user's own average rating in stars: what predicted stars are read against."""
        return float(np.mean(self.ratings)) / 2 if len(self.ratings) else None

    def require_films(self, *, rated: bool = True) -> None:
        """BadInputError unless the dataset knows films of this person: rated ones
        (`rated`, for what needs ratings), else any logged film (a list can start from
        watched films alone)."""
        if not len(self.rated_films) and (rated or not len(self.watched)):
            raise BadInputError(f"{self.name} has no ratings that match the dataset's films")

    @property
    def logged(self) -> np.ndarray:
        """Every film the person has logged, however long ago: none is ever listed."""
        return np.union1d(np.union1d(self.watched, self.rated_films), self.earlier)


def taste_from_dataset(data: CachedModel, username: str) -> UserTaste | None:
    """The stored films of a member, or None when the dataset has none of theirs (never
    scraped, or every scrape failed or found them private): the site is asked then."""
    user_id = data.user_id(username)
    if user_id is None:
        return None
    films, ratings = data.user_ratings(user_id)
    unrated = data.user_unrated(user_id)
    if not len(films) and not len(unrated):
        return None
    return UserTaste(name=username, rated_films=films, ratings=ratings,
                     watched=np.union1d(films, unrated), watchlist=None,
                     source_note=f"{len(films)} ratings stored in the dataset",
                     source=TasteSource.DATASET)


def _first_rating_of_each(films: np.ndarray, ratings: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Matched films once each (a film rated under two slugs keeps its first rating)."""
    matched = films >= 0
    films, ratings = films[matched], ratings[matched]
    _, first = np.unique(films, return_index=True)
    first = np.sort(first)
    return films[first], ratings[first]


def _unique_unmatched(results: Sequence[MatchResult]) -> tuple[Unmatched, ...]:
    """The films no rule found, each once (a film is in ratings and watched alike)."""
    seen: dict[tuple[str, int | None], Unmatched] = {}
    for result in results:
        for missing in result.unmatched:
            key = (missing.reference.describe(), missing.reference.year)
            seen.setdefault(key, missing)
    return tuple(seen.values())


class _PageBar:
    """A bar over a grid's pages; its total grows as the pages read link further ones."""

    def __init__(self, description: str) -> None:
        self._bar = progress_bar(None, description, unit="page", leave=False)

    def __call__(self, pages: int, last_page: int) -> None:
        if last_page != self._bar.total:
            self._bar.total = last_page
            self._bar.n = pages
            self._bar.refresh()  # now with a total: the percentage and time left
        else:
            self._bar.update(pages - self._bar.n)

    def __enter__(self) -> "_PageBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()


def taste_from_site(data: CachedModel, username: str, config: Config) -> UserTaste:
    """A public profile's films, ratings and watchlist, read through the polite fetcher."""
    # Imported here: the HTTP stack costs a tenth of a second that offline runs need not pay.
    from fetch_ratings import Fetcher
    from read_in_data import scrape_user_films, scrape_watchlist

    with Fetcher(config) as fetcher:
        try:
            with _PageBar(f"reading the films of {username}") as on_page:
                scraped = scrape_user_films(fetcher, username, on_page)
        except NotFoundError:
            raise BadInputError(f"there is no Letterboxd user {username!r}") from None
        except PrivateError:
            raise BadInputError(f"the films of {username!r} are not public") from None
        try:
            with _PageBar(f"reading the watchlist of {username}") as on_page:
                watchlist_tiles = scrape_watchlist(fetcher, username, on_page)
        except (NotFoundError, PrivateError):
            watchlist_tiles = None
    catalogue = data.catalogue

    def references(tiles) -> list[FilmReference]:
        return [FilmReference(tile.title, tile.year, tile.lid, tile.slug) for tile in tiles]

    seen = catalogue.match(references(scraped.films))
    ratings = np.array([tile.rating or 0 for tile in scraped.films], dtype=np.int64)
    rated_films, rated_values = _first_rating_of_each(np.where(ratings > 0, seen.film_ids, -1),
                                                      ratings)
    watchlist = None
    if watchlist_tiles is not None:
        wanted = catalogue.match(references(watchlist_tiles)).film_ids
        watchlist = np.unique(wanted[wanted >= 0])
    return UserTaste(
        name=username, rated_films=rated_films, ratings=rated_values,
        watched=np.unique(seen.film_ids[seen.film_ids >= 0]), watchlist=watchlist,
        source_note=f"scraped {len(scraped.films)} films ({int((ratings > 0).sum())} rated) "
        f"from {config.base_url}; {len(rated_films)} rated films are in the dataset",
        unmatched=seen.unmatched, source=TasteSource.SITE)


def taste_from_export(data: CachedModel, path: Path) -> UserTaste:
    """The person's own export ZIP or folder: no network at all. Every film it logs
    (rated, watched, liked or in the diary) is matched, so none is ever shown back."""
    export = read_export(path)
    catalogue = data.catalogue
    rated = catalogue.match([film.reference for film in export.ratings])
    logged = catalogue.match([film.reference for film in export.logged])
    wanted = catalogue.match([film.reference for film in export.watchlist])
    ratings = np.array([film.rating for film in export.ratings], dtype=np.int64)
    rated_films, rated_values = _first_rating_of_each(rated.film_ids, ratings)
    watched = np.unique(logged.film_ids[logged.film_ids >= 0])
    unmatched = _unique_unmatched([logged])
    # export.logged is ratings, watched, liked, then diary rows: a rating's date is its
    # ratings.csv row's or a diary entry's, never the day it was bulk-marked watched.
    dates = np.array([film.date for film in export.logged], dtype="datetime64[D]")
    rating_rows = np.zeros(len(export.logged), dtype=bool)
    rating_rows[:len(export.ratings)] = True
    rating_rows[len(export.logged) - len(export.diary):] = True
    return UserTaste(
        name=path.name, rated_films=rated_films, ratings=rated_values, watched=watched,
        watchlist=np.unique(wanted.film_ids[wanted.film_ids >= 0]),
        source_note=f"matched {rated.matched} of {len(export.ratings)} rated films, "
        f"{len(watched)} films logged in all, and {wanted.matched} of "
        f"{len(export.watchlist)} watchlist films to the dataset",
        unmatched=unmatched, source=TasteSource.EXPORT,
        rated_on=_latest_dates(np.where(rating_rows, logged.film_ids, -1), dates, rated_films),
        watched_on=_latest_dates(logged.film_ids, dates, watched))


def _latest_dates(row_films: np.ndarray, row_dates: np.ndarray, films: np.ndarray
                  ) -> np.ndarray:
    """Per film of `films`, the latest date of the rows naming it (-1: no film), NaT
    where none has a date."""
    known = (row_films >= 0) & ~np.isnat(row_dates)
    latest = pd.Series(row_dates[known]).groupby(row_films[known]).max()
    return latest.reindex(films).to_numpy(dtype="datetime64[D]")


def describe_unmatched(unmatched: Sequence[Unmatched], shown: int = 5) -> str:
    """One line naming the first few films the dataset could not be told of."""
    names = [missing.reference.describe() for missing in unmatched[:shown]]
    more = len(unmatched) - len(names)
    return (f"{len(unmatched)} logged films are not in the dataset: " + "; ".join(names)
            + (f" and {more} more (-v lists them all)" if more > 0 else ""))


def unmatched_details(unmatched: Sequence[Unmatched]) -> list[str]:
    """A line per film the dataset could not be told of, with the reason and the nearest."""
    return [f"not matched: {missing.reference.describe()}: {missing.reason}"
            + (f" (closest: {missing.closest})" if missing.closest else "")
            for missing in unmatched]


def taste_of_username(data: CachedModel, username: str, config: Config, *,
                      refresh: bool) -> tuple[CachedModel, UserTaste]:
    """A member's stored taste, else (or with `refresh`) their public profile.

    A damaged cache is refitted once, so the model in use is returned with the taste.
    """
    try:
        taste = None if refresh else taste_from_dataset(data, username)
    except ModelFileError as damage:
        logger.warning("%s: fitting the model again", damage)
        data = load_or_fit(config.data_dir, refit=True)
        taste = taste_from_dataset(data, username)
    if taste is None:
        logger.info("no stored films of %s (or --refresh): reading their profile from %s",
                    username, config.base_url)
        taste = taste_from_site(data, username, config)
    return data, taste
