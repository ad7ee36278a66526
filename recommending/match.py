"""Taste match: how alike two people's tastes are, from the model, on a 0-100 scale.

The score. Both people are folded into the model, which then predicts the rating each
would give every one of the dataset's `REFERENCE_FILMS` most-rated films, seen or not.
Their agreement is the Pearson correlation r of those two vectors of predicted
ratings: it needs no film in common, since the model predicts what each would think
of films only the other has seen. r is then calibrated against the dataset's own
members: the score is the share (in %) of pairs of members whose predicted ratings
agree less than these two people's do,

    score = 100 * #{member pairs with r_pair < r} / #{member pairs}

read from the sorted correlations of every pair among up to `CALIBRATION_MEMBERS`
members (those with at least `MIN_MEMBER_RATINGS` ratings, drawn with a fixed seed).
A person matched with themselves has r = 1, above every pair of distinct members, so
scores 100; two people with opposite ratings of the same films have r near -1, below
nearly every pair, so score near 0; 50 is a typical pair of members. On a dataset too
small to calibrate (fewer than three such members) the score is 50 * (1 + r).

Beside the score: the films both loved, the biggest disagreements (the two ratings
where both rated the film, else one rating against the other's prediction) and the
films both would love that neither has logged (the group rule of least misery).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recommender.cache import CachedModel
from recommending.filters import FilmFilter
from recommending.group import GroupPick, GroupRequest, GroupRule, group_picks
from recommending.picks import ShownFilm, films_shown
from recommending.taste import UserTaste

REFERENCE_FILMS = 2000
CALIBRATION_MEMBERS = 500
MIN_MEMBER_RATINGS = 20
CALIBRATION_SEED = 0
QUANTILES = 1001                  # of the members' pair correlations, kept sorted
LOVED_RATING = 8                  # 4 stars: "loved"
MIN_DISAGREEMENT = 3              # 1.5 stars apart, at least
FEW_RATINGS = 20                  # under this, the score leans on the community's taste
# The words for a score, from the top: (at least this score, words).
VERDICTS = ((90, "a rare match"), (70, "more alike than most"),
            (30, "about as alike as two members usually are"), (10, "less alike than most"),
            (0, "far apart"))


@dataclass(frozen=True)
class MatchCalibration:
    """What a pair's correlation is read against; computed once per fitted model."""

    reference_films: np.ndarray    # film ids the predicted ratings are compared on
    pair_quantiles: np.ndarray     # sorted: QUANTILES quantiles of member pairs' r
    members: int                   # members the pairs are drawn from (0: uncalibrated)


@dataclass(frozen=True)
class MatchRequest:
    film_filter: FilmFilter = field(default_factory=FilmFilter)  # for the films to see
    shown: int = 10                # films in each part


@dataclass(frozen=True)
class FilmOfTwo:
    """A film and what each of the two gives it: their rating, or the model's guess."""

    film: ShownFilm
    ratings: tuple[float, float]        # 1..10
    predicted: tuple[bool, bool]        # True where the rating is the model's prediction

    @property
    def stars(self) -> tuple[float, float]:
        return (round(self.ratings[0]) / 2, round(self.ratings[1]) / 2)


@dataclass(frozen=True)
class TasteMatch:
    names: tuple[str, str]
    score: int                          # 0..100, see the module's docstring
    correlation: float                  # r of the two people's predicted ratings
    calibrated_on: int                  # members whose pairs calibrate the score
    rated_in_common: int                # films both have rated
    both_loved: tuple[FilmOfTwo, ...]
    disagreements: tuple[FilmOfTwo, ...]
    both_would_love: tuple[GroupPick, ...]
    notes: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        return next(words for floor, words in VERDICTS if self.score >= floor)

    @property
    def meaning(self) -> str:
        """One sentence on what the score means."""
        first, second = self.names
        if not self.calibrated_on:
            return (f"{first} and {second} match {self.score}/100: {self.verdict} "
                    f"(their predicted ratings correlate at {self.correlation:+.2f}).")
        share = (f"more than {self.score}% of" if 0 < self.score < 100 else
                 "as much as any two of" if self.score == 100 else "less than nearly all")
        return (f"{first} and {second} match {self.score}/100, {self.verdict}: their "
                f"predicted ratings agree {share} pairs of the dataset's members do "
                f"(correlation {self.correlation:+.2f}).")


