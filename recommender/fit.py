"""Fitting: the ranking and rating models on every rating, then the second stage's
weights, learned on users left out of one extra fit.

Everything is vectorised numpy/scipy; the only loops are over ALS sweeps, power
iterations and the second stage's few hundred inner users, so fitting scales to
tens of millions of ratings.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np

from progress import ShareProgress, share_of
from recommender.linalg import SparsePattern, grouped_sums, rowwise_dot
from recommender.model import RecommenderModel, second_stage_arrays
from recommender.params import ModelParams, check_index, check_ratings
from recommender.ranking import fit_ranking
from recommender.rating import Affinity, fit_rating_model, initial_rating_factors
from recommender.second_stage import LinearStage, learn_weights

logger = logging.getLogger(__name__)

# Inner users need enough ratings to split 80/20, and the weights enough users to learn from.
_MIN_INNER_RATINGS = 5
_MIN_INNER_USERS = 20
_INNER_KNOWN_SHARE = 0.8
# Inner users whose first-stage scores are computed in one product (bounds its memory).
_SCORED_TOGETHER = 100
# The extra fit converges less far: with 3 ALS sweeps instead of 6 (and at most 2 power
# iterations) the learned weights ranked as well on the 500k sample (seeds 1-3), in
# less time.
_INNER_FIT_ITERATIONS = {"svd_power_iterations": 2, "als_iterations": 3}
# Where the parts of a fit end, as shares of its time (BENCHMARKS.md, figure 5 has the
# times): only for the progress bar, so that its time left holds from part to part.
_BOTH_MODELS_SHARE = 0.4       # of a fit with the second stage; the rest learns it
_RANKING_SHARE = 0.75          # of fitting both models; the rest fits the stars
_INNER_FIT_SHARE = 0.45        # of learning the second stage; the rest scores its users


def fit_model(user_index: np.ndarray, film_index: np.ndarray, ratings: np.ndarray,
              n_users: int, n_films: int, params: ModelParams | None = None, *,
              watched: tuple[np.ndarray, np.ndarray] | None = None,
              progress: ShareProgress | None = None) -> RecommenderModel:
    """Fit both models on every rating given (a repeated (user, film) pair counts twice).

    `watched` holds (user, film) pairs seen without a rating, disjoint from the rated
    ones as the dataset stores them. They enter the ranking matrix exactly as `fold_in`
    counts a user's watched films, so training and folded-in users are alike.

    The second stage's weights come from one extra fit without `rerank_users` users,
    who are then folded in from 80% of their ratings and scored on the rest.

    `progress` is told each part of the fit as it starts and the share done.
    """
    params = params or ModelParams()
    user_index = np.asarray(user_index)
    film_index = np.asarray(film_index)
    ratings = np.asarray(ratings)
    check_ratings(user_index, film_index, ratings, n_users, n_films)
    if not len(ratings):
        raise ValueError("cannot fit a model on no ratings")
    watched_users, watched_films = (np.asarray(part) for part in (
        watched if watched is not None else (np.empty(0, np.int64), np.empty(0, np.int64))))
    if watched_users.shape != watched_films.shape or watched_users.ndim != 1:
        raise ValueError("watched users and films must be 1-D arrays of one length")
    check_index("user", watched_users, n_users)
    check_index("item", watched_films, n_films)
    ratings = ratings.astype(np.float32)
    started = time.perf_counter()
    both_share = _BOTH_MODELS_SHARE if params.rerank_candidates else 1.0
    model = fit_both_models(user_index, film_index, ratings, n_users, n_films, params,
                            watched_users, watched_films, share_of(progress, 0, both_share))
    if params.rerank_candidates:
        model = model.with_second_stage(_learn_second_stage(
            user_index, film_index, ratings, n_users, n_films, params,
            watched_users, watched_films, share_of(progress, both_share, 1)))
    if progress is not None:
        progress("done", 1)
    logger.debug("fitted on %s ratings (%s members, %s films) in %.1f s", f"{len(ratings):,}",
                f"{n_users:,}", f"{n_films:,}", time.perf_counter() - started)
    return model


def fit_both_models(user_index: np.ndarray, film_index: np.ndarray, ratings: np.ndarray,
                    n_users: int, n_films: int, params: ModelParams,
                    watched_users: np.ndarray, watched_films: np.ndarray,
                    progress: ShareProgress | None = None) -> RecommenderModel:
    """The ranking and rating models on checked input (float32 ratings), with a second
    stage that keeps the first stage's order."""
    started = time.perf_counter()
    if progress is not None:
        progress("ranking", 0)
    rng = np.random.default_rng(params.seed)
    # With watched-unrated films the ranking matrix has a pattern of its own, so the
    # ratings' pattern is built after it is gone: the two never take memory together.
    users = (None if len(watched_users)
             else SparsePattern(user_index, film_index, (n_users, n_films)))
    rating_count = np.bincount(film_index, minlength=n_films)
    (film_scale, entries, film_factors, tail_factors, singular, ease,
     user_embeddings) = fit_ranking(user_index, film_index, ratings, watched_users,
                                    watched_films, n_users, n_films, rating_count, params,
                                    rng, users)
    if users is None:
        users = SparsePattern(user_index, film_index, (n_users, n_films))
    if progress is not None:
        progress("stars", _RANKING_SHARE)

    affinity_statistics = Affinity.statistics(film_factors)
    affinity = Affinity(affinity_statistics["affinity_mean"],
                        affinity_statistics["affinity_covariance"], params.affinity_clip)
    centre, spread = affinity.centre_and_spread(user_embeddings)
    # Leave each rating out of its own score, as it is when a film is predicted.
    own_share = entries * np.square(film_factors).sum(axis=1)[film_index]
    raw = rowwise_dot(user_embeddings, user_index, film_factors, film_index)
    training_affinity = affinity.standardise(raw - own_share, centre[user_index],
                                             spread[user_index])
    del raw, own_share, entries

    rating_model = fit_rating_model(
        user_index, film_index, ratings, n_users, n_films, users, params,
        initial_rating_factors(film_factors, params.rating_factors, rng), training_affinity)
    popularity = grouped_sums(film_index, n_films,
                              lambda part: ratings[part] >= params.high_rating
                              ).astype(np.float32)
    logger.debug("both models in %.1f s", time.perf_counter() - started)
    return RecommenderModel(
        params=params, n_users=n_users, n_films=n_films, n_ratings=len(ratings),
        global_mean=rating_model.global_mean, pooled_variance=rating_model.pooled_variance,
        affinity_coefficient=rating_model.affinity_coefficient, arrays={
            "item_scale": film_scale,
            "item_ranking_factors": film_factors,
            "item_bias": rating_model.film_bias.astype(np.float32),
            "item_rating_factors": rating_model.film_factors.astype(np.float32),
            "user_ranking_embeddings": user_embeddings,
            "user_rating_weights": rating_model.user_weights.astype(np.float32),
            "popularity": popularity, **affinity_statistics, **ease,
            "ranking_tail_factors": tail_factors,
            "ranking_singular": singular.astype(np.float32),
            "rating_count": rating_count.astype(np.float32),
            **second_stage_arrays(LinearStage.first_stage_order())})


