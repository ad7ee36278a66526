"""What the model takes: its hyper-parameters, the rating scale and checks of given ratings."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_RATING = 1
MAX_RATING = 10


@dataclass(frozen=True)
class ModelParams:
    """Hyperparameters, tuned on a split of the 500k sample other than the one reported."""

    # The first stage's Gram: this many singular components in full (capped at one per 20
    # users or films, see ranking.ranking_ranks; they are also the factors everything else
    # uses)...
    ranking_factors: int = 50
    # ...the next ones at this share of their weight (capped at one per 10 in all), and
    # the diagonal they leave over.
    ranking_tail_factors: int = 150
    ranking_tail_weight: float = 0.25
    # Film columns are scaled by (number of ratings)^-popularity_damping before the SVD.
    popularity_damping: float = 0.25
    # Few suffice: the range finder is wide (all components plus 20), so the top ones
    # come out more accurate than a 70-wide finder's after 5.
    svd_power_iterations: int = 2
    # The second stage reorders this many of the first stage's best films (0: no second stage).
    rerank_candidates: int = 300
    # Its weights are learned on this many users held out of an extra fit...
    rerank_users: int = 400
    # ...with this L2 penalty on the weights of standardised features (for that many users).
    rerank_l2: float = 0.01
    # EASE's ridge penalty, as a multiple of the Gram's mean diagonal (so independent of
    # the matrix's scale).
    ranking_reg: float = 3.5
    rating_factors: int = 10
    factor_reg: float = 15.0
    user_bias_reg: float = 5.0
    user_scale_reg: float = 5.0
    item_bias_reg: float = 5.0
    # A user's rating variance is shrunk towards the pooled one as if from this many ratings.
    noise_prior: float = 10.0
    # Users are weighted by (pooled variance / their variance)^noise_power.
    noise_power: float = 0.5
    als_iterations: int = 6
    # The ranking score enters the stars in user standard deviations, clipped to +-this.
    affinity_clip: float = 5.0
    affinity_reg: float = 1.0
    cold_start_threshold: int = 5
    high_rating: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        def number(name: str, kind: type | tuple[type, ...]) -> float:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            return value

        for name in ("ranking_factors", "rating_factors", "als_iterations"):
            if number(name, int) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("ranking_tail_factors", "svd_power_iterations", "rerank_candidates",
                     "rerank_users", "cold_start_threshold", "seed"):
            if number(name, int) < 0:
                raise ValueError(f"{name} must not be negative")
        # Regularisers must be positive: a user with one rating must still give a solvable
        # ridge regression.
        for name in ("ranking_reg", "factor_reg", "user_bias_reg", "user_scale_reg",
                     "item_bias_reg", "noise_prior", "affinity_clip", "affinity_reg"):
            if number(name, (int, float)) <= 0:
                raise ValueError(f"{name} must be positive")
        for name in ("popularity_damping", "noise_power", "rerank_l2"):
            if number(name, (int, float)) < 0:
                raise ValueError(f"{name} must not be negative")
        # No tail is ranking_tail_factors=0; a weight of 0 would divide by zero.
        if not 0 < number("ranking_tail_weight", (int, float)) <= 1:
            raise ValueError("ranking_tail_weight must be above 0 and at most 1")
        if not MIN_RATING <= number("high_rating", int) <= MAX_RATING:
            raise ValueError(f"high_rating must be in {MIN_RATING}..{MAX_RATING}")


def check_ratings(user_index: np.ndarray | None, film_index: np.ndarray, ratings: np.ndarray,
                  n_users: int | None, n_films: int) -> None:
    """ValueError unless the ratings are aligned 1-D arrays of in-range ids and stars."""
    if film_index.ndim != 1 or ratings.shape != film_index.shape:
        raise ValueError("item indices and ratings must be 1-D arrays of the same length")
    if user_index is not None and user_index.shape != film_index.shape:
        raise ValueError("user indices must be aligned with the ratings")
    if user_index is not None:
        check_index("user", user_index, n_users)
    check_index("item", film_index, n_films)
    if len(ratings) and not (np.all(np.isfinite(ratings)) and ratings.min() >= MIN_RATING
                             and ratings.max() <= MAX_RATING):
        raise ValueError(f"ratings must lie in {MIN_RATING}..{MAX_RATING}")


def check_index(name: str, index: np.ndarray, bound: int | None) -> None:
    """ValueError unless `index` is a 1-D integer array of values in 0..bound-1."""
    if index.ndim != 1 or (len(index) and not np.issubdtype(index.dtype, np.integer)):
        raise ValueError(f"{name} indices must be a 1-D integer array")
    if len(index) and (index.min() < 0 or index.max() >= bound):
        raise ValueError(f"{name} index out of range 0..{bound - 1}")
