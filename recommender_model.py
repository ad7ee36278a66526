"""The collaborative-filtering model: one model orders the list, another predicts the stars.

Why two models: on Letterboxd ratings a factor model fitted to minimise rating
error ranks worse than plain popularity (it favours obscure films a few people
loved), while a truncated SVD of the zero-filled user-film matrix ranks well
but its scores are not ratings (Cremonesi et al., RecSys 2010). So:

* Ranking, first stage: EASE (Steck, WWW 2019) on a low-rank-plus-diagonal Gram. The
  user-film matrix X holds (rating/10)^2 for every rated film (watching counts,
  loving counts more), each film's column scaled by count^-damping so that
  blockbusters do not own every factor. EASE scores films by a ridge regression
  of each film's column on all the others, which needs the inverse of the films x
  films Gram X^T X: out of reach for a crawl's hundreds of thousands of films. Here
  the Gram is its top singular part V S^2 V^T (randomized SVD: 50 components in
  full, the next 150 at a quarter of their weight) plus the diagonal it leaves over,
  E; by Woodbury the inverse and its diagonal then cost O(films * k^2) and a user's
  scores stay closed form, s_j = o_j V_j M V^T (x * d / e), with M a k x k matrix and
  o_j, 1/e_j one number per film. On the 500k sample the 50 components alone rank
  about 2% better than PureSVD's s = (x * d) V V^T on the same factors, and the
  softened tail about 2% better again (figure 7b of BENCHMARKS.md). All 200 at full
  weight rank worse than 50 alone; a longer tail ranked no better. s is an exact sum
  over the films the user has seen: the loved ones with a positive term that are most
  like the film explain it.
* Ranking, second stage (`second_stage.py`): the first stage's best films are
  reordered by weights learned at fit time on users left out of an extra fit.
* Stars: global mean + film bias + per user a bias, a scale on the film bias
  and a low-rank taste vector, plus one global coefficient on the film's PureSVD
  score (x * d) V V^T for that user (standardised and clipped): films that fit
  what someone watches get rated higher by them, and without this term the films at
  the top of the list were predicted about 0.2 too low. Fitted by alternating
  ridge regressions with every user weighted by how consistently they rate. The
  last step solves the users, so folding a user in is the same ridge regression
  fitting did.

Everything is vectorised numpy/scipy; the only loops are over ALS sweeps, power
iterations and the second stage's few hundred inner users, so fitting scales to
tens of millions of ratings.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import mmap
import os
import struct
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from errors import ModelFileError
from safe_files import write_atomically
from second_stage import FEATURES, FilmStatistics, LinearStage, candidate_features, learn_weights

logger = logging.getLogger(__name__)

# 2: watched-unrated films enter the ranking matrix; 3: affinity statistics are saved;
# 4: ranking by low-rank-plus-diagonal EASE, then a learned second stage;
# 5: EASE's Gram keeps a down-weighted tail of components (ranking_tail_factors)
FORMAT_VERSION = 5
AFFINITY_ARRAYS = ("affinity_mean", "affinity_covariance")
RANKING_ARRAYS = ("ranking_tail_factors", "ranking_query_scale", "ranking_mixing",
                  "ranking_output_scale", "ranking_singular", "rating_count")
SECOND_STAGE_ARRAYS = ("second_stage_mean", "second_stage_scale", "second_stage_weights")
ARRAYS_FILE = "recommender_model.npz"
META_FILE = "recommender_model.json"
MIN_RATING = 1
MAX_RATING = 10
# The lowest rating (3.5 stars) that `explain` may call rating a film highly.
MIN_REASON_RATING = 7
# Sparse products are split across threads only in blocks of at least this many entries.
_MIN_BLOCK_ENTRIES = 250_000
# More than any honest metadata file; a bigger one is not ours.
_MAX_META_BYTES = 1_000_000
# Array data start on multiples of this in the saved file (numpy pads .npy headers to it).
_ALIGNMENT = 64
# The extra-field id zipalign uses for padding.
_PADDING_FIELD = 0xD935
# numpy's own limit on an array header; ours are a few hundred bytes.
_MAX_NPY_HEADER_BYTES = 10_000
# Alternating shrunken means settle to three decimals within a few sweeps.
_BIAS_SWEEPS = 10


@dataclass(frozen=True)
class ModelParams:
    """Hyperparameters, tuned on a split of the 500k sample other than the one reported."""

    # The first stage's Gram: this many singular components in full (capped at one per 20
    # users or films, see _ranking_ranks; they are also the factors everything else uses)...
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
        for name in ("ranking_reg", "factor_reg", "user_bias_reg", "user_scale_reg", "item_bias_reg",
                     "noise_prior", "affinity_clip", "affinity_reg"):
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


@dataclass(frozen=True, eq=False)
class UserProfile:
    """One user folded into the model: what they rated and their closed-form vectors."""

    rated_items: np.ndarray        # int64, unique
    ratings: np.ndarray            # float32, aligned with rated_items
    watched_items: np.ndarray      # int64, seen but not rated (disjoint from rated_items)
    ranking_embedding: np.ndarray  # float32, (ranking_factors,): (x * d) V, for the stars
    ranking_query: np.ndarray      # float32, (all components,): M V^T (x * d / e), to rank
    rating_weights: np.ndarray     # float32, (bias, scale on film bias, taste factors...)

    @property
    def n_ratings(self) -> int:
        return len(self.rated_items)


def interaction_weight(ratings: np.ndarray) -> np.ndarray:
    """Entry of the ranking matrix for a rating: a watch counts, a loved watch counts more."""
    return (np.asarray(ratings, dtype=np.float32) / MAX_RATING) ** 2


def top_items(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n highest finite scores, best first; -inf marks a film left out.

    A partial sort: lists are short, catalogues are tens of thousands of films."""
    n = min(n, int(np.isfinite(scores).sum()))
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    best = np.argpartition(-scores, n - 1)[:n]
    return best[np.argsort(-scores[best], kind="stable")].astype(np.int64)


def fit_biases(user_index: np.ndarray, item_index: np.ndarray, ratings: np.ndarray,
               n_users: int, n_items: int, *, user_reg: float, item_reg: float
               ) -> tuple[float, np.ndarray, np.ndarray]:
    """Global mean and regularised user and film offsets by alternating shrunken means."""
    ratings = np.asarray(ratings, dtype=np.float64)
    mean = float(ratings.mean())
    user_count = np.bincount(user_index, minlength=n_users)
    item_count = np.bincount(item_index, minlength=n_items)
    user_bias = np.zeros(n_users)
    item_bias = np.zeros(n_items)
    for _ in range(_BIAS_SWEEPS):
        item_bias = np.bincount(item_index, weights=ratings - mean - user_bias[user_index],
                                minlength=n_items) / (item_count + item_reg)
        user_bias = np.bincount(user_index, weights=ratings - mean - item_bias[item_index],
                                minlength=n_users) / (user_count + user_reg)
    return mean, user_bias, item_bias


