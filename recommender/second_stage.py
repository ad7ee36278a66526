"""The second ranking stage: a linear reordering of the first stage's best candidates.

The first stage (EASE on the factors, `ranking.py`) ranks every film by how likely
the user is to watch it. What users ask for is films they will *love*, and whether a
candidate will be loved depends on things the first stage's score mixes away: the
stars the rating model predicts, how often the film is loved by those who watch it,
and how close it is to the user's own favourites. So the best candidates are
re-scored by a weighted sum of such features, with weights learned on the dataset
itself when the model is fitted (`learn_weights`, on lists `fit.py` gathers): a
softmax over each inner user's candidates, maximising the probability of the films
they actually loved (a listwise loss, as in ListNet, Cao et al. 2007).

What this adds to recall over the first stage alone is figure 7d of BENCHMARKS.md.
No film metadata is needed: genre and release-year features were tried and added
nothing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

FEATURES = ("first-stage score (z)", "log first-stage position", "predicted stars",
            "log rating count", "shrunk share of high ratings", "film bias",
            "similarity, rating-weighted", "similarity, best loved film",
            "similarity, top five", "similarity, mean")
# A film's share of high ratings is shrunk towards the average as if from this many ratings.
LOVED_PRIOR = 20.0
# How many of the user's most similar rated films the "top five" feature averages.
_TOP_SIMILAR = 5
# Newton's method stops when a step would lower the loss by less than this, or after
# this many steps (it needs far fewer).
_CONVERGED = 1e-12
_NEWTON_STEPS = 50


@dataclass(frozen=True)
class FilmStatistics:
    """What the features need to know about the films, read from the fitted model's arrays
    one row at a time (a recommendation touches a few hundred of them)."""

    factors: np.ndarray       # (films, k): the first stage's factors V
    singular: np.ndarray      # (k,): their singular values
    rating_count: np.ndarray  # (films,)
    loved_count: np.ndarray   # (films,): ratings >= the high rating
    film_bias: np.ndarray     # (films,): the rating model's film bias

    def unit(self, films: np.ndarray) -> np.ndarray:
        """Factors scaled by the singular values, at unit length: their cosines approximate
        those of the films' columns in the matrix (X^T X ~ V S^2 V^T)."""
        scaled = self.factors[films].astype(np.float64) * self.singular
        return scaled / np.maximum(np.linalg.norm(scaled, axis=1, keepdims=True), 1e-12)

    def loved_share(self, films: np.ndarray) -> np.ndarray:
        prior = float(self.loved_count.sum(dtype=np.float64)) / max(
            float(self.rating_count.sum(dtype=np.float64)), 1.0)
        return ((self.loved_count[films] + LOVED_PRIOR * prior)
                / (self.rating_count[films] + LOVED_PRIOR))


def candidate_features(films: FilmStatistics, candidates: np.ndarray,
                       standard_scores: np.ndarray, positions: np.ndarray,
                       predicted_stars: np.ndarray, rated_films: np.ndarray,
                       ratings: np.ndarray, high_rating: float) -> np.ndarray:
    """One row of FEATURES per candidate.

    standard_scores: the first-stage scores of the candidates, standardised over all films;
    positions: their places in the first-stage order (0 = best).
    """
    n = len(candidates)
    if len(rated_films):
        similarity = films.unit(candidates) @ films.unit(rated_films).T
        values = ratings.astype(np.float64)
        centred = (values - values.mean()) / (values.std() + 1.0)
        loved = values >= min(high_rating, values.max())
        weighted = similarity @ centred / len(values)
        best_loved = similarity[:, loved].max(axis=1)
        top = min(_TOP_SIMILAR, similarity.shape[1])
        top_mean = -np.partition(-similarity, top - 1, axis=1)[:, :top].mean(axis=1)
        mean = similarity.mean(axis=1)
    else:
        weighted = best_loved = top_mean = mean = np.zeros(n)
    return np.column_stack([
        standard_scores, np.log1p(positions), predicted_stars,
        np.log1p(films.rating_count[candidates]), films.loved_share(candidates),
        films.film_bias[candidates],
        weighted, best_loved, top_mean, mean]).astype(np.float64)


