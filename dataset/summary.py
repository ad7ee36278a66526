"""What a dataset holds, in figures: for people who use the CSVs rather than the model."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from dataset.layout import format_time
from dataset.loading import RatingsData
from films.matching import FilmCatalogue

MOST_RATED_SHOWN = 10
# Upper bounds (days) of the age groups of scrapes; the last group is everything older.
AGE_GROUPS_DAYS = (7, 30, 90, 365)


@dataclass(frozen=True)
class RatedFilm:
    slug: str
    title: str
    year: int | None
    ratings: int
    mean_stars: float


@dataclass(frozen=True)
class ScrapeAges:
    """When the rated users' current data was read (UTC, ISO 8601), and how long ago."""

    oldest: str | None
    median: str | None
    newest: str | None
    users_by_age: dict[str, int]   # "under 7 days", "7 to 30 days", ..., "over 365 days"


@dataclass(frozen=True)
class DatasetSummary:
    users: int                 # in the user mappings: rated, private, gone or unread
    rated_users: int           # with at least one current rating
    films: int                 # in the film mappings
    rated_films: int
    ratings: int
    watched_unrated: int       # films logged without a rating
    density: float             # ratings / (rated users x rated films)
    mean_stars: float
    histogram: tuple[int, ...]  # ratings of 1..10 half stars
    median_ratings_per_user: float
    most_ratings_by_a_user: int
    median_ratings_per_film: float
    most_rated: tuple[RatedFilm, ...]
    scrapes: ScrapeAges


def _age_label(index: int) -> str:
    bounds = AGE_GROUPS_DAYS
    if index == 0:
        return f"under {bounds[0]} days"
    if index == len(bounds):
        return f"over {bounds[-1]} days"
    return f"{bounds[index - 1]} to {bounds[index]} days"


def _scrape_ages(data: RatingsData, rated_users: np.ndarray, now: datetime) -> ScrapeAges:
    if data.last_scraped is None:
        raise ValueError("the summary needs the dataset loaded with scrape_times=True")
    times = pd.Series(data.last_scraped[rated_users]).dropna()
    if times.empty:
        return ScrapeAges(None, None, None, {})
    days = (pd.Timestamp(now) - times).dt.total_seconds().to_numpy() / 86_400
    groups = np.searchsorted(np.asarray(AGE_GROUPS_DAYS, dtype=np.float64), days, side="right")
    counts = np.bincount(groups, minlength=len(AGE_GROUPS_DAYS) + 1)
    return ScrapeAges(oldest=format_time(times.min().to_pydatetime()),
                      median=format_time(times.quantile(0.5).to_pydatetime()),
                      newest=format_time(times.max().to_pydatetime()),
                      users_by_age={_age_label(index): int(count)
                                    for index, count in enumerate(counts)})


def _most_rated(data: RatingsData, counts: np.ndarray, sums: np.ndarray) -> tuple[RatedFilm, ...]:
    # Most ratings first; ties by film id, i.e. the film the dataset met first.
    order = np.lexsort((np.arange(len(counts)), -counts))[:MOST_RATED_SHOWN]
    catalogue = FilmCatalogue(data.films)  # titles as shown: spelled out where unknown
    return tuple(RatedFilm(slug=str(data.films["slug"].iloc[film]),
                           title=str(catalogue.titles[film]),
                           year=int(catalogue.years[film]) or None,
                           ratings=int(counts[film]),
                           mean_stars=float(sums[film] / counts[film] / 2))
                 for film in order.tolist() if counts[film] > 0)


def summarize(data: RatingsData, now: datetime) -> DatasetSummary:
    """The figures of `data`, loaded with `scrape_times=True`; ages are counted up to `now`."""
    per_user = np.bincount(data.user_index, minlength=data.n_users)
    per_film = np.bincount(data.film_index, minlength=data.n_films)
    sums = np.bincount(data.film_index, weights=data.rating, minlength=data.n_films)
    rated_users = np.flatnonzero(per_user)
    rated_films = np.flatnonzero(per_film)
    n_ratings = len(data.rating)
    cells = len(rated_users) * len(rated_films)
    return DatasetSummary(
        users=data.n_users, rated_users=len(rated_users), films=data.n_films,
        rated_films=len(rated_films), ratings=n_ratings,
        watched_unrated=len(data.unrated_film),
        density=n_ratings / cells if cells else 0.0,
        mean_stars=float(data.rating.mean() / 2) if n_ratings else 0.0,
        histogram=tuple(int(n) for n in np.bincount(data.rating, minlength=11)[1:]),
        median_ratings_per_user=float(np.median(per_user[rated_users])) if n_ratings else 0.0,
        most_ratings_by_a_user=int(per_user.max(initial=0)),
        median_ratings_per_film=float(np.median(per_film[rated_films])) if n_ratings else 0.0,
        most_rated=_most_rated(data, per_film, sums),
        scrapes=_scrape_ages(data, rated_users, now))
