"""Whose taste: a dataset member's stored films, a public profile read live, or the
person's own Letterboxd export, each turned into the same `UserTaste`."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from config import Config
from errors import BadInputError, ModelFileError, NotFoundError, PrivateError
from letterboxd.export_reader import FilmMatcher, read_export
from presentation.progress import progress_bar
from recommender.cache import CachedModel, load_or_fit

logger = logging.getLogger("letterboxd.recommend")


@dataclass(frozen=True)
class UserTaste:
    """What we know of the user, in dataset film ids."""

    name: str
    rated_films: np.ndarray       # film ids
    ratings: np.ndarray           # 1..10, aligned with rated_films
    watched: np.ndarray           # every film seen, rated or not
    watchlist: np.ndarray | None  # None when unknown
    source_note: str

    @property
    def average_stars(self) -> float | None:
        """The user's own average rating in stars: what predicted stars are read against."""
        return float(np.mean(self.ratings)) / 2 if len(self.ratings) else None


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
                     source_note=f"{len(films)} ratings stored in the dataset")


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
    film_ids = data.film_ids_for_slugs([tile.slug for tile in scraped.films])
    ratings = np.array([tile.rating or 0 for tile in scraped.films], dtype=np.int64)
    rated = (film_ids >= 0) & (ratings > 0)
    watchlist = None
    if watchlist_tiles is not None:
        ids = data.film_ids_for_slugs([tile.slug for tile in watchlist_tiles])
        watchlist = np.unique(ids[ids >= 0])
    return UserTaste(
        name=username, rated_films=film_ids[rated], ratings=ratings[rated],
        watched=np.unique(film_ids[film_ids >= 0]), watchlist=watchlist,
        source_note=f"scraped {len(scraped.films)} films ({int((ratings > 0).sum())} rated) "
        f"from {config.base_url}; {int(rated.sum())} rated films are in the dataset")


def taste_from_export(data: CachedModel, path: Path) -> UserTaste:
    """The person's own export ZIP or folder: no network at all."""
    export = read_export(path)
    matcher = FilmMatcher(data.films)
    rated_ids = matcher.match_all(export.ratings)
    ratings = np.array([film.rating for film in export.ratings], dtype=np.int64)
    matched = rated_ids >= 0
    seen = [rated_ids, matcher.match_all(export.watched), matcher.match_all(export.liked)]
    watched = np.unique(np.concatenate(seen))
    watchlist = matcher.match_all(export.watchlist)
    return UserTaste(
        name=path.name, rated_films=rated_ids[matched], ratings=ratings[matched],
        watched=watched[watched >= 0], watchlist=np.unique(watchlist[watchlist >= 0]),
        source_note=f"matched {int(matched.sum())} of {len(export.ratings)} rated films "
        f"and {int((watchlist >= 0).sum())} of {len(export.watchlist)} watchlist films "
        "to the dataset")


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
