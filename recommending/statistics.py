"""A person's rating statistics against the community, from the cached model's data.

The community is everyone else in the dataset: a member's own stored ratings are
taken out of every film's figures before theirs are compared with them. All of it
is array arithmetic over the cached per-user index: the community's side passes over
every rating, once per fitted model (`community_of`, kept by community_cache.py);
a person's side is a few lookups into it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from errors import ModelFileError
from recommender.cache import CachedModel
from recommender.params import MAX_RATING, MIN_RATING
from recommending.taste import UserTaste

N_VALUES = MAX_RATING - MIN_RATING + 1   # half stars: 1..10
# Members with fewer ratings say little about their range or taste: the percentiles
# compare a person with the members who have at least this many.
MIN_REFERENCE_RATINGS = 10
MIN_GENRE_FILMS = 5      # a genre is judged on at least this many compared films
GENRES_SHOWN = 3         # above and below the community, each
# How far (in stars) from the community's mean a person's mean must be to be called
# generous or harsh; and the percentiles past which a range is wide or narrow.
LEANING_STARS = 0.25
WIDE_PERCENTILE, NARROW_PERCENTILE = 75.0, 25.0
CLOSE_CONSENSUS, FAR_CONSENSUS = 0.6, 0.3
TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class GenreLean:
    genre: str
    films: int              # the person's rated films of this genre the community rated
    difference: float       # stars: their mean minus the community's, on those films


@dataclass(frozen=True)
class DecadeShare:
    decade: int             # 1990 for the 1990s
    films: int              # the person's rated films of that decade
    share: float            # of their rated films with a known year
    community_share: float  # of every rating in the dataset of a film with a known year


@dataclass(frozen=True)
class TasteStatistics:
    name: str
    ratings: int                    # rated films matched to the dataset
    mean_stars: float
    compared_films: int             # of those, films someone else in the dataset rated
    compared_mean_stars: float      # the person's mean on the compared films
    community_mean_stars: float     # mean of the community's mean of each compared film
    spread_stars: float             # standard deviation of the person's ratings
    spread_percentile: float        # share of members (in %) whose ratings spread less
    consensus: float | None         # correlation with the community's means, when defined
    obscurity_percentile: float     # share of members (in %) whose films are more rated
    median_film_ratings: float      # others' ratings of the person's median film
    reference_members: int          # members the percentiles compare with
    histogram: tuple[int, ...]      # the person's ratings of 1..10 (half stars)
    community_histogram: tuple[int, ...]  # others' ratings of the same films
    genres_above: tuple[GenreLean, ...] | None  # None: the dataset has no genres
    genres_below: tuple[GenreLean, ...] | None
    decades: tuple[DecadeShare, ...] | None     # None: the dataset has no years

    @property
    def difference(self) -> float:
        """Stars above (positive) or below the community, film for film."""
        return self.compared_mean_stars - self.community_mean_stars

    @property
    def leaning(self) -> str:
        if self.compared_films == 0:
            return "unknown"
        if self.difference >= LEANING_STARS:
            return "generous"
        if self.difference <= -LEANING_STARS:
            return "harsh"
        return "even-handed"

    @property
    def range(self) -> str:
        if self.spread_percentile >= WIDE_PERCENTILE:
            return "wide"
        if self.spread_percentile <= NARROW_PERCENTILE:
            return "narrow"
        return "typical"

    @property
    def agreement(self) -> str:
        if self.consensus is None:
            return "unknown"
        if self.consensus >= CLOSE_CONSENSUS:
            return "close to the consensus"
        if self.consensus < FAR_CONSENSUS:
            return "often against the consensus"
        return "partly with the consensus"


def _checked_index(data: CachedModel) -> tuple[np.ndarray, np.ndarray]:
    """Every rating's film and value; the index is memory-mapped, so its values are
    checked here as `CachedModel.user_ratings` checks one user's."""
    films = np.asarray(data.rating_films)
    values = np.asarray(data.rating_values)
    if len(values) and (values.min() < MIN_RATING or values.max() > MAX_RATING
                        or films.min() < 0 or films.max() >= len(data.films)):
        raise ModelFileError("the cached dataset index holds impossible ratings or films")
    return films, values


@dataclass(frozen=True)
class Community:
    """What a person is compared with: every member's ratings, summed up once per fitted
    model (two passes over every rating) so that each person costs a few lookups."""

    film_histograms: np.ndarray    # films x 10: ratings of each value, every member's
    members: np.ndarray            # user ids of the members with ratings
    member_ratings: np.ndarray     # by member: how many
    member_spread: np.ndarray      # by member: standard deviation, in stars
    member_obscurity: np.ndarray   # by member: mean log(1 + others who rated each film)


def _percentile_below(reference: np.ndarray, value: float) -> float:
    """Share (in %) of `reference` below `value`, ties counting half. Values equal but for
    rounding tie: a person's figure and a member's are summed in different orders."""
    if not len(reference):
        return 50.0
    tie = np.abs(reference - value) <= TIE_TOLERANCE
    below = np.count_nonzero((reference < value) & ~tie) + 0.5 * np.count_nonzero(tie)
    return float(100.0 * below / len(reference))