@dataclass(frozen=True)
class LinearStage:
    """Weights over features standardised with the training candidates' mean and spread."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray

    @classmethod
    def first_stage_order(cls) -> "LinearStage":
        """Scores that keep the first stage's order: for data too small to learn from."""
        weights = np.zeros(len(FEATURES))
        weights[0] = 1.0
        return cls(np.zeros(len(FEATURES)), np.ones(len(FEATURES)), weights)

    def scores(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.scale) @ self.weights


def learn_weights(groups: list[tuple[np.ndarray, np.ndarray]], l2: float) -> LinearStage:
    """Listwise softmax weights from (candidate features, indices of loved candidates) pairs.

    The loss is convex and smooth in ten weights, so Newton's method (a 10 x 10 Hessian)
    from the first stage's own order reaches its optimum in a few steps; importing
    scipy.optimize for it would cost more than the whole optimisation. All lists are
    stacked into one matrix, so each step is a few vectorised passes.
    """
    groups = [(features, hits) for features, hits in groups if len(hits)]
    if not groups:
        return LinearStage.first_stage_order()
    stacked = np.vstack([features for features, _ in groups])
    mean, scale = stacked.mean(axis=0), stacked.std(axis=0) + 1e-9
    standard = (stacked - mean) / scale
    sizes = np.array([len(features) for features, _ in groups])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    hit_rows = np.concatenate([start + hits for start, (_, hits) in zip(starts, groups)])
    hit_groups = np.repeat(np.arange(len(groups)), [len(hits) for _, hits in groups])
    # Each list counts once, however many loved films it holds.
    hit_weights = 1.0 / np.bincount(hit_groups)[hit_groups] / len(groups)
    loved_features = hit_weights @ standard[hit_rows]
    penalty = 2 * l2 * np.eye(standard.shape[1])

    def loss(weights: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """The loss, its gradient and its Hessian (each list's feature covariance under
        its softmax, averaged, plus the penalty)."""
        scores = standard @ weights
        scores -= np.repeat(np.maximum.reduceat(scores, starts), sizes)
        exponentials = np.exp(scores)
        normalisers = np.add.reduceat(exponentials, starts)
        log_likelihood = hit_weights @ (scores[hit_rows] - np.log(normalisers)[hit_groups])
        weighted = standard * (exponentials / np.repeat(normalisers, sizes))[:, None]
        list_means = np.add.reduceat(weighted, starts)
        hessian = (weighted.T @ standard - list_means.T @ list_means) / len(groups) + penalty
        return (-log_likelihood + l2 * weights @ weights,
                list_means.sum(axis=0) / len(groups) - loved_features + penalty @ weights,
                hessian)

    weights = LinearStage.first_stage_order().weights
    value, gradient, hessian = loss(weights)
    for _ in range(_NEWTON_STEPS):
        if not (np.isfinite(value) and np.all(np.isfinite(hessian))):
            break
        step = np.linalg.lstsq(hessian, -gradient, rcond=None)[0]
        decrease = -gradient @ step
        if decrease <= _CONVERGED:
            break
        size = 1.0  # backtracking keeps every step a descent
        while True:
            trial = loss(weights + size * step)
            if trial[0] <= value - 0.25 * size * decrease or size < 1e-6:
                break
            size /= 2
        weights = weights + size * step
        value, gradient, hessian = trial
    if not (np.all(np.isfinite(weights)) and np.isfinite(value)):
        logger.warning("could not learn how to fine-tune the order of the list from this "
                       "dataset; lists keep the plain ranking (they may be a little worse)")
        return LinearStage.first_stage_order()
    return LinearStage(mean, scale, weights)
