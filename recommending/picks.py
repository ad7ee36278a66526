"""The list itself: the films a user will most likely love among those they may be shown."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple, Sequence

import numpy as np

from errors import BadInputError
from letterboxd.urls import film_url, short_link
from recommender.cache import CachedModel
from recommending.taste import UserTaste

logger = logging.getLogger("letterboxd.recommend")

UNKNOWN_WATCHLIST = ("the dataset stores no watchlists and a private one cannot be read; add "
                     "--refresh to read it from a public profile, or use --export")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class WatchlistUse(Enum):
    EXCLUDE = "exclude"  # the user knows of those films already
    ONLY = "only"
    BOOST = "boost"      # included and ranked higher


@dataclass(frozen=True)
class Recommendation:
    rank: int
    slug: str
    title: str
    year: int | None
    lid: str
    predicted_rating: float   # 1..10 scale
    because: tuple[str, ...]  # "Title (Year)" of loved films most like it
    on_watchlist: bool

    @property
    def predicted_stars(self) -> float:
        return round(self.predicted_rating) / 2

    @property
    def uri(self) -> str:
        return short_link(self.lid) if self.lid else film_url(self.slug)


def candidate_mask(data: CachedModel, taste: UserTaste, allowed: np.ndarray,
                   watchlist: WatchlistUse) -> np.ndarray:
    """The allowed films this user has not seen (under any of a film's slugs), with their
    watchlist as asked."""
    mask = allowed.copy()
    mask[data.catalogue.same_films(taste.logged)] = False
    if watchlist is WatchlistUse.ONLY:
        if taste.watchlist is None:
            raise BadInputError(f"the watchlist of {taste.name} is not known: {UNKNOWN_WATCHLIST}")
        on_watchlist = np.zeros(len(mask), dtype=bool)
        on_watchlist[taste.watchlist] = True
        mask &= on_watchlist
    elif watchlist is WatchlistUse.EXCLUDE and taste.watchlist is not None:
        mask[taste.watchlist] = False
    return mask


def recommend(data: CachedModel, taste: UserTaste, allowed: np.ndarray, *, top: int,
              watchlist: WatchlistUse = WatchlistUse.EXCLUDE
              ) -> tuple[list[Recommendation], str | None]:
    """The ranked list among the `allowed` films and, for a cold start, a note saying
    why it is popularity-based."""
    model = data.model
    profile = model.fold_in(taste.rated_films, taste.ratings, watched_films=taste.watched)
    mask = candidate_mask(data, taste, allowed, watchlist)
    if watchlist is WatchlistUse.BOOST and taste.watchlist is None:
        logger.warning("--boost-watchlist: the watchlist of %s is not known: %s", taste.name,
                       UNKNOWN_WATCHLIST)
    boosted = taste.watchlist if watchlist is WatchlistUse.BOOST else None
    chosen = model.pick(profile, top, allowed=mask, boosted=boosted)
    best = chosen.films
    note = None
    if chosen.cold_start:
        note = (f"only {len(taste.rated_films)} of this user's ratings match the dataset: "
                "showing the dataset's most loved films instead of personal picks")
    predicted = model.predict(profile, best)
    on_watchlist = set() if taste.watchlist is None else set(taste.watchlist.tolist())
    reasons = dict(zip(best.tolist(), [()] * len(best) if note
                       else model.explain_each(profile, best.tolist())))
    shown = films_shown(data, [*reasons, *(other for found in reasons.values()
                                          for other in found)])
    picks = []
    for rank, (film_id, rating) in enumerate(zip(best.tolist(), predicted.tolist()), start=1):
        film = shown[film_id]
        # With the year: many films share a title, and a reason must not look like the pick.
        because = tuple(shown[other].label for other in reasons[film_id])
        picks.append(Recommendation(
            rank=rank, slug=film.slug, title=film.title, year=film.year, lid=film.lid,
            predicted_rating=float(rating), because=because,
            on_watchlist=film_id in on_watchlist))
    return picks, note


class ShownFilm(NamedTuple):
    title: str
    year: int | None
    slug: str
    lid: str

    @property
    def label(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title

    @property
    def uri(self) -> str:
        return short_link(self.lid) if self.lid else film_url(self.slug)


def films_shown(data: CachedModel, film_ids: Sequence[int]) -> dict[int, ShownFilm]:
    """The films a list names, as the catalogue shows them (a title spelled out from the
    slug where the metadata has none); titles lose control characters (a scraped or
    imported title must not drive the terminal)."""
    ids = sorted(set(film_ids))
    shown = data.catalogue.shown_each(ids)
    slugs, lids = data.films["slug"].iloc[ids], data.films["lid"].iloc[ids].fillna("")
    return {film_id: ShownFilm(_CONTROL_CHARACTERS.sub("", title), year or None, slug, lid)
            for film_id, (title, year), slug, lid in zip(ids, shown, slugs, lids)}
