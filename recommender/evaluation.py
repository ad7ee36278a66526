"""How good the recommender is, against the baselines it has to beat.

Protocol (reproducible from one seed):

* Held-out users: a random set of users (300 by default, among those with at
  least 10 ratings) is removed; everything is fitted on everyone else. Each
  held-out user is folded in from a random 80% of their ratings and scored on
  the other 20%: RMSE and MAE of the predicted ratings, and recall@50 and
  NDCG@50 of the hidden films they rated >= 8, ranking every film not in the
  fold-in part. This is exactly how a new user meets the model.
* 3-fold cross-validated RMSE over all ratings (random rating-level folds);
  users and films missing from a training fold fall back to biases and means.
* On the builder's own dataset, films watched without a rating are used as the
  product uses them: in fitting, in fold-in, and left out of every ranking.

Baselines: the global mean, user + film biases (regularised), and popularity
(films ordered by how many ratings at the relevance threshold, 8 by default, they have;
stars = damped film mean).

    python recommend.py --evaluate [RATINGS.csv[.gz]] [--seed S]
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from dataset.importer import read_published_ratings
from progress import ShareProgress, share_of
from recommender.fit import fit_model
from recommender.linalg import top_n
from recommender.params import MAX_RATING, MIN_RATING, ModelParams
from recommender.rating import fit_biases

logger = logging.getLogger(__name__)

FOLD_IN_FRACTION = 0.8
MIN_HOLDOUT_RATINGS = 10
TOP_K = 50
CV_FOLDS = 3
# Regularisation of the biases baseline, tuned like the model on a split other than seed 0.
BASELINE_USER_REG = 2.0
BASELINE_FILM_REG = 2.0
# Where the protocol's parts end, as shares of its time (fit, held-out users, CV): only
# for the progress bar, so that its time left holds from part to part.
_FIT_ENDS = 0.2
_USERS_END = 0.77


class RatingsTable(NamedTuple):
    """Ratings as dense 0-based index arrays: what `evaluate` and the model take."""

    user_index: np.ndarray  # int32
    film_index: np.ndarray  # int32
    ratings: np.ndarray     # int8, 1..10
    n_users: int
    n_films: int


@dataclass(frozen=True)
class MethodScores:
    """One row of the table; None where a method does not do that job."""

    name: str
    rmse: float | None
    mae: float | None
    recall: float | None
    ndcg: float | None
    cv_rmse: float | None


@dataclass(frozen=True)
class EvaluationReport:
    seed: int
    n_ratings: int
    n_users: int
    n_films: int
    holdout_users: int
    ranked_users: int         # held-out users with at least one relevant hidden film
    hidden_ratings: int
    relevance_threshold: int
    top_k: int
    methods: tuple[MethodScores, ...]
    fit_seconds: float        # the model, on the training users
    per_user_ms: float        # fold-in + rank + predict + explain, mean over held-out users

    def method(self, name: str) -> MethodScores:
        for scores in self.methods:
            if scores.name == name:
                return scores
        raise KeyError(name)


MODEL = "model (ranking + rating)"
RANKED_BY_STARS = "rating model, ranked by stars"
GLOBAL_MEAN = "global mean"
BIASES = "user + film biases"
POPULARITY = "popularity"


# --- loading -----------------------------------------------------------------------

def load_ratings_table(path: Path) -> RatingsTable:
    """A ratings file in the Kaggle layout as dense indices, read by the one reader of that
    layout (`dataset.importer.read_published_ratings`); ids follow first appearance."""
    published = read_published_ratings(Path(path))
    user_index, users = pd.factorize(published.usernames)
    film_index, films = pd.factorize(published.slugs)
    return RatingsTable(user_index.astype(np.int32), film_index.astype(np.int32),
                        published.ratings.astype(np.int8), len(users), len(films))


# --- metrics -----------------------------------------------------------------------

def ranking_metrics(ranked: np.ndarray, relevant: np.ndarray, k: int) -> tuple[float, float]:
    """Recall@k and binary NDCG@k of one user's top-k list."""
    hits = np.isin(ranked[:k], relevant)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = discounts[:min(k, len(relevant))].sum()
    return hits.sum() / len(relevant), float((hits * discounts[:len(hits)]).sum() / ideal)


def top_k(scores: np.ndarray, excluded: np.ndarray, k: int) -> np.ndarray:
    """The k best films outside `excluded` (the fold-in part), best first."""
    scores = scores.astype(np.float64)
    scores[excluded] = -np.inf
    return top_n(scores, k)