def _spread(sums: np.ndarray, squares: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Standard deviation in stars from integer sums of half-star ratings and their
    squares: exact sums, so a person and a member with the same ratings tie exactly."""
    mean = sums / counts
    return np.sqrt(np.maximum(squares / counts - mean * mean, 0.0)) / 2


def community_of(data: CachedModel) -> Community:
    """The community's figures from the cached per-user index."""
    films, values = _checked_index(data)
    keys = films.astype(np.int64) * N_VALUES + (values - MIN_RATING)
    histograms = np.bincount(keys, minlength=len(data.films) * N_VALUES)
    indptr = np.asarray(data.rating_indptr)
    counts = np.diff(indptr)
    members = np.flatnonzero(counts > 0)
    starts = indptr[members]
    n = counts[members]
    others = np.log1p(np.maximum(np.asarray(data.rating_counts) - 1, 0))
    return Community(
        film_histograms=histograms.reshape(len(data.films), N_VALUES).astype(np.int32),
        members=members, member_ratings=n,
        member_spread=_spread(np.add.reduceat(values, starts, dtype=np.int64),
                              np.add.reduceat(np.square(values, dtype=np.int16), starts,
                                              dtype=np.int64), n),
        member_obscurity=np.add.reduceat(others[films], starts) / n)


def _genre_leans(films: pd.DataFrame, rated: np.ndarray, differences: np.ndarray
                 ) -> tuple[tuple[GenreLean, ...], tuple[GenreLean, ...]] | None:
    if "genres" not in films.columns or not (films["genres"].fillna("") != "").any():
        return None
    frame = pd.DataFrame({"genre": films["genres"].fillna("").to_numpy()[rated],
                          "difference": differences})
    frame["genre"] = frame["genre"].str.split("|")
    frame = frame.explode("genre")
    frame = frame[frame["genre"] != ""]
    by_genre = frame.groupby("genre")["difference"].agg(["count", "mean"])
    by_genre = by_genre[by_genre["count"] >= MIN_GENRE_FILMS]
    leans = [GenreLean(str(genre), int(row["count"]), float(row["mean"]) / 2)
             for genre, row in by_genre.iterrows()]
    above = sorted((lean for lean in leans if lean.difference > 0),
                   key=lambda lean: (-lean.difference, lean.genre))
    below = sorted((lean for lean in leans if lean.difference < 0),
                   key=lambda lean: (lean.difference, lean.genre))
    return tuple(above[:GENRES_SHOWN]), tuple(below[:GENRES_SHOWN])


def _decades(data: CachedModel, rated: np.ndarray) -> tuple[DecadeShare, ...] | None:
    years = data.films["year"].to_numpy(dtype="float64", na_value=np.nan)
    known = ~np.isnan(years)
    if not known.any():
        return None
    decades = np.where(known, years // 10 * 10, -1).astype(np.int64)
    community = pd.Series(np.asarray(data.rating_counts)[known]).groupby(decades[known]).sum()
    mine = pd.Series(decades[rated][known[rated]]).value_counts()
    total_mine, total_community = max(int(mine.sum()), 1), max(int(community.sum()), 1)
    return tuple(DecadeShare(int(decade), int(mine.get(decade, 0)),
                             float(mine.get(decade, 0) / total_mine),
                             float(community.get(decade, 0) / total_community))
                 for decade in sorted(set(mine.index) | set(community[community > 0].index)))


def taste_statistics(data: CachedModel, community: Community, taste: UserTaste,
                     member: int | None = None) -> TasteStatistics:
    """`taste` against the community; `member` is the person's user id when they are
    in the dataset, so that their stored ratings are not compared with themselves."""
    rated = np.asarray(taste.rated_films, dtype=np.int64)
    ratings = np.asarray(taste.ratings, dtype=np.int64)
    stored = np.zeros(len(data.films), dtype=np.int64)  # the member's own rating, by film
    if member is not None:
        own_films, own_ratings = data.user_ratings(member)
        stored[own_films] = own_ratings
    histograms = community.film_histograms[rated]  # a copy: fancy indexing
    own = stored[rated]
    histograms[np.flatnonzero(own), own[own > 0] - MIN_RATING] -= 1
    once = np.unique(rated, return_index=True)[1]  # a film an export lists twice counts once
    community_counts = histograms.sum(axis=1)
    compared = community_counts > 0
    values = np.arange(MIN_RATING, MAX_RATING + 1)
    community_means = (histograms[compared] @ values) / community_counts[compared]
    differences = ratings[compared] - community_means
    consensus = None
    if compared.sum() >= 3 and np.ptp(ratings[compared]) > 0 and np.ptp(community_means) > 0:
        consensus = float(np.corrcoef(ratings[compared], community_means)[0, 1])

    reference = community.member_ratings >= MIN_REFERENCE_RATINGS
    if member is not None:
        reference &= community.members != member
    others = np.asarray(data.rating_counts)[rated] - (own > 0)
    obscurity = float(np.log1p(others).mean()) if len(rated) else 0.0
    spread = float(_spread(ratings.sum(), np.square(ratings).sum(), max(len(ratings), 1)))
    leans = _genre_leans(data.films, rated[compared], differences)
    return TasteStatistics(
        name=taste.name, ratings=len(ratings),
        mean_stars=float(ratings.mean() / 2) if len(ratings) else 0.0,
        compared_films=int(compared.sum()),
        compared_mean_stars=float(ratings[compared].mean() / 2) if compared.any() else 0.0,
        community_mean_stars=float(community_means.mean() / 2) if compared.any() else 0.0,
        spread_stars=spread,
        spread_percentile=_percentile_below(community.member_spread[reference], spread),
        consensus=consensus,
        obscurity_percentile=100.0 - _percentile_below(community.member_obscurity[reference],
                                                       obscurity),
        median_film_ratings=float(np.median(others)) if len(others) else 0.0,
        reference_members=int(reference.sum()),
        histogram=tuple(int(n) for n in np.bincount(ratings - MIN_RATING,
                                                    minlength=N_VALUES)),
        community_histogram=tuple(int(n) for n in histograms[once].sum(axis=0)),
        genres_above=leans[0] if leans else None,
        genres_below=leans[1] if leans else None,
        decades=_decades(data, rated))
