"""The stars: biases, the ALS rating model, and the user step fold-in shares with fitting.

A predicted rating is the global mean + film bias + per user a bias, a scale on the
film bias and a low-rank taste vector, plus one global coefficient on the film's
PureSVD score (x * d) V V^T for that user (standardised and clipped, `Affinity`):
films that fit what someone watches get rated higher by them, and without this term
the films at the top of the list were predicted too low. Fitted by alternating ridge
regressions with every user weighted by how consistently they rate. The last step
solves the users, so folding a user in (`user_weights`) is the same ridge regression
fitting did.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from recommender.linalg import (SparsePattern, SparseRows, grouped_sums, pair_products,
                                row_chunks, solve_ridge)
from recommender.params import MAX_RATING, MIN_RATING, ModelParams

logger = logging.getLogger(__name__)

# Alternating shrunken means settle to three decimals within a few sweeps.
BIAS_SWEEPS = 10


def fit_biases(user_index: np.ndarray, film_index: np.ndarray, ratings: np.ndarray,
               n_users: int, n_films: int, *, user_reg: float, film_reg: float,
               pattern: SparseRows | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Global mean and regularised user and film offsets by alternating shrunken means.

    A group's residual sum is its ratings' sum, less its count times the mean, less the
    other side's offsets summed over the ratings' pattern: so a sweep is two sparse
    products on all cores, not two passes over every rating. `pattern` is the users x
    films matrix of ones, where the caller has it already.
    """
    ratings = np.asarray(ratings)
    if pattern is None:
        pattern = SparsePattern(user_index, film_index, (n_users, n_films)).matrix(
            np.ones(len(ratings), dtype=np.float32))
    mean = float(ratings.mean(dtype=np.float64))
    user_count = np.bincount(user_index, minlength=n_users)
    film_count = np.bincount(film_index, minlength=n_films)
    user_residual = grouped_sums(user_index, n_users, ratings.__getitem__) - user_count * mean
    film_residual = grouped_sums(film_index, n_films, ratings.__getitem__) - film_count * mean
    user_bias = np.zeros(n_users)
    film_bias = np.zeros(n_films)
    for _ in range(BIAS_SWEEPS):
        film_bias = (film_residual - _summed_over(pattern.T, user_bias)) / (film_count + film_reg)
        user_bias = (user_residual - _summed_over(pattern, film_bias)) / (user_count + user_reg)
    return mean, user_bias, film_bias


def _summed_over(pattern: SparseRows, values: np.ndarray) -> np.ndarray:
    """Per row of the pattern, the sum of the values of its columns (float64 out)."""
    return (pattern @ values.astype(np.float32)[:, None])[:, 0].astype(np.float64)