@dataclass
class _Accumulator:
    """Errors and ranking metrics of one method over the held-out users."""

    errors: list[np.ndarray]
    recalls: list[float]
    ndcgs: list[float]

    @classmethod
    def empty(cls) -> "_Accumulator":
        return cls([], [], [])

    def scores(self, name: str, cv_rmse: float | None) -> MethodScores:
        errors = np.concatenate(self.errors) if self.errors else None
        return MethodScores(
            name=name,
            rmse=None if errors is None else float(np.sqrt(np.mean(errors ** 2))),
            mae=None if errors is None else float(np.mean(np.abs(errors))),
            recall=float(np.mean(self.recalls)) if self.recalls else None,
            ndcg=float(np.mean(self.ndcgs)) if self.ndcgs else None,
            cv_rmse=cv_rmse)


# --- the protocol --------------------------------------------------------------------

class Baselines:
    """The three baselines, fitted on one training set."""

    def __init__(self, user_index: np.ndarray, film_index: np.ndarray, ratings: np.ndarray,
                 n_users: int, n_films: int) -> None:
        self.mean, self.user_bias, self.film_bias = fit_biases(
            user_index, film_index, ratings, n_users, n_films,
            user_reg=BASELINE_USER_REG, film_reg=BASELINE_FILM_REG)
        counts = np.bincount(film_index, minlength=n_films)
        sums = np.bincount(film_index, weights=np.asarray(ratings, dtype=np.float64),
                           minlength=n_films)
        self.film_mean = (sums + BASELINE_FILM_REG * self.mean) / (counts + BASELINE_FILM_REG)

    def fold_in_user_bias(self, films: np.ndarray, ratings: np.ndarray) -> float:
        residual = ratings - self.mean - self.film_bias[films]
        return float(residual.sum() / (len(films) + BASELINE_USER_REG))

    def biases(self, user_bias: np.ndarray | float, films: np.ndarray) -> np.ndarray:
        return np.clip(self.mean + user_bias + self.film_bias[films], MIN_RATING, MAX_RATING)