def _learn_second_stage(user_index: np.ndarray, film_index: np.ndarray, ratings: np.ndarray,
                        n_users: int, n_films: int, params: ModelParams,
                        watched_users: np.ndarray, watched_films: np.ndarray,
                        progress: ShareProgress | None = None) -> LinearStage:
    """Weights learned the way they are used: on users the fitted model has not seen.

    Up to `rerank_users` users (at most a fifth of those with enough ratings) are left
    out of one extra fit, folded into it from 80% of their ratings, and their films
    rated >= high_rating among the rest are what the second stage learns to put first.
    Both fits' SVDs start from random directions: an extra fit started from the full
    fit's components would inherit what the full fit saw of the left-out users (their
    hidden ratings made its first stage look better on them than on new users).
    """
    started = time.perf_counter()
    rng = np.random.default_rng([params.seed, 1])
    counts = np.bincount(user_index, minlength=n_users)
    eligible = np.flatnonzero(counts >= _MIN_INNER_RATINGS)
    n_inner = min(params.rerank_users, len(eligible) // 5)
    if n_inner < _MIN_INNER_USERS:
        logger.debug("too few members (%d) to learn the second stage from; keeping the "
                     "first stage's order", n_inner)
        return LinearStage.first_stage_order()
    tuning = "tuning the order"
    inner = np.zeros(n_users, dtype=bool)
    inner[rng.choice(eligible, n_inner, replace=False)] = True
    kept, kept_watched = ~inner[user_index], ~inner[watched_users]
    inner_params = replace(params, **{name: min(getattr(params, name), iterations)
                                      for name, iterations in _INNER_FIT_ITERATIONS.items()})
    model = fit_both_models(
        user_index[kept], film_index[kept], ratings[kept], n_users, n_films, inner_params,
        watched_users[kept_watched], watched_films[kept_watched],
        share_of(progress, 0, _INNER_FIT_SHARE, stage=tuning))
    scoring = share_of(progress, _INNER_FIT_SHARE, 1)

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
        seen_unrated = watched_films[watched_rows[
            np.searchsorted(watched_users[watched_rows], user):
            np.searchsorted(watched_users[watched_rows], user, "right")]]
        profiles.append(model.fold_in(film_index[known], ratings[known], seen_unrated))
        loved.append(film_index[hidden][ratings[hidden] >= params.high_rating])
    groups = []
    for start in range(0, len(profiles), _SCORED_TOGETHER):
        chunk = profiles[start:start + _SCORED_TOGETHER]
        scores = model.first_stage_scores(np.column_stack([p.ranking_query for p in chunk]))
        for column, (profile, hits) in enumerate(zip(chunk, loved[start:])):
            candidates, features, _ = model.candidate_features(
                profile, first_stage_scores=scores[:, column])
            groups.append((features, np.flatnonzero(np.isin(candidates, hits))))
        if scoring is not None:
            scoring(tuning, len(groups) / len(profiles))
    # The penalty is stated for `rerank_users` lists; fewer lists are noisier, so it
    # weighs more on small datasets (as a prior worth a fixed number of lists).
    stage = learn_weights(groups, params.rerank_l2 * params.rerank_users / n_inner)
    logger.debug("second stage learned on %d users in %.1f s", n_inner,
                 time.perf_counter() - started)
    return stage
