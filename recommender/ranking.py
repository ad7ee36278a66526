"""The first ranking stage: EASE (Steck, WWW 2019) on a low-rank-plus-diagonal Gram.

The user-film matrix X holds (rating/10)^2 for every rated film (watching counts,
loving counts more), each film's column scaled by count^-damping so that
blockbusters do not own every factor. EASE scores films by a ridge regression of
each film's column on all the others, which needs the inverse of the films x films
Gram X^T X: out of reach for a crawl's hundreds of thousands of films. Here the Gram
is its top singular part V S^2 V^T (randomized SVD: `ranking_factors` components in
full, the next `ranking_tail_factors` at a fraction of their weight) plus the diagonal
it leaves over, E; by Woodbury the inverse and its diagonal then cost O(films * k^2)
and a user's scores stay closed form, s_j = o_j V_j M V^T (x * d / e), with M a k x k
matrix and o_j, 1/e_j one number per film. How this ranks against PureSVD on the same
factors, and with and without the softened tail, is figure 7b of BENCHMARKS.md.
s is an exact sum over the films the user has seen: the loved ones with a positive
term that are most like the film explain it.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from recommender.linalg import SparsePattern, grouped_sums, top_right_singular_vectors
from recommender.params import MAX_RATING, ModelParams

logger = logging.getLogger(__name__)


def interaction_weight(ratings: np.ndarray) -> np.ndarray:
    """Entry of the ranking matrix for a rating: a watch counts, a loved watch counts more."""
    return (np.asarray(ratings, dtype=np.float32) / MAX_RATING) ** 2


def ranking_ranks(params: ModelParams, n_users: int, n_films: int) -> tuple[int, int]:
    """How many components the first stage keeps in full and in its tail.

    At most one full factor per 20 users or films: on small data more factors overfit
    (the stars' affinity term then learns from in-sample scores). The tail is weighted
    down, so it may reach one component per 10 in all.
    """
    smaller = min(n_users, n_films)
    head = max(1, min(params.ranking_factors, smaller // 20))
    return head, max(0, min(params.ranking_tail_factors, smaller // 10 - head))


@dataclass(frozen=True, eq=False)
class FirstStage:
    """The fitted first stage's arrays, and a user's scores from them."""

    factors: np.ndarray       # (films, head): V's full components, the model's film factors
    tail_factors: np.ndarray  # (films, tail): V's down-weighted components
    query_scale: np.ndarray   # (films,): 1/e
    mixing: np.ndarray        # (head + tail, head + tail): M
    output_scale: np.ndarray  # (films,): o

    def basis(self, films: np.ndarray) -> np.ndarray:
        """The components of these films: full factors, then the tail."""
        return np.hstack([self.factors[films], self.tail_factors[films]])

    def query(self, rated: np.ndarray, rated_entries: np.ndarray, watched: np.ndarray,
              watched_entries: np.ndarray) -> np.ndarray:
        """A user's M V^T (x * d / e), from their rated and watched films' entries of X."""
        query = self.mixing @ ((rated_entries * self.query_scale[rated]) @ self.basis(rated)
                               + (watched_entries * self.query_scale[watched])
                               @ self.basis(watched))
        return query.astype(np.float32)

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """Every film's score, one column per column of queries: one product for many
        users is faster than one per user."""
        head = self.factors.shape[1]
        return self.output_scale[:, None] * (
            self.factors @ queries[:head] + self.tail_factors @ queries[head:])

    def terms(self, rated: np.ndarray) -> np.ndarray:
        """The rated films' components through M: with a film's components, the sign of
        each rated film's term in that film's score (`supports`)."""
        return self.basis(rated) @ self.mixing

    def supports(self, terms: np.ndarray, film: int) -> np.ndarray:
        """Per rated film of `terms`, whether its term in the film's score is positive
        (its other factors, entry and scales, are)."""
        return terms @ self.basis(np.array([film]))[0] > 0


class RankingFit(NamedTuple):
    """What fitting the first stage gives the rest of the fit."""

    film_scale: np.ndarray       # float32 (films,): count^-damping, d
    entries: np.ndarray          # float32, X's entry of each rating, in input order
    factors: np.ndarray          # float32 (films, head)
    tail_factors: np.ndarray     # float32 (films, tail)
    singular: np.ndarray         # float64 (head,)
    ease: dict[str, np.ndarray]  # ranking_query_scale, ranking_mixing, ranking_output_scale
    user_embeddings: np.ndarray  # float32 (users, head): (x * d) V


def fit_ranking(user_index: np.ndarray, film_index: np.ndarray, ratings: np.ndarray,
                watched_users: np.ndarray, watched_films: np.ndarray, n_users: int,
                n_films: int, rating_count: np.ndarray, params: ModelParams,
                rng: np.random.Generator, users: SparsePattern | None) -> RankingFit:
    """The first stage on checked ratings; `users` is their pattern by user, when the
    caller has one (without watched-unrated films it is the ranking matrix's too).

    Watched-unrated (user, film) pairs enter X at the entry of the mean rating, as
    fold-in counts a user's watched films.
    """
    started = time.perf_counter()
    film_scale = np.maximum(rating_count, 1).astype(np.float32) ** -params.popularity_damping
    entries = interaction_weight(ratings) * film_scale[film_index]
    if len(watched_users) or users is None:
        watched_entry = interaction_weight(np.float32(ratings.mean(dtype=np.float64)))
        all_films = np.concatenate([film_index, watched_films])
        all_entries = np.concatenate([entries, watched_entry * film_scale[watched_films]])
        ranking_users = SparsePattern(np.concatenate([user_index, watched_users]), all_films,
                                      (n_users, n_films))
    else:
        ranking_users, all_entries, all_films = users, entries, film_index
    # The Gram's diagonal: per film, the sum of its squared entries.
    gram_diagonal = grouped_sums(all_films, n_films,
                                 lambda part, entries=all_entries: np.square(entries[part],
                                                                             dtype=np.float64))
    del all_films
    ranking_matrix = ranking_users.matrix(all_entries)
    del ranking_users, all_entries
    head, tail = ranking_ranks(params, n_users, n_films)
    all_factors, all_singular = top_right_singular_vectors(
        ranking_matrix, ranking_matrix.T, (n_users, n_films), head + tail,
        params.svd_power_iterations, rng)
    gram_singular = all_singular.copy()
    gram_singular[head:] *= math.sqrt(params.ranking_tail_weight)
    ease = _ease_arrays(all_factors, gram_singular, gram_diagonal, params.ranking_reg)
    factors = np.ascontiguousarray(all_factors[:, :head])
    tail_factors = np.ascontiguousarray(all_factors[:, head:])
    del all_factors
    user_embeddings = np.asarray(ranking_matrix @ factors, dtype=np.float32)
    logger.debug("ranking factors in %.1f s", time.perf_counter() - started)
    return RankingFit(film_scale=film_scale, entries=entries, factors=factors,
                      tail_factors=tail_factors, singular=all_singular[:head], ease=ease,
                      user_embeddings=user_embeddings)


def _ease_arrays(factors: np.ndarray, singular: np.ndarray, gram_diagonal: np.ndarray,
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