def _check_ratings(user_index: np.ndarray | None, item_index: np.ndarray, ratings: np.ndarray,
                   n_users: int | None, n_items: int) -> None:
    if item_index.ndim != 1 or ratings.shape != item_index.shape:
        raise ValueError("item indices and ratings must be 1-D arrays of the same length")
    if user_index is not None and user_index.shape != item_index.shape:
        raise ValueError("user indices must be aligned with the ratings")
    if user_index is not None:
        _check_index("user", user_index, n_users)
    _check_index("item", item_index, n_items)
    if len(ratings) and not (np.all(np.isfinite(ratings)) and ratings.min() >= MIN_RATING
                             and ratings.max() <= MAX_RATING):
        raise ValueError(f"ratings must lie in {MIN_RATING}..{MAX_RATING}")


def _check_index(name: str, index: np.ndarray, bound: int | None) -> None:
    if index.ndim != 1 or (len(index) and not np.issubdtype(index.dtype, np.integer)):
        raise ValueError(f"{name} indices must be a 1-D integer array")
    if len(index) and (index.min() < 0 or index.max() >= bound):
        raise ValueError(f"{name} index out of range 0..{bound - 1}")


def _row_major(rows: np.ndarray, columns: np.ndarray, n_rows: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Permutation sorting entries by row, the CSR row pointer and the sorted columns."""
    order = np.argsort(rows, kind="stable")
    if len(order) < 2**31:
        order = order.astype(np.int32)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return order, indptr, columns[order].astype(np.int32)


def _worker_count() -> int:
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    return max(1, min(4, available))


class _SparseRows:
    """A CSR matrix cut into row blocks of equal work, multiplied on all cores.

    scipy's sparse-dense product is single-threaded but releases the GIL, and it is
    where fitting spends most of its time.
    """

    def __init__(self, blocks: list) -> None:  # of scipy.sparse.csr_matrix row blocks
        self.blocks = blocks

    def __matmul__(self, dense: np.ndarray) -> np.ndarray:
        if len(self.blocks) == 1:
            return np.asarray(self.blocks[0] @ dense)
        with ThreadPoolExecutor(len(self.blocks)) as pool:
            return np.vstack(list(pool.map(lambda block: block @ dense, self.blocks)))


class _Pattern:
    """A fixed sparsity pattern that many different value arrays are multiplied through."""

    def __init__(self, rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> None:
        self.order, self.indptr, self.indices = _row_major(rows, columns, shape[0])
        self.shape = shape
        # Threads pay off only when each gets a sizeable share of the entries.
        blocks = max(1, min(_worker_count(), int(self.indptr[-1]) // _MIN_BLOCK_ENTRIES))
        work = np.linspace(0, self.indptr[-1], blocks + 1)
        bounds = np.unique(np.concatenate([[0], np.searchsorted(self.indptr, work[1:-1]),
                                           [shape[0]]]))
        self.row_blocks = list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))

    def matrix(self, values_in_input_order: np.ndarray) -> _SparseRows:
        import scipy.sparse as sp  # fitting only: recommending from a saved model skips it

        data = np.ascontiguousarray(values_in_input_order[self.order], dtype=np.float32)
        blocks = []
        for first, last in self.row_blocks:
            start, stop = self.indptr[first], self.indptr[last]
            blocks.append(sp.csr_matrix(
                (data[start:stop], self.indices[start:stop],
                 self.indptr[first:last + 1] - start), shape=(last - first, self.shape[1]),
                copy=False))
        return _SparseRows(blocks)


def _pair_products(features: np.ndarray) -> np.ndarray:
    """Per row, the upper triangle of its outer product, so Grams are one sparse product."""
    first, second = np.triu_indices(features.shape[1])
    return features[:, first] * features[:, second]


def _solve_ridge(pair_sums: np.ndarray, rhs: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Solve every row's (Gram + diag(reg)) w = rhs at once; reg may differ per row."""
    n, width = rhs.shape
    first, second = np.triu_indices(width)
    gram = np.zeros((n, width, width))
    gram[:, first, second] = pair_sums
    gram[:, second, first] = pair_sums
    diagonal = np.arange(width)
    gram[:, diagonal, diagonal] += reg
    return np.linalg.solve(gram, rhs.astype(np.float64)[:, :, None])[:, :, 0]


def _noise_weights(counts: np.ndarray, sums: np.ndarray, squares: np.ndarray,
                   pooled_variance: float, prior: float, power: float) -> np.ndarray:
    """Weight per user from the spread of their own ratings, shrunk to the pooled spread."""
    safe_counts = np.maximum(counts, 1)
    scatter = np.maximum(squares - sums * sums / safe_counts, 0.0)
    variance = (scatter + prior * pooled_variance) / (counts + prior)
    return (pooled_variance / np.maximum(variance, 1e-6 * pooled_variance)) ** power


def _ranking_ranks(params: ModelParams, n_users: int, n_items: int) -> tuple[int, int]:
    """How many components the first stage keeps in full and in its tail.

    At most one full factor per 20 users or films: on small data more factors overfit
    (the stars' affinity term then learns from in-sample scores). The tail is weighted
    down, so it may reach one component per 10 in all.
    """
    smaller = min(n_users, n_items)
    head = max(1, min(params.ranking_factors, smaller // 20))
    return head, max(0, min(params.ranking_tail_factors, smaller // 10 - head))


def _orthonormalise(basis: np.ndarray, passes: int = 2) -> np.ndarray:
    """An orthonormal basis of the columns: Cholesky QR, Householder QR if singular.

    Several times faster than Householder QR on tall matrices and as accurate after a
    second pass, for the moderately conditioned bases of a range finder. Between power
    iterations one pass is enough: the next product only needs a well-conditioned basis.
    """
    import scipy.linalg  # fitting only, like scipy.sparse

    result = basis.astype(np.float64)
    try:
        for _ in range(passes):
            factor = np.linalg.cholesky(result.T @ result)
            result = scipy.linalg.solve_triangular(factor, result.T, lower=True).T
    except np.linalg.LinAlgError:
        result, _ = np.linalg.qr(basis.astype(np.float64))
    return np.ascontiguousarray(result, dtype=np.float32)


def _top_right_singular_vectors(matrix: _SparseRows, transposed: _SparseRows,
                                shape: tuple[int, int], rank: int, power_iterations: int,
                                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Randomized range finder (Halko et al. 2011) with re-orthonormalised power iterations.

    Returns the vectors (float32, one column each) and their singular values (float64).
    """
    width = min(rank + 20, *shape)
    # Two passes for the basis that is finally projected on, one for those in between.
    basis = _orthonormalise(matrix @ rng.standard_normal((shape[1], width)).astype(np.float32),
                            1 if power_iterations else 2)
    for step in range(power_iterations):
        basis = _orthonormalise(transposed @ basis, 1)
        basis = _orthonormalise(matrix @ basis, 2 if step == power_iterations - 1 else 1)
    # The right singular vectors of basis^T A, from the eigenvectors of its small Gram.
    projected = (transposed @ basis).astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(projected.T @ projected)
    top = np.argsort(eigenvalues)[::-1][:rank]
    singular = np.sqrt(np.maximum(eigenvalues[top], 1e-12 * max(eigenvalues.max(), 1e-30)))
    vectors = np.ascontiguousarray(projected @ eigenvectors[:, top] / singular, dtype=np.float32)
    return vectors, singular


def _ease_ranking(factors: np.ndarray, singular: np.ndarray, gram_diagonal: np.ndarray,
                  reg: float) -> dict[str, np.ndarray]:
    """EASE's closed form for the Gram V S^2 V^T + E, E the diagonal the factors miss.

    P = (Gram + lambda I)^-1 and EASE's score of an unseen film j, -(x P)_j / P_jj,
    follow from Woodbury with only k x k solves: with e = E + lambda and
    M = (S^-2 + V^T V / e)^-1, the score is V_j M V^T (x / e) / (e_j P_jj).
    """
    factors64 = factors.astype(np.float64)
    lam = reg * max(float(gram_diagonal.mean()), 1e-12)
    leftover = np.maximum(gram_diagonal - np.square(factors64) @ np.square(singular), 0.0)
    diagonal = leftover + lam
    scaled = factors64 / diagonal[:, None]
    mixing = np.linalg.inv(np.diag(1.0 / np.square(singular)) + factors64.T @ scaled)
    mixing = (mixing + mixing.T) / 2
    inverse_diagonal = 1.0 / diagonal - np.einsum("ij,ij->i", scaled @ mixing, scaled)
    # P is positive definite, so its diagonal is too; the floor only guards rounding.
    inverse_diagonal = np.maximum(inverse_diagonal, 1e-9 / diagonal)
    return {"ranking_query_scale": (1.0 / diagonal).astype(np.float32),
            "ranking_mixing": mixing.astype(np.float32),
            "ranking_output_scale": (1.0 / (diagonal * inverse_diagonal)).astype(np.float32)}


def _rowwise_dot(left: np.ndarray, left_rows: np.ndarray, right: np.ndarray,
                 right_rows: np.ndarray, chunk: int = 500_000) -> np.ndarray:
    """left[left_rows[n]] . right[right_rows[n]] for every n, in chunks to bound memory."""
    out = np.empty(len(left_rows), dtype=np.float32)
    for start in range(0, len(left_rows), chunk):
        stop = start + chunk
        out[start:stop] = np.einsum("ij,ij->i", left[left_rows[start:stop]],
                                    right[right_rows[start:stop]])
    return out


class _Affinity:
    """A film's ranking score for a user, in standard deviations of that user's scores."""

    def __init__(self, mean_factor: np.ndarray, covariance: np.ndarray, clip: float) -> None:
        self.mean_factor = np.asarray(mean_factor, dtype=np.float64)
        self.covariance = np.asarray(covariance, dtype=np.float64)
        self.clip = clip

    @staticmethod
    def statistics(item_ranking_factors: np.ndarray) -> dict[str, np.ndarray]:
        """Mean and covariance of the film factors, saved with the model: over hundreds of
        thousands of films they cost a loaded model more than a whole recommendation."""
        factors = item_ranking_factors.astype(np.float64)
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


class RecommenderModel:
    """A fitted model; build one with `fit` or `load`, never from raw arrays elsewhere."""

    def __init__(self, *, params: ModelParams, n_users: int, n_items: int, n_ratings: int,
                 global_mean: float, pooled_variance: float, affinity_coefficient: float,
                 arrays: dict[str, np.ndarray]) -> None:
        self.params = params
        self.n_users = n_users
        self.n_items = n_items
        self.n_ratings = n_ratings
        self.global_mean = global_mean
        self.pooled_variance = pooled_variance
        self.affinity_coefficient = affinity_coefficient
        self.item_scale: np.ndarray = arrays["item_scale"]
        self.item_ranking_factors: np.ndarray = arrays["item_ranking_factors"]
        self.ranking_tail_factors: np.ndarray = arrays["ranking_tail_factors"]
        self.item_bias: np.ndarray = arrays["item_bias"]
        self.item_rating_factors: np.ndarray = arrays["item_rating_factors"]
        self.user_ranking_embeddings: np.ndarray = arrays["user_ranking_embeddings"]
        self.user_rating_weights: np.ndarray = arrays["user_rating_weights"]
        self.popularity: np.ndarray = arrays["popularity"]
        self.affinity_statistics = {name: arrays[name] for name in AFFINITY_ARRAYS}
        self.ranking_query_scale: np.ndarray = arrays["ranking_query_scale"]
        self.ranking_mixing: np.ndarray = arrays["ranking_mixing"]
        self.ranking_output_scale: np.ndarray = arrays["ranking_output_scale"]
        self.ranking_singular: np.ndarray = arrays["ranking_singular"]
        self.rating_count: np.ndarray = arrays["rating_count"]
        self.second_stage = LinearStage(*(arrays[name] for name in SECOND_STAGE_ARRAYS))
        self._affinity = _Affinity(arrays["affinity_mean"], arrays["affinity_covariance"],
                                   params.affinity_clip)
        self._films = FilmStatistics(self.item_ranking_factors, self.ranking_singular,
                                     self.rating_count, self.popularity, self.item_bias)

    # --- fitting -------------------------------------------------------------------

    @classmethod
    def fit(cls, user_index: np.ndarray, item_index: np.ndarray, ratings: np.ndarray,
            n_users: int, n_items: int, params: ModelParams | None = None, *,
            watched: tuple[np.ndarray, np.ndarray] | None = None) -> "RecommenderModel":
        """Fit both models on every rating given (a repeated (user, film) pair counts twice).

        `watched` holds (user, film) pairs seen without a rating, disjoint from the rated
        ones as the dataset stores them. They enter the ranking matrix exactly as `fold_in`
        counts a user's watched films, so training and folded-in users are alike.

        The second stage's weights come from one extra fit without `rerank_users` users,
        who are then folded in from 80% of their ratings and scored on the rest.
        """
        params = params or ModelParams()
        user_index = np.asarray(user_index)
        item_index = np.asarray(item_index)
        ratings = np.asarray(ratings)
        _check_ratings(user_index, item_index, ratings, n_users, n_items)
        if not len(ratings):
            raise ValueError("cannot fit a model on no ratings")
        watched_users, watched_items = (np.asarray(part) for part in (
            watched if watched is not None else (np.empty(0, np.int64), np.empty(0, np.int64))))
        if watched_users.shape != watched_items.shape or watched_users.ndim != 1:
            raise ValueError("watched users and films must be 1-D arrays of one length")
        _check_index("user", watched_users, n_users)
        _check_index("item", watched_items, n_items)
        ratings = ratings.astype(np.float32)
        started = time.perf_counter()
        model = cls._fit_first_stage(user_index, item_index, ratings, n_users, n_items, params,
                                     watched_users, watched_items)
        if params.rerank_candidates:
            model.second_stage = _learn_second_stage(
                user_index, item_index, ratings, n_users, n_items, params,
                watched_users, watched_items)
        logger.info("fitted on %d ratings (%d users, %d films) in %.1f s", len(ratings),
                    n_users, n_items, time.perf_counter() - started)
        return model

    @classmethod
    def _fit_first_stage(cls, user_index: np.ndarray, item_index: np.ndarray,
                         ratings: np.ndarray, n_users: int, n_items: int, params: ModelParams,
                         watched_users: np.ndarray, watched_items: np.ndarray
                         ) -> "RecommenderModel":
        """Both models on checked input, with a second stage that keeps the first's order."""
        started = time.perf_counter()
        rng = np.random.default_rng(params.seed)
        users = _Pattern(user_index, item_index, (n_users, n_items))
        items = _Pattern(item_index, user_index, (n_items, n_users))
        item_count = np.bincount(item_index, minlength=n_items)

        item_scale = np.maximum(item_count, 1).astype(np.float32) ** -params.popularity_damping
        entries = interaction_weight(ratings) * item_scale[item_index]
        if len(watched_users):
            watched_entry = interaction_weight(np.float32(ratings.mean(dtype=np.float64)))
            all_users = np.concatenate([user_index, watched_users])
            all_items = np.concatenate([item_index, watched_items])
            all_entries = np.concatenate([entries, watched_entry * item_scale[watched_items]])
            ranking_users = _Pattern(all_users, all_items, (n_users, n_items))
            ranking_items = _Pattern(all_items, all_users, (n_items, n_users))
            del all_users
        else:
            ranking_users, ranking_items, all_entries = users, items, entries
            all_items = item_index
        # The Gram's diagonal: per film, the sum of its squared entries.
        gram_diagonal = np.bincount(all_items, weights=np.square(all_entries, dtype=np.float64),
                                    minlength=n_items)
        del all_items
        ranking_matrix = ranking_users.matrix(all_entries)
        head, tail = _ranking_ranks(params, n_users, n_items)
        all_factors, all_singular = _top_right_singular_vectors(
            ranking_matrix, ranking_items.matrix(all_entries), (n_users, n_items),
            head + tail, params.svd_power_iterations, rng)
        gram_singular = all_singular.copy()
        gram_singular[head:] *= math.sqrt(params.ranking_tail_weight)
        ranking_arrays = _ease_ranking(all_factors, gram_singular, gram_diagonal,
                                       params.ranking_reg)
        item_ranking_factors = np.ascontiguousarray(all_factors[:, :head])
        ranking_tail_factors = np.ascontiguousarray(all_factors[:, head:])
        singular = all_singular[:head]
        del all_factors
        user_embeddings = np.asarray(ranking_matrix @ item_ranking_factors, dtype=np.float32)
        del ranking_matrix, ranking_users, ranking_items, all_entries
        logger.debug("ranking factors in %.1f s", time.perf_counter() - started)

        affinity_statistics = _Affinity.statistics(item_ranking_factors)
        affinity = _Affinity(affinity_statistics["affinity_mean"],
                             affinity_statistics["affinity_covariance"], params.affinity_clip)
        centre, spread = affinity.centre_and_spread(user_embeddings)
        # Leave each rating out of its own score, as it is when a film is predicted.
        own_share = entries * np.square(item_ranking_factors).sum(axis=1)[item_index]
        raw = _rowwise_dot(user_embeddings, user_index, item_ranking_factors, item_index)
        training_affinity = affinity.standardise(raw - own_share, centre[user_index],
                                                 spread[user_index])
        del raw, own_share, entries

        rating_model = _fit_rating_model(
            user_index, item_index, ratings, n_users, n_items, users, items, params,
            _initial_rating_factors(item_ranking_factors, params.rating_factors, rng),
            training_affinity)
        popularity = np.bincount(item_index, weights=ratings >= params.high_rating,
                                 minlength=n_items).astype(np.float32)
        logger.debug("both models in %.1f s", time.perf_counter() - started)
        return cls(params=params, n_users=n_users, n_items=n_items, n_ratings=len(ratings),
                   global_mean=rating_model.global_mean,
                   pooled_variance=rating_model.pooled_variance,
                   affinity_coefficient=rating_model.affinity_coefficient, arrays={
                       "item_scale": item_scale,
                       "item_ranking_factors": item_ranking_factors,
                       "item_bias": rating_model.item_bias.astype(np.float32),
                       "item_rating_factors": rating_model.item_factors.astype(np.float32),
                       "user_ranking_embeddings": user_embeddings,
                       "user_rating_weights": rating_model.user_weights.astype(np.float32),
                       "popularity": popularity, **affinity_statistics, **ranking_arrays,
                       "ranking_tail_factors": ranking_tail_factors,
                       "ranking_singular": singular.astype(np.float32),
                       "rating_count": item_count.astype(np.float32),
                       **_second_stage_arrays(LinearStage.first_stage_order())})

    # --- one user --------------------------------------------------------------------

    def fold_in(self, item_index: np.ndarray, ratings: np.ndarray,
                watched_items: np.ndarray | None = None) -> UserProfile:
        """A user's vectors from their ratings, in closed form (no refit).

        Watched-but-unrated films count as watched at the average rating's weight. A film
        rated twice keeps its last rating; watched films that are also rated count as rated.
        """
        item_index = np.asarray(item_index)
        ratings = np.asarray(ratings)
        _check_ratings(None, item_index, ratings, None, self.n_items)
        reversed_unique, first = np.unique(item_index[::-1], return_index=True)
        items = reversed_unique.astype(np.int64)
        values = ratings[::-1][first].astype(np.float32)
        watched = np.empty(0, dtype=np.int64) if watched_items is None else np.asarray(
            watched_items)
        _check_index("item", watched, self.n_items)
        watched = np.setdiff1d(watched.astype(np.int64), items)

        entries = interaction_weight(values) * self.item_scale[items]
        watched_entries = (interaction_weight(np.float32(self.global_mean))
                           * self.item_scale[watched])
        embedding = (entries @ self.item_ranking_factors[items]
                     + watched_entries @ self.item_ranking_factors[watched]).astype(np.float32)
        query = self.ranking_mixing @ (
            (entries * self.ranking_query_scale[items]) @ self._ranking_basis(items)
            + (watched_entries * self.ranking_query_scale[watched])
            @ self._ranking_basis(watched))
        own_share = entries * np.square(self.item_ranking_factors[items]).sum(axis=1)
        affinity = self._affinity.standardise(
            self.item_ranking_factors[items] @ embedding - own_share,
            *self._affinity.centre_and_spread(embedding))
        return UserProfile(rated_items=items, ratings=values, watched_items=watched,
                           ranking_embedding=embedding, ranking_query=query.astype(np.float32),
                           rating_weights=self._rating_weights(items, values, affinity))

    def _rating_weights(self, items: np.ndarray, values: np.ndarray, affinity: np.ndarray
                        ) -> np.ndarray:
        """The same ridge regression the last ALS sweep solved for training users."""
        params = self.params
        weight = _noise_weights(np.array([len(values)]), np.array([values.sum(dtype=np.float64)]),
                                np.array([np.square(values, dtype=np.float64).sum()]),
                                self.pooled_variance, params.noise_prior, params.noise_power)
        features = _user_step_features(self.item_bias[items], self.item_rating_factors[items])
        targets = (values - self.global_mean - self.item_bias[items]
                   - self.affinity_coefficient * affinity)
        reg = _user_regularisation(params) / weight[0]
        gram = features.T.astype(np.float64) @ features + np.diag(reg)
        return np.linalg.solve(gram, features.T.astype(np.float64) @ targets).astype(np.float32)

    def _affinity_of(self, embedding: np.ndarray, items: np.ndarray) -> np.ndarray:
        centre, spread = self._affinity.centre_and_spread(embedding)
        return self._affinity.standardise(self.item_ranking_factors[items] @ embedding, centre,
                                          spread)

    def is_cold(self, profile: UserProfile) -> bool:
        """Too few matched ratings for personal picks; callers fall back to popularity."""
        return profile.n_ratings < self.params.cold_start_threshold

    def _ranking_basis(self, items: np.ndarray) -> np.ndarray:
        """The first stage's components of these films: full factors, then the tail."""
        return np.hstack([self.item_ranking_factors[items], self.ranking_tail_factors[items]])

    def rank_scores(self, profile: UserProfile) -> np.ndarray:
        """First-stage score of every film (higher is better); seen films are not masked."""
        return self._rank_scores_of(profile.ranking_query[:, None])[:, 0]

    def _rank_scores_of(self, queries: np.ndarray) -> np.ndarray:
        """First-stage scores, one column per column of queries: one product for many
        users is several times faster than one per user."""
        head = self.item_ranking_factors.shape[1]
        return self.ranking_output_scale[:, None] * (
            self.item_ranking_factors @ queries[:head] + self.ranking_tail_factors @ queries[head:])

    def rank(self, profile: UserProfile, n: int, allowed: np.ndarray | None = None,
             boosted: np.ndarray | None = None) -> np.ndarray:
        """The n best films the user has neither rated nor watched, best first.

        allowed: a mask of the films that may be listed (filters), applied before the
        second stage chooses among the first stage's best, so a filter never empties the
        list. boosted: films moved up by two standard deviations of the final scores of the
        films chosen on merit (the watchlist); they are scored even when the first stage
        puts them far down.
        """
        boosted = np.empty(0, np.int64) if boosted is None else np.asarray(boosted, np.int64)
        candidates, features, on_merit = self._candidate_features(
            profile, max(n, self.params.rerank_candidates), allowed, boosted)
        if not len(candidates):
            return candidates
        final = (self.second_stage.scores(features) if self.params.rerank_candidates
                 else features[:, 0])
        if len(boosted):
            # The spread of the films chosen on merit, whichever of them are boosted, so
            # that the boost does not depend on the watchlist.
            spread = float(final[:on_merit].std()) if on_merit else 0.0
            final[np.isin(candidates, boosted)] += 2.0 * spread
        return candidates[np.argsort(-final, kind="stable")[:n]]

    def _candidate_features(self, profile: UserProfile, n: int | None = None,
                            allowed: np.ndarray | None = None,
                            boosted: np.ndarray | None = None,
                            first_stage_scores: np.ndarray | None = None
                            ) -> tuple[np.ndarray, np.ndarray, int]:
        """The first stage's n best unseen `allowed` films, then the `boosted` ones not
        among them; the second stage's features of each; how many came on merit.
        first_stage_scores: the profile's `rank_scores`, when already computed."""
        scores = (self.rank_scores(profile) if first_stage_scores is None
                  else first_stage_scores).astype(np.float64)
        standard = (scores - scores.mean()) / max(float(scores.std()), 1e-12)
        scores[profile.rated_items] = -np.inf
        scores[profile.watched_items] = -np.inf
        if allowed is not None:
            scores[~np.asarray(allowed, dtype=bool)] = -np.inf
        candidates = top_items(scores, self.params.rerank_candidates if n is None else n)
        on_merit = len(candidates)
        positions = np.arange(on_merit, dtype=np.float64)
        if boosted is not None and len(boosted):
            behind = np.setdiff1d(boosted[np.isfinite(scores[boosted])], candidates)
            finite = np.sort(scores[np.isfinite(scores)])
            positions = np.concatenate([positions, len(finite) - np.searchsorted(
                finite, scores[behind], "right")])
            candidates = np.concatenate([candidates, behind])
        return candidates, candidate_features(
            self._films, candidates, standard[candidates], positions,
            self.predict(profile, candidates), profile.rated_items, profile.ratings,
            self.params.high_rating), on_merit

    def predict(self, profile: UserProfile, items: np.ndarray) -> np.ndarray:
        """Predicted ratings (1..10) of the given films for this user."""
        items = np.asarray(items, dtype=np.int64)
        return self._predict_with(profile.rating_weights[None, :], items,
                                  self._affinity_of(profile.ranking_embedding, items))

    def predict_pairs(self, user_index: np.ndarray, item_index: np.ndarray) -> np.ndarray:
        """Predicted ratings for users of the training data (users without ratings get the
        film's mean, films without ratings the user's offset)."""
        users = np.asarray(user_index, dtype=np.int64)
        items = np.asarray(item_index, dtype=np.int64)
        centre, spread = self._affinity.centre_and_spread(self.user_ranking_embeddings)
        raw = _rowwise_dot(self.user_ranking_embeddings, users, self.item_ranking_factors, items)
        affinity = self._affinity.standardise(raw, centre[users], spread[users])
        return self._predict_with(self.user_rating_weights[users], items, affinity)

    def _predict_with(self, weights: np.ndarray, items: np.ndarray, affinity: np.ndarray
                      ) -> np.ndarray:
        """weights: one row per item, or a single row shared by all of them."""
        item_bias = self.item_bias[items]
        taste = (self.item_rating_factors[items] * weights[:, 2:]).sum(axis=1)
        predicted = (self.global_mean + item_bias + weights[:, 0] + weights[:, 1] * item_bias
                     + taste + self.affinity_coefficient * affinity)
        return np.clip(predicted, MIN_RATING, MAX_RATING).astype(np.float32)

    def explain(self, profile: UserProfile, item: int, max_reasons: int = 3) -> tuple[int, ...]:
        """The user's highly rated films most like this one, among those adding to its score.

        "Like" is the cosine of the films' ranking factors, the model's own notion of
        similar films. Ordered by raw contribution instead, the same few strongly
        embedded films explained nearly every pick and so explained none.
        """
        if not profile.n_ratings:
            return ()
        # A strict rater's best films count as loved, but never anything under 3.5 stars.
        high = max(min(self.params.high_rating, float(profile.ratings.max())), MIN_REASON_RATING)
        liked = profile.rated_items[profile.ratings >= high]
        # A rated film's term in the score has the sign of this; its other factors are > 0.
        supports = ((self._ranking_basis(liked) @ self.ranking_mixing)
                    @ self._ranking_basis(np.array([item]))[0] > 0)
        factors = self.item_ranking_factors
        supporting = liked[supports]
        similarity = (factors[supporting] @ factors[item]) / np.maximum(
            np.linalg.norm(factors[supporting], axis=1) * np.linalg.norm(factors[item]), 1e-12)
        order = np.argsort(-similarity, kind="stable")[:max_reasons]
        return tuple(int(film) for film in supporting[order])

    def popularity_scores(self) -> np.ndarray:
        """Per film, how many ratings of at least `high_rating` it has: the cold-start order."""
        return self.popularity

    # --- persistence -------------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"item_scale": self.item_scale, "item_ranking_factors": self.item_ranking_factors,
                "item_bias": self.item_bias, "item_rating_factors": self.item_rating_factors,
                "user_ranking_embeddings": self.user_ranking_embeddings,
                "user_rating_weights": self.user_rating_weights, "popularity": self.popularity,
                **self.affinity_statistics,
                **{name: getattr(self, name) for name in RANKING_ARRAYS},
                **_second_stage_arrays(self.second_stage)}

    def save(self, directory: Path, fingerprint: str) -> None:
        """Write plain float32 arrays and a JSON description, each replaced atomically.

        The JSON (written last) holds the arrays file's SHA-256, so a crash between the
        two writes leaves a pair that `load` rejects rather than mixes.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        payload = _aligned_npz(self._arrays())
        meta = {"format_version": FORMAT_VERSION, "fingerprint": fingerprint,
                "params": asdict(self.params), "n_users": self.n_users, "n_items": self.n_items,
                "n_ratings": self.n_ratings, "global_mean": self.global_mean,
                "pooled_variance": self.pooled_variance,
                "affinity_coefficient": self.affinity_coefficient,
                "second_stage_features": list(FEATURES),
                "shapes": {name: list(array.shape) for name, array in self._arrays().items()},
                "arrays_sha256": hashlib.sha256(payload).hexdigest()}
        write_atomically(directory / ARRAYS_FILE, payload)
        write_atomically(directory / META_FILE, json.dumps(meta, indent=1).encode("utf-8"))

    @classmethod
    def load(cls, directory: Path, expected_fingerprint: str) -> "RecommenderModel":
        """The saved model, or ModelFileError if anything about it cannot be trusted."""
        directory = Path(directory)
        meta = _read_meta(directory / META_FILE)
        if meta["format_version"] != FORMAT_VERSION:
            raise ModelFileError(f"model format {meta['format_version']!r}, expected "
                                 f"{FORMAT_VERSION}")
        if meta["fingerprint"] != expected_fingerprint:
            raise ModelFileError("the model was fitted on other data (fingerprint differs)")
        if meta["second_stage_features"] != list(FEATURES):
            raise ModelFileError("the second stage's weights are for other features")
        try:
            params = ModelParams(**meta["params"])
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"invalid model parameters ({error})") from None
        n_users, n_items = meta["n_users"], meta["n_items"]
        expected = _expected_shapes(params, n_users, n_items)
        if meta["shapes"] != {name: list(shape) for name, shape in expected.items()}:
            raise ModelFileError("the model's array shapes do not match its parameters")
        arrays = _read_arrays(directory / ARRAYS_FILE, meta["arrays_sha256"], expected)
        return cls(params=params, n_users=n_users, n_items=n_items,
                   n_ratings=meta["n_ratings"], global_mean=meta["global_mean"],
                   pooled_variance=meta["pooled_variance"],
                   affinity_coefficient=meta["affinity_coefficient"], arrays=arrays)


# --- the second stage's weights ----------------------------------------------------

def _second_stage_arrays(stage: LinearStage) -> dict[str, np.ndarray]:
    """The stage as the model file stores it (`LinearStage(*arrays)` reads it back)."""
    return {name: np.asarray(part, dtype=np.float32) for name, part in zip(
        SECOND_STAGE_ARRAYS, (stage.mean, stage.scale, stage.weights))}


# Inner users need enough ratings to split 80/20, and the weights enough users to learn from.
_MIN_INNER_RATINGS = 5
_MIN_INNER_USERS = 20
_INNER_KNOWN_SHARE = 0.8
# Inner users whose first-stage scores are computed in one product (bounds its memory).
_SCORED_TOGETHER = 100
# The extra fit converges less far: with 3 ALS sweeps instead of 6 (and at most 2 power
# iterations) the learned weights ranked as well on the 500k sample (seeds 1-3), in 30%
# less time.
_INNER_FIT_ITERATIONS = {"svd_power_iterations": 2, "als_iterations": 3}


def _learn_second_stage(user_index: np.ndarray, item_index: np.ndarray, ratings: np.ndarray,
                        n_users: int, n_items: int, params: ModelParams,
                        watched_users: np.ndarray, watched_items: np.ndarray) -> LinearStage:
    """Weights learned the way they are used: on users the fitted model has not seen.

    Up to `rerank_users` users (at most a fifth of those with enough ratings) are left
    out of one extra fit, folded into it from 80% of their ratings, and their films
    rated >= high_rating among the rest are what the second stage learns to put first.
    Both fits' SVDs start from random directions: an extra fit started from the full
    fit's components would inherit what the full fit saw of the left-out users (their
    hidden ratings made its first stage look 9% better on them than on new users).
    """
    started = time.perf_counter()
    rng = np.random.default_rng([params.seed, 1])
    counts = np.bincount(user_index, minlength=n_users)
    eligible = np.flatnonzero(counts >= _MIN_INNER_RATINGS)
    n_inner = min(params.rerank_users, len(eligible) // 5)
    if n_inner < _MIN_INNER_USERS:
        logger.info("too few users to learn the second stage from; keeping the first's order")
        return LinearStage.first_stage_order()
    inner = np.zeros(n_users, dtype=bool)
    inner[rng.choice(eligible, n_inner, replace=False)] = True
    kept, kept_watched = ~inner[user_index], ~inner[watched_users]
    inner_params = replace(params, **{name: min(getattr(params, name), iterations)
                                      for name, iterations in _INNER_FIT_ITERATIONS.items()})
    model = RecommenderModel._fit_first_stage(
        user_index[kept], item_index[kept], ratings[kept], n_users, n_items, inner_params,
        watched_users[kept_watched], watched_items[kept_watched])

    rows = np.flatnonzero(~kept)
    rows = rows[np.argsort(user_index[rows], kind="stable")]
    bounds = np.flatnonzero(np.diff(user_index[rows])) + 1
    watched_rows = np.flatnonzero(~kept_watched)
    watched_rows = watched_rows[np.argsort(watched_users[watched_rows], kind="stable")]
    profiles, loved = [], []
    for user_rows in np.split(rows, bounds):
        user = user_index[user_rows[0]]
        user_rows = rng.permutation(user_rows)
        cut = int(_INNER_KNOWN_SHARE * len(user_rows))
        known, hidden = user_rows[:cut], user_rows[cut:]
        seen_unrated = watched_items[watched_rows[
            np.searchsorted(watched_users[watched_rows], user):
            np.searchsorted(watched_users[watched_rows], user, "right")]]
        profiles.append(model.fold_in(item_index[known], ratings[known], seen_unrated))
        loved.append(item_index[hidden][ratings[hidden] >= params.high_rating])
    groups = []
    for start in range(0, len(profiles), _SCORED_TOGETHER):
        chunk = profiles[start:start + _SCORED_TOGETHER]
        scores = model._rank_scores_of(np.column_stack([p.ranking_query for p in chunk]))
        for column, (profile, hits) in enumerate(zip(chunk, loved[start:])):
            candidates, features, _ = model._candidate_features(
                profile, first_stage_scores=scores[:, column])
            groups.append((features, np.flatnonzero(np.isin(candidates, hits))))
    # The penalty is stated for `rerank_users` lists; fewer lists are noisier, so it
    # weighs more on small datasets (as a prior worth a fixed number of lists).
    stage = learn_weights(groups, params.rerank_l2 * params.rerank_users / n_inner)
    logger.debug("second stage learned on %d users in %.1f s", n_inner,
                 time.perf_counter() - started)
    return stage


# --- the rating model ---------------------------------------------------------------

def _user_step_features(item_bias: np.ndarray, item_factors: np.ndarray) -> np.ndarray:
    """What a user's weights multiply: 1 (their bias), the film bias (their scale), factors."""
    return np.column_stack([np.ones(len(item_bias)), item_bias, item_factors]).astype(np.float32)


def _user_regularisation(params: ModelParams) -> np.ndarray:
    return np.concatenate([[params.user_bias_reg, params.user_scale_reg],
                           np.full(params.rating_factors, params.factor_reg)])


def _initial_rating_factors(ranking_factors: np.ndarray, rank: int, rng: np.random.Generator
                            ) -> np.ndarray:
    """The leading ranking factors, scaled to entries of about 0.1.

    Started there rather than at random, ALS settles in a better optimum (held-out RMSE
    about 0.4% lower on the tuning splits).
    """
    n_items = ranking_factors.shape[0]
    initial = rng.normal(0.0, 0.1, (n_items, rank)).astype(np.float32)
    shared = min(rank, ranking_factors.shape[1])
    initial[:, :shared] = ranking_factors[:, :shared] * np.float32(0.1 * math.sqrt(n_items))
    return initial


@dataclass(frozen=True)
class _RatingModel:
    global_mean: float
    pooled_variance: float
    affinity_coefficient: float
    item_bias: np.ndarray
    item_factors: np.ndarray
    user_weights: np.ndarray


def _fit_rating_model(user_index: np.ndarray, item_index: np.ndarray, ratings: np.ndarray,
                      n_users: int, n_items: int, users: _Pattern, items: _Pattern,
                      params: ModelParams,
                      item_factors: np.ndarray, affinity: np.ndarray) -> _RatingModel:
    """Alternating ridge regressions, every Gram matrix from one sparse product per sweep.

    A sweep solves all users, then all films, then the affinity coefficient; the last
    sweep stops after the users, so fold-in is exactly that user step.
    """
    global_mean, _, item_bias = fit_biases(user_index, item_index, ratings, n_users, n_items,
                                           user_reg=params.user_bias_reg,
                                           item_reg=params.item_bias_reg)
    counts = np.bincount(user_index, minlength=n_users).astype(np.float64)
    sums = np.bincount(user_index, weights=ratings, minlength=n_users)
    squares = np.bincount(user_index, weights=np.square(ratings, dtype=np.float64),
                          minlength=n_users)
    pooled = float(np.maximum(squares - sums * sums / np.maximum(counts, 1), 0).sum()
                   / len(ratings))
    pooled = max(pooled, 1e-6)
    noise_weight = _noise_weights(counts, sums, squares, pooled, params.noise_prior,
                                  params.noise_power)
    rating_noise_weight = noise_weight[user_index].astype(np.float32)
    user_ones = users.matrix(np.ones(len(ratings), dtype=np.float32))
    item_noise = items.matrix(rating_noise_weight)
    user_affinity = users.matrix(affinity)
    weighted_affinity = affinity * rating_noise_weight
    affinity_energy = float(np.dot(weighted_affinity, affinity)) + params.affinity_reg
    user_reg = _user_regularisation(params)[None, :] / noise_weight[:, None]
    item_reg = np.concatenate([[params.item_bias_reg],
                               np.full(params.rating_factors, params.factor_reg)])
    centred = ratings - np.float32(global_mean)
    coefficient = 0.0
    for sweep in range(params.als_iterations):
        features = _user_step_features(item_bias, item_factors)
        offset = centred - np.float32(coefficient) * affinity
        user_weights = _solve_ridge(user_ones @ _pair_products(features),
                                    users.matrix(offset - item_bias[item_index]) @ features,
                                    user_reg)
        if sweep == params.als_iterations - 1:
            break
        user_features = np.column_stack([1.0 + user_weights[:, 1], user_weights[:, 2:]]
                                        ).astype(np.float32)
        targets = (offset - user_weights[user_index, 0]) * rating_noise_weight
        solved = _solve_ridge(item_noise @ _pair_products(user_features),
                              items.matrix(targets) @ user_features, item_reg[None, :])
        item_bias, item_factors = solved[:, 0], solved[:, 1:].astype(np.float32)
        # Least squares for the one coefficient, the rest of the model held fixed:
        # sum w a (r - mean - b_i - theta_u . f_i) = sum w a (r - mean - b_i)
        #   - sum_u w_u theta_u . (sum_i a_ui f_i).
        features = _user_step_features(item_bias, item_factors)
        explained = np.einsum("ij,ij->i", user_weights, user_affinity @ features) @ noise_weight
        # At least zero: films that fit someone's taste are never predicted lower for it
        # (tiny, structureless data could otherwise fit a negative coefficient).
        coefficient = max(0.0, (float(np.dot(weighted_affinity, centred - item_bias[item_index]))
                                - float(explained)) / affinity_energy)
    logger.debug("affinity coefficient %.3f", coefficient)
    return _RatingModel(global_mean=global_mean, pooled_variance=pooled,
                        affinity_coefficient=coefficient, item_bias=item_bias,
                        item_factors=item_factors, user_weights=user_weights)


# --- reading a saved model ------------------------------------------------------------

_META_TYPES = {"format_version": int, "fingerprint": str, "params": dict, "n_users": int,
               "n_items": int, "n_ratings": int, "global_mean": float, "pooled_variance": float,
               "affinity_coefficient": float, "second_stage_features": list, "shapes": dict,
               "arrays_sha256": str}


def _read_meta(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(_MAX_META_BYTES + 1)
    except OSError as error:
        raise ModelFileError(f"cannot read {path} ({error.strerror or error})") from None
    if len(raw) > _MAX_META_BYTES:
        raise ModelFileError(f"{path} is too large to be model metadata")
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path} is not model metadata")
    for key, kind in _META_TYPES.items():
        value = meta.get(key)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = meta[key] = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ModelFileError(f"{path}: missing or invalid {key!r}")
    for key in ("n_users", "n_items", "n_ratings"):
        if meta[key] < 0:
            raise ModelFileError(f"{path}: negative {key!r}")
    if not (math.isfinite(meta["global_mean"]) and math.isfinite(meta["pooled_variance"])
            and meta["pooled_variance"] > 0 and math.isfinite(meta["affinity_coefficient"])):
        raise ModelFileError(f"{path}: invalid global statistics")
    if set(meta["params"]) != {field.name for field in fields(ModelParams)}:
        raise ModelFileError(f"{path}: parameters of another model version")
    return meta


def _expected_shapes(params: ModelParams, n_users: int, n_items: int
                     ) -> dict[str, tuple[int, ...]]:
    ranking_rank, tail = _ranking_ranks(params, n_users, n_items)
    return {"item_scale": (n_items,),
            "item_ranking_factors": (n_items, ranking_rank),
            "item_bias": (n_items,),
            "item_rating_factors": (n_items, params.rating_factors),
            "user_ranking_embeddings": (n_users, ranking_rank),
            "user_rating_weights": (n_users, params.rating_factors + 2),
            "popularity": (n_items,),
            "affinity_mean": (ranking_rank,),
            "affinity_covariance": (ranking_rank, ranking_rank),
            "ranking_query_scale": (n_items,),
            "ranking_tail_factors": (n_items, tail),
            "ranking_mixing": (ranking_rank + tail, ranking_rank + tail),
            "ranking_output_scale": (n_items,),
            "ranking_singular": (ranking_rank,),
            "rating_count": (n_items,),
            **{name: (len(FEATURES),) for name in SECOND_STAGE_ARRAYS}}


def _read_arrays(path: Path, expected_sha256: str, shapes: dict[str, tuple[int, ...]]
                 ) -> dict[str, np.ndarray]:
    """The arrays as views of the memory-mapped file, once its SHA-256 is the expected one.

    Mapping rather than reading saves copying the file (175 MB at 20M ratings) once more
    than hashing it does. `save` only ever replaces the file, so a mapping stays valid
    while the arrays are in use; a file rewritten in place by something else (a copy onto
    it) would go unchecked, or end the process with SIGBUS if it shrank, as it would for
    the memory-mapped per-user index.
    """
    try:
        with open(path, "rb") as file:
            payload = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as error:  # ValueError: an empty file cannot be mapped
        raise ModelFileError(f"cannot read {path} ({getattr(error, 'strerror', None) or error})"
                             ) from None
    if hashlib.sha256(payload).hexdigest() != expected_sha256:
        raise ModelFileError(f"{path} is truncated, damaged or from another save")
    try:
        arrays = _stored_npz_views(payload)
    except (OSError, ValueError, EOFError, KeyError, struct.error,
            zipfile.BadZipFile) as error:
        raise ModelFileError(f"{path} is not a readable model ({error})") from None
    if set(arrays) != set(shapes):
        raise ModelFileError(f"{path} holds other arrays than a model")
    for name, array in arrays.items():
        if array.dtype != np.float32 or array.shape != shapes[name]:
            raise ModelFileError(f"{path}: {name} has shape {array.shape} and type "
                                 f"{array.dtype}, expected {shapes[name]} float32")
        if not np.all(np.isfinite(array)):
            raise ModelFileError(f"{path}: {name} holds non-finite values")
    return arrays


def _aligned_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed npz whose array data start on 64-byte boundaries of the file.

    A load then uses the arrays in place, as aligned as the buffer holding the file
    (16 bytes or more): a view at an odd offset made the product over all films five
    times slower than a copy. Each member's local header carries a padding extra
    field, as Android's zipalign does; zip readers skip it.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            npy = io.BytesIO()
            # Plain numeric arrays only: nothing is ever pickled.
            np.lib.format.write_array(npy, np.ascontiguousarray(array), allow_pickle=False)
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            unpadded = buffer.tell() + 30 + len(member.filename.encode()) + 4
            padding = -unpadded % _ALIGNMENT
            member.extra = struct.pack("<HH", _PADDING_FIELD, padding) + bytes(padding)
            archive.writestr(member, npy.getvalue())
    return buffer.getvalue()


def _stored_npz_views(payload: mmap.mmap) -> dict[str, np.ndarray]:
    """The arrays of an uncompressed npz (what `np.savez` writes) as read-only views of
    its bytes. `np.load` would copy every array and check every CRC, a fifth of a
    second at 180k films, for bytes the SHA-256 has already vouched for."""
    arrays = {}
    with zipfile.ZipFile(payload) as archive:
        for member in archive.infolist():
            if member.compress_type != zipfile.ZIP_STORED or not member.filename.endswith(".npy"):
                raise ValueError(f"{member.filename} is not a stored .npy array")
            name_length, extra_length = struct.unpack_from("<HH", payload,
                                                           member.header_offset + 26)
            start = member.header_offset + 30 + name_length + extra_length
            end = start + member.file_size
            header = io.BytesIO(payload[start:min(end, start + _MAX_NPY_HEADER_BYTES)])
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}[
                               np.lib.format.read_magic(header)]
            shape, fortran_order, dtype = read_header(header)
            if fortran_order or dtype.hasobject:
                raise ValueError(f"{member.filename} is not a plain C-ordered array")
            count = math.prod(shape)
            offset = start + header.tell()
            if offset + count * dtype.itemsize != end:
                raise ValueError(f"{member.filename} has the wrong length for its shape")
            arrays[member.filename[:-len(".npy")]] = np.frombuffer(
                payload, dtype=dtype, count=count, offset=offset).reshape(shape)
    return arrays