def match_calibration(data: CachedModel) -> MatchCalibration:
    """The reference films and the sorted correlations of member pairs (see the module's
    docstring); the members' fitted profiles are what folding them in would give."""
    model = data.model
    counts = np.asarray(data.rating_counts)
    canonical = np.flatnonzero(np.asarray(data.film_canonical) == np.arange(len(counts)))
    rated = canonical[counts[canonical] > 0]
    reference = np.sort(rated[np.argsort(-counts[rated], kind="stable")[:REFERENCE_FILMS]])
    per_member = np.diff(np.asarray(data.rating_indptr))
    eligible = np.flatnonzero(per_member >= MIN_MEMBER_RATINGS)
    if len(eligible) < 3 or len(reference) < 3:
        return MatchCalibration(reference, np.linspace(-1.0, 1.0, QUANTILES), 0)
    rng = np.random.default_rng(CALIBRATION_SEED)
    members = np.sort(rng.choice(eligible, min(CALIBRATION_MEMBERS, len(eligible)),
                                 replace=False))
    predicted = model.predict_pairs(np.repeat(members, len(reference)),
                                    np.tile(reference, len(members)))
    correlations = _correlations(predicted.reshape(len(members), len(reference)))
    pairs = correlations[np.triu_indices(len(members), 1)]
    pairs = pairs[np.isfinite(pairs)]
    quantiles = np.quantile(pairs, np.linspace(0.0, 1.0, QUANTILES))
    return MatchCalibration(reference, quantiles, len(members))


def _correlations(rows: np.ndarray) -> np.ndarray:
    """Pearson r between every two rows; NaN where a row does not vary."""
    centred = rows.astype(np.float64) - rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = centred / norms[:, None]
        return np.clip(unit @ unit.T, -1.0, 1.0)


def score_of(correlation: float, calibration: MatchCalibration) -> int:
    """0..100: the share of member pairs below `correlation` (see the module's docstring)."""
    if not calibration.members:
        return int(round(50 * (1 + correlation)))
    quantiles = calibration.pair_quantiles
    below = np.searchsorted(quantiles, correlation, side="left")
    at_or_below = np.searchsorted(quantiles, correlation, side="right")
    share = (below + at_or_below) / 2 / len(quantiles)  # ties count half
    return int(round(100 * min(max(share, 0.0), 1.0)))


def _films_of_two(data: CachedModel, films: np.ndarray, ratings: np.ndarray,
                  predicted: np.ndarray) -> tuple[FilmOfTwo, ...]:
    shown = films_shown(data, films.tolist())
    return tuple(FilmOfTwo(shown[int(film)], (float(pair[0]), float(pair[1])),
                           (bool(guess[0]), bool(guess[1])))
                 for film, pair, guess in zip(films, ratings, predicted))


def taste_match(data: CachedModel, first: UserTaste, second: UserTaste,
                request: MatchRequest, calibration: MatchCalibration | None = None
                ) -> TasteMatch:
    """How alike the two tastes are; `calibration` from `match_calibration` (kept on
    disk by match_cache.py), computed here when not given."""
    for taste in (first, second):
        taste.require_films()
    calibration = calibration or match_calibration(data)
    model = data.model
    profiles = [model.fold_in(taste.rated_films, taste.ratings, watched_films=taste.watched)
                for taste in (first, second)]
    reference = calibration.reference_films
    correlation = float(_correlations(np.vstack(
        [model.predict(profile, reference) for profile in profiles]))[0, 1])
    if not np.isfinite(correlation):
        correlation = 0.0

    # Every film either rated, with each one's rating or (where missing) prediction.
    films = np.union1d(first.rated_films, second.rated_films)
    ratings = np.empty((len(films), 2))
    predicted = np.zeros((len(films), 2), dtype=bool)
    for column, (taste, profile) in enumerate(zip((first, second), profiles)):
        own = np.full(len(films), np.nan)
        own[np.searchsorted(films, taste.rated_films)] = taste.ratings
        missing = np.isnan(own)
        own[missing] = model.predict(profile, films[missing])
        ratings[:, column], predicted[:, column] = own, missing
    both = ~predicted.any(axis=1)
    loved = np.flatnonzero(both & (ratings.min(axis=1) >= LOVED_RATING))
    loved = loved[np.lexsort((films[loved], -ratings[loved].sum(axis=1),
                              -ratings[loved].min(axis=1)))][:request.shown]
    # As shown: a prediction counts in the half stars it is shown in.
    apart = np.abs(np.round(ratings[:, 0]) - np.round(ratings[:, 1]))
    disagree = np.flatnonzero(apart >= MIN_DISAGREEMENT)
    disagree = disagree[np.lexsort((films[disagree], predicted[disagree].sum(axis=1),
                                    -apart[disagree]))][:request.shown]
    to_see = group_picks(data, [first, second], GroupRequest(
        film_filter=request.film_filter, rule=GroupRule.LEAST_MISERY, top=request.shown))
    notes = tuple(f"{taste.name} has only {len(taste.rated_films)} ratings in the dataset: "
                  "the score leans on what the community likes"
                  for taste in (first, second) if len(taste.rated_films) < FEW_RATINGS)
    return TasteMatch(
        names=(first.name, second.name), score=score_of(correlation, calibration),
        correlation=correlation, calibrated_on=calibration.members,
        rated_in_common=int(both.sum()),
        both_loved=_films_of_two(data, films[loved], ratings[loved], predicted[loved]),
        disagreements=_films_of_two(data, films[disagree], ratings[disagree],
                                    predicted[disagree]),
        both_would_love=to_see.picks, notes=notes + to_see.notes)