class Affinity:
    """A film's ranking score for a user, in standard deviations of that user's scores."""

    def __init__(self, mean_factor: np.ndarray, covariance: np.ndarray, clip: float) -> None:
        self.mean_factor = np.asarray(mean_factor, dtype=np.float64)
        self.covariance = np.asarray(covariance, dtype=np.float64)
        self.clip = clip

    @staticmethod
    def statistics(film_factors: np.ndarray) -> dict[str, np.ndarray]:
        """Mean and covariance of the film factors, saved with the model: over hundreds of
        thousands of films they cost a loaded model more than a whole recommendation."""
        factors = film_factors.astype(np.float64)
        mean = factors.mean(axis=0)
        covariance = factors.T @ factors / max(len(factors), 1) - np.outer(mean, mean)
        return {"affinity_mean": mean.astype(np.float32),
                "affinity_covariance": covariance.astype(np.float32)}

    def centre_and_spread(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over all films of each user's ranking scores."""
        embeddings = np.atleast_2d(embeddings).astype(np.float64)
        variance = np.einsum("ij,jk,ik->i", embeddings, self.covariance, embeddings)
        return embeddings @ self.mean_factor, np.sqrt(np.maximum(variance, 1e-12))

    def standardise(self, raw_scores: np.ndarray, centre: np.ndarray | float,
                    spread: np.ndarray | float) -> np.ndarray:
        return np.clip((raw_scores - centre) / spread, -self.clip, self.clip).astype(np.float32)


def _noise_weights(counts: np.ndarray, sums: np.ndarray, squares: np.ndarray,
                  pooled_variance: float, prior: float, power: float) -> np.ndarray:
    """Weight per user from the spread of their own ratings, shrunk to the pooled spread."""
    safe_counts = np.maximum(counts, 1)
    scatter = np.maximum(squares - sums * sums / safe_counts, 0.0)
    variance = (scatter + prior * pooled_variance) / (counts + prior)
    return (pooled_variance / np.maximum(variance, 1e-6 * pooled_variance)) ** power


def _user_step_features(film_bias: np.ndarray, film_factors: np.ndarray) -> np.ndarray:
    """What a user's weights multiply: 1 (their bias), the film bias (their scale), factors."""
    return np.column_stack([np.ones(len(film_bias)), film_bias, film_factors]).astype(np.float32)


def _user_regularisation(params: ModelParams) -> np.ndarray:
    return np.concatenate([[params.user_bias_reg, params.user_scale_reg],
                           np.full(params.rating_factors, params.factor_reg)])


def user_weights(values: np.ndarray, film_bias: np.ndarray, film_factors: np.ndarray,
                 affinity: np.ndarray, *, global_mean: float, pooled_variance: float,
                 affinity_coefficient: float, params: ModelParams) -> np.ndarray:
    """One user's weights from their ratings (`values`) of films with these biases and
    factors: the same ridge regression the last ALS sweep solved for training users."""
    weight = _noise_weights(np.array([len(values)]), np.array([values.sum(dtype=np.float64)]),
                           np.array([np.square(values, dtype=np.float64).sum()]),
                           pooled_variance, params.noise_prior, params.noise_power)
    features = _user_step_features(film_bias, film_factors)
    targets = values - global_mean - film_bias - affinity_coefficient * affinity
    reg = _user_regularisation(params) / weight[0]
    gram = features.T.astype(np.float64) @ features + np.diag(reg)
    return np.linalg.solve(gram, features.T.astype(np.float64) @ targets).astype(np.float32)


def predicted_stars(weights: np.ndarray, film_bias: np.ndarray, film_factors: np.ndarray,
                    affinity: np.ndarray, *, global_mean: float,
                    affinity_coefficient: float) -> np.ndarray:
    """Ratings (1..10); weights: one row per film, or a single row shared by all of them."""
    taste = (film_factors * weights[:, 2:]).sum(axis=1)
    predicted = (global_mean + film_bias + weights[:, 0] + weights[:, 1] * film_bias
                 + taste + affinity_coefficient * affinity)
    return np.clip(predicted, MIN_RATING, MAX_RATING).astype(np.float32)


def initial_rating_factors(ranking_factors: np.ndarray, rank: int, rng: np.random.Generator
                           ) -> np.ndarray:
    """The leading ranking factors, scaled to entries of about 0.1.

    Started there rather than at random, ALS settles in a better optimum (a lower
    held-out RMSE on the tuning splits).
    """
    n_films = ranking_factors.shape[0]
    initial = rng.normal(0.0, 0.1, (n_films, rank)).astype(np.float32)
    shared = min(rank, ranking_factors.shape[1])
    initial[:, :shared] = ranking_factors[:, :shared] * np.float32(0.1 * math.sqrt(n_films))
    return initial


@dataclass(frozen=True)
class RatingModel:
    global_mean: float
    pooled_variance: float
    affinity_coefficient: float
    film_bias: np.ndarray
    film_factors: np.ndarray
    user_weights: np.ndarray


def fit_rating_model(user_index: np.ndarray, film_index: np.ndarray, ratings: np.ndarray,
                     n_users: int, n_films: int, users: SparsePattern,
                     params: ModelParams, film_factors: np.ndarray, affinity: np.ndarray
                     ) -> RatingModel:
    """Alternating ridge regressions, every Gram matrix from one sparse product per sweep.

    A sweep solves all users, then all films, then the affinity coefficient; the last
    sweep stops after the users, so fold-in is exactly that user step.
    """
    user_ones = users.matrix(np.ones(len(ratings), dtype=np.float32))
    global_mean, _, film_bias = fit_biases(user_index, film_index, ratings, n_users, n_films,
                                           user_reg=params.user_bias_reg,
                                           film_reg=params.item_bias_reg, pattern=user_ones)
    counts = np.bincount(user_index, minlength=n_users).astype(np.float64)
    sums = grouped_sums(user_index, n_users, lambda part: ratings[part])
    squares = grouped_sums(user_index, n_users,
                           lambda part: np.square(ratings[part], dtype=np.float64))
    pooled = float(np.maximum(squares - sums * sums / np.maximum(counts, 1), 0).sum()
                   / len(ratings))
    pooled = max(pooled, 1e-6)
    noise_weight = _noise_weights(counts, sums, squares, pooled, params.noise_prior,
                                 params.noise_power)
    rating_noise_weight = noise_weight[user_index].astype(np.float32)
    film_noise = users.matrix(rating_noise_weight).T
    user_affinity = users.matrix(affinity)
    weighted_affinity = affinity * rating_noise_weight
    affinity_energy = float(np.dot(weighted_affinity, affinity)) + params.affinity_reg
    user_reg = _user_regularisation(params)[None, :] / noise_weight[:, None]
    film_reg = np.concatenate([[params.item_bias_reg],
                               np.full(params.rating_factors, params.factor_reg)])
    centred = ratings - np.float32(global_mean)
    # The coefficient's residual dot product, sum w a (r - mean - b_i), is a constant
    # less the film biases times each film's sum of w a: no pass over the ratings per sweep.
    centred_dot = sum(float(np.dot(weighted_affinity[part].astype(np.float64), centred[part]))
                      for part in row_chunks(len(ratings)))
    film_weighted_affinity = grouped_sums(film_index, n_films,
                                          lambda part: weighted_affinity[part])
    coefficient = 0.0
    # Per-rating arrays stay float32 (the sparse matrices are): over 100M ratings each
    # float64 temporary would cost 800 MB.
    for sweep in range(params.als_iterations):
        features = _user_step_features(film_bias, film_factors)
        offset = centred - np.float32(coefficient) * affinity
        weights = solve_ridge(
            user_ones @ pair_products(features),
            users.matrix(offset - film_bias.astype(np.float32)[film_index]) @ features,
            user_reg)
        if sweep == params.als_iterations - 1:
            break
        user_features = np.column_stack([1.0 + weights[:, 1], weights[:, 2:]]
                                        ).astype(np.float32)
        targets = (offset - weights[:, 0].astype(np.float32)[user_index]) * rating_noise_weight
        solved = solve_ridge(film_noise @ pair_products(user_features),
                             users.matrix(targets).T @ user_features, film_reg[None, :])
        film_bias, film_factors = solved[:, 0], solved[:, 1:].astype(np.float32)
        # Least squares for the one coefficient, the rest of the model held fixed:
        # sum w a (r - mean - b_i - theta_u . f_i) = sum w a (r - mean - b_i)
        #   - sum_u w_u theta_u . (sum_i a_ui f_i).
        features = _user_step_features(film_bias, film_factors)
        explained = np.einsum("ij,ij->i", weights, user_affinity @ features) @ noise_weight
        # At least zero: films that fit someone's taste are never predicted lower for it
        # (tiny, structureless data could otherwise fit a negative coefficient).
        residual_dot = centred_dot - float(film_bias @ film_weighted_affinity)
        coefficient = max(0.0, (residual_dot - float(explained)) / affinity_energy)
    logger.debug("affinity coefficient %.3f", coefficient)
    return RatingModel(global_mean=global_mean, pooled_variance=pooled,
                       affinity_coefficient=coefficient, film_bias=film_bias,
                       film_factors=film_factors, user_weights=weights)