def _choose_holdout(user_index: np.ndarray, n_users: int, wanted: int,
                    rng: np.random.Generator) -> np.ndarray:
    counts = np.bincount(user_index, minlength=n_users)
    eligible = np.flatnonzero(counts >= MIN_HOLDOUT_RATINGS)
    # Keep most users for training even on a small dataset.
    n = min(wanted, len(eligible), max(1, n_users // 5))
    if n < 1 or len(eligible) < 1:
        raise ValueError(f"no user has the {MIN_HOLDOUT_RATINGS} ratings needed for evaluation")
    return np.sort(rng.choice(eligible, size=n, replace=False))


class HeldOutUser(NamedTuple):
    """Row numbers (into the ratings arrays) of one held-out user's two parts."""

    known: np.ndarray   # folded in
    hidden: np.ndarray  # scored


def split_holdout(user_index: np.ndarray, n_users: int, holdout_users: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, list[HeldOutUser]]:
    """The training-row mask and, per held-out user in id order, their known/hidden rows."""
    holdout = _choose_holdout(user_index, n_users, holdout_users, rng)
    held = np.isin(user_index, holdout)
    order = np.flatnonzero(held)
    order = order[np.argsort(user_index[order], kind="stable")]
    starts = np.searchsorted(user_index[order], holdout)
    ends = np.searchsorted(user_index[order], holdout, side="right")
    users = []
    for start, end in zip(starts, ends):
        rows = order[start:end][rng.permutation(end - start)]
        cut = int(round(FOLD_IN_FRACTION * len(rows)))
        users.append(HeldOutUser(rows[:cut], rows[cut:]))
    return ~held, users


def evaluate(user_index: np.ndarray, film_index: np.ndarray, ratings: np.ndarray,
             n_users: int, n_films: int, *, seed: int = 0, holdout_users: int = 300,
             params: ModelParams | None = None, relevance_threshold: int = 8,
             watched: tuple[np.ndarray, np.ndarray] | None = None,
             listable: np.ndarray | None = None,
             progress: ShareProgress | None = None) -> EvaluationReport:
    """Run the held-out-user protocol and the 3-fold CV; see the module docstring.

    `watched` (user, film) pairs seen without a rating are used as the product uses
    them: in fitting, in a held-out user's fold-in, and left out of their rankings.
    `listable` (a mask over films) is what a list may hold, as the product's default
    filters leave it (no series): every method ranks only those films.
    `progress` is told each part as it goes and the share done.
    """
    params = params or ModelParams()
    user_index = np.asarray(user_index, dtype=np.int64)
    film_index = np.asarray(film_index, dtype=np.int64)
    ratings = np.asarray(ratings, dtype=np.float32)
    watched_users, watched_films = (np.asarray(part, dtype=np.int64) for part in (
        watched if watched is not None else (np.empty(0), np.empty(0))))
    if len(ratings) < CV_FOLDS:
        raise ValueError("too few ratings to evaluate")
    rng = np.random.default_rng(seed)
    train, held_out = split_holdout(user_index, n_users, holdout_users, rng)
    held_watched = np.isin(watched_users, user_index[~train])
    watched_order = np.argsort(watched_users[held_watched], kind="stable")
    held_watched_users = watched_users[held_watched][watched_order]
    held_watched_films = watched_films[held_watched][watched_order]

    started = time.perf_counter()
    model = fit_model(user_index[train], film_index[train], ratings[train], n_users, n_films,
                      params, watched=(watched_users[~held_watched],
                                       watched_films[~held_watched]),
                      progress=share_of(progress, 0, _FIT_ENDS,
                                        stage="fitting"))
    fit_seconds = time.perf_counter() - started
    baselines = Baselines(user_index[train], film_index[train], ratings[train], n_users,
                           n_films)
    popularity = np.bincount(film_index[train], weights=ratings[train] >= relevance_threshold,
                             minlength=n_films)
    names = (GLOBAL_MEAN, BIASES, POPULARITY, MODEL, RANKED_BY_STARS)
    results = {name: _Accumulator.empty() for name in names}

    per_user_seconds = 0.0
    ranked_users = hidden_ratings = 0
    k = min(TOP_K, n_films)
    scoring = f"{len(held_out)} members held out"
    for done, (known, hidden) in enumerate(held_out):
        if progress is not None:
            progress(scoring, _FIT_ENDS + (_USERS_END - _FIT_ENDS) * done / len(held_out))
        known_films, known_ratings = film_index[known], ratings[known]
        hidden_films, hidden_ratings_u = film_index[hidden], ratings[hidden]
        hidden_ratings += len(hidden)
        user = user_index[known[0]]
        seen_unrated = held_watched_films[np.searchsorted(held_watched_users, user):
                                          np.searchsorted(held_watched_users, user, "right")]

        tick = time.perf_counter()
        profile = model.fold_in(known_films, known_ratings, seen_unrated)
        ranked = model.rank(profile, k, allowed=listable)
        model.predict(profile, ranked)
        for film in ranked[:10]:
            model.explain(profile, int(film))
        per_user_seconds += time.perf_counter() - tick

        user_bias = baselines.fold_in_user_bias(known_films, known_ratings)
        stars = model.predict(profile, np.arange(n_films))
        predictions: dict[str, np.ndarray] = {
            GLOBAL_MEAN: np.full(len(hidden), baselines.mean),
            BIASES: baselines.biases(user_bias, hidden_films),
            POPULARITY: baselines.film_mean[hidden_films],
            MODEL: stars[hidden_films]}
        for name, predicted in predictions.items():
            results[name].errors.append(predicted - hidden_ratings_u)

        relevant = hidden_films[hidden_ratings_u >= relevance_threshold]
        if not len(relevant):
            continue
        ranked_users += 1
        seen = np.concatenate([known_films, seen_unrated])
        if listable is not None:
            seen = np.concatenate([seen, np.flatnonzero(~listable)])
        rankings: dict[str, np.ndarray] = {
            BIASES: top_k(baselines.biases(user_bias, np.arange(n_films)), seen, k),
            POPULARITY: top_k(popularity, seen, k),
            MODEL: ranked,
            RANKED_BY_STARS: top_k(stars, seen, k)}
        for name, top in rankings.items():
            recall, ndcg = ranking_metrics(top, relevant, k)
            results[name].recalls.append(recall)
            results[name].ndcgs.append(ndcg)

    cv = _cross_validated_rmse(user_index, film_index, ratings, n_users, n_films, params, rng,
                               (watched_users, watched_films),
                               share_of(progress, _USERS_END, 1))
    return EvaluationReport(
        seed=seed, n_ratings=len(ratings), n_users=n_users, n_films=n_films,
        holdout_users=len(held_out), ranked_users=ranked_users, hidden_ratings=hidden_ratings,
        relevance_threshold=relevance_threshold, top_k=k,
        methods=tuple(results[name].scores(name, cv.get(name)) for name in names),
        fit_seconds=fit_seconds, per_user_ms=1000 * per_user_seconds / len(held_out))


def _cross_validated_rmse(user_index: np.ndarray, film_index: np.ndarray, ratings: np.ndarray,
                          n_users: int, n_films: int, params: ModelParams,
                          rng: np.random.Generator, watched: tuple[np.ndarray, np.ndarray],
                          progress: ShareProgress | None = None) -> dict[str, float]:
    """RMSE over all ratings, each predicted by the fit on the folds it is not in."""
    fold = rng.permutation(len(ratings)) % CV_FOLDS
    # Ratings only: the second ranking stage cannot change them, so it is not learned here.
    params = replace(params, rerank_candidates=0)
    squared: dict[str, float] = {GLOBAL_MEAN: 0.0, BIASES: 0.0, POPULARITY: 0.0, MODEL: 0.0}
    for held_fold in range(CV_FOLDS):
        test = fold == held_fold
        train = ~test
        baselines = Baselines(user_index[train], film_index[train], ratings[train], n_users,
                               n_films)
        model = fit_model(user_index[train], film_index[train], ratings[train], n_users,
                          n_films, params, watched=watched, progress=share_of(
                              progress, held_fold / CV_FOLDS, (held_fold + 1) / CV_FOLDS,
                              stage=f"cross-validation {held_fold + 1}/{CV_FOLDS}"))
        users, films, actual = user_index[test], film_index[test], ratings[test]
        predictions: dict[str, np.ndarray] = {
            GLOBAL_MEAN: np.full(len(actual), baselines.mean),
            BIASES: baselines.biases(baselines.user_bias[users], films),
            POPULARITY: baselines.film_mean[films],
            MODEL: model.predict_pairs(users, films)}
        for name, predicted in predictions.items():
            squared[name] += float(np.sum((predicted - actual) ** 2))
    return {name: float(np.sqrt(total / len(ratings))) for name, total in squared.items()}


# --- the table -----------------------------------------------------------------------

def format_report(report: EvaluationReport) -> str:
    """A plain-text table of every method, then the model against the baselines."""
    def cell(value: float | None, width: int, digits: int) -> str:
        return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"

    k = report.top_k
    lines = [
        f"{report.n_ratings:,} ratings, {report.n_users:,} users, {report.n_films:,} films; "
        f"seed {report.seed}",
        f"held out {report.holdout_users} users: fold-in {FOLD_IN_FRACTION:.0%} of each one's "
        f"ratings, {report.hidden_ratings:,} hidden ratings scored; ranking over all films "
        f"outside the fold-in part,",
        f"relevant = hidden film rated >= {report.relevance_threshold} "
        f"({report.ranked_users} users have one); CV = {CV_FOLDS}-fold over all ratings",
        "",
        f"{'method':<31}{'RMSE':>7}{'MAE':>7}{f'recall@{k}':>11}{f'NDCG@{k}':>9}"
        f"{'CV RMSE':>9}"]
    for scores in report.methods:
        lines.append(f"{scores.name:<31}{cell(scores.rmse, 7, 3)}{cell(scores.mae, 7, 3)}"
                     f"{cell(scores.recall, 11, 4)}{cell(scores.ndcg, 9, 4)}"
                     f"{cell(scores.cv_rmse, 9, 3)}")
    model, popular, biases = (report.method(MODEL), report.method(POPULARITY),
                              report.method(BIASES))
    lines.append("")
    if model.recall is not None and popular.recall:
        lines.append(f"model recall@{k} = {model.recall / popular.recall:.2f} x popularity's")
    if model.rmse is not None and biases.rmse:
        def versus(ours: float, theirs: float) -> str:
            change = 100 * (1 - ours / theirs)
            return f"{abs(change):.1f}% {'below' if change >= 0 else 'above'}"

        lines.append(f"model RMSE {versus(model.rmse, biases.rmse)} the biases baseline (CV: "
                     f"{versus(model.cv_rmse, biases.cv_rmse)})")
    lines.append(f"model fit {report.fit_seconds:.1f} s; fold-in + rank + stars + explanations "
                 f"{report.per_user_ms:.1f} ms per user")
    return "\n".join(lines)

