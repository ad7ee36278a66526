"""The fitted model: a user folded in, their picks (or the cold-start list), stars, reasons.

A model comes from `fit.fit_model` or `model_file.load_model`; it never learns how
it was fitted or stored. Everything here is closed form on the saved arrays, so a
recommendation costs a few products over the films.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from recommender.linalg import rowwise_dot, top_n
from recommender.params import ModelParams, check_index, check_ratings
from recommender.ranking import FirstStage, interaction_weight
from recommender.rating import Affinity, predicted_stars, user_weights
from recommender.second_stage import FilmStatistics, LinearStage, candidate_features

# The lowest rating (3.5 stars) that `explain` may call rating a film highly.
MIN_REASON_RATING = 7
# Boosted films (the watchlist) move up by this many standard deviations of the scores.
WATCHLIST_BOOST = 2.0
SECOND_STAGE_ARRAYS = ("second_stage_mean", "second_stage_scale", "second_stage_weights")


@dataclass(frozen=True, eq=False)
class UserProfile:
    """One user folded into the model: what they rated and their closed-form vectors."""

    rated_films: np.ndarray        # int64, unique
    ratings: np.ndarray            # float32, aligned with rated_films
    watched_films: np.ndarray      # int64, seen but not rated (disjoint from rated_films)
    ranking_embedding: np.ndarray  # float32, (ranking_factors,): (x * d) V, for the stars
    ranking_query: np.ndarray      # float32, (all components,): M V^T (x * d / e), to rank
    rating_weights: np.ndarray     # float32, (bias, scale on film bias, taste factors...)

    @property
    def n_ratings(self) -> int:
        return len(self.rated_films)


@dataclass(frozen=True, eq=False)
class Picks:
    """The films to show, best first, and whether they are the cold-start list (the
    dataset's most loved films) rather than personal picks."""

    films: np.ndarray  # int64 film ids
    cold_start: bool


def second_stage_arrays(stage: LinearStage) -> dict[str, np.ndarray]:
    """The stage as the model's arrays hold it (`LinearStage(*arrays)` reads it back)."""
    return {name: np.asarray(part, dtype=np.float32) for name, part in zip(
        SECOND_STAGE_ARRAYS, (stage.mean, stage.scale, stage.weights))}


class RecommenderModel:
    """A fitted model; build one with `fit_model` or `load_model`, never from raw arrays
    elsewhere. `arrays` maps the model file's array names to the arrays."""

    def __init__(self, *, params: ModelParams, n_users: int, n_films: int, n_ratings: int,
                 global_mean: float, pooled_variance: float, affinity_coefficient: float,
                 arrays: dict[str, np.ndarray]) -> None:
        self.params = params
        self.n_users = n_users
        self.n_films = n_films
        self.n_ratings = n_ratings
        self.global_mean = global_mean
        self.pooled_variance = pooled_variance
        self.affinity_coefficient = affinity_coefficient
        self.arrays = dict(arrays)
        self.item_scale: np.ndarray = arrays["item_scale"]
        self.item_ranking_factors: np.ndarray = arrays["item_ranking_factors"]
        self.ranking_tail_factors: np.ndarray = arrays["ranking_tail_factors"]
        self.item_bias: np.ndarray = arrays["item_bias"]
        self.item_rating_factors: np.ndarray = arrays["item_rating_factors"]
        self.user_ranking_embeddings: np.ndarray = arrays["user_ranking_embeddings"]
        self.user_rating_weights: np.ndarray = arrays["user_rating_weights"]
        self.popularity: np.ndarray = arrays["popularity"]
        self.ranking_query_scale: np.ndarray = arrays["ranking_query_scale"]
        self.ranking_mixing: np.ndarray = arrays["ranking_mixing"]
        self.ranking_output_scale: np.ndarray = arrays["ranking_output_scale"]
        self.ranking_singular: np.ndarray = arrays["ranking_singular"]
        self.rating_count: np.ndarray = arrays["rating_count"]
        self.second_stage = LinearStage(*(arrays[name] for name in SECOND_STAGE_ARRAYS))
        self.first_stage = FirstStage(self.item_ranking_factors, self.ranking_tail_factors,
                                      self.ranking_query_scale, self.ranking_mixing,
                                      self.ranking_output_scale)
        self._affinity = Affinity(arrays["affinity_mean"], arrays["affinity_covariance"],
                                  params.affinity_clip)
        self._films = FilmStatistics(self.item_ranking_factors, self.ranking_singular,
                                     self.rating_count, self.popularity, self.item_bias)

    def with_second_stage(self, stage: LinearStage) -> RecommenderModel:
        """This model with another second stage (the fit learns it after the rest)."""
        return RecommenderModel(
            params=self.params, n_users=self.n_users, n_films=self.n_films,
            n_ratings=self.n_ratings, global_mean=self.global_mean,
            pooled_variance=self.pooled_variance,
            affinity_coefficient=self.affinity_coefficient,
            arrays={**self.arrays, **second_stage_arrays(stage)})

    # --- one user --------------------------------------------------------------------

    def fold_in(self, films: np.ndarray, ratings: np.ndarray,
                watched_films: np.ndarray | None = None) -> UserProfile:
        """A user's vectors from their ratings, in closed form (no refit).

        Watched-but-unrated films count as watched at the average rating's weight. A film
        rated twice keeps its last rating; watched films that are also rated count as rated.
        """
        films = np.asarray(films)
        ratings = np.asarray(ratings)
        check_ratings(None, films, ratings, None, self.n_films)
        reversed_unique, first = np.unique(films[::-1], return_index=True)
        rated = reversed_unique.astype(np.int64)
        values = ratings[::-1][first].astype(np.float32)
        watched = np.empty(0, dtype=np.int64) if watched_films is None else np.asarray(
            watched_films)
        check_index("item", watched, self.n_films)
        watched = np.setdiff1d(watched.astype(np.int64), rated)

        entries = interaction_weight(values) * self.item_scale[rated]
        watched_entries = (interaction_weight(np.float32(self.global_mean))
                           * self.item_scale[watched])
        embedding = (entries @ self.item_ranking_factors[rated]
                     + watched_entries @ self.item_ranking_factors[watched]).astype(np.float32)
        query = self.first_stage.query(rated, entries, watched, watched_entries)
        own_share = entries * np.square(self.item_ranking_factors[rated]).sum(axis=1)
        affinity = self._affinity.standardise(
            self.item_ranking_factors[rated] @ embedding - own_share,
            *self._affinity.centre_and_spread(embedding))
        weights = user_weights(values, self.item_bias[rated], self.item_rating_factors[rated],
                               affinity, global_mean=self.global_mean,
                               pooled_variance=self.pooled_variance,
                               affinity_coefficient=self.affinity_coefficient,
                               params=self.params)
        return UserProfile(rated_films=rated, ratings=values, watched_films=watched,
                           ranking_embedding=embedding, ranking_query=query,
                           rating_weights=weights)

    def is_cold(self, profile: UserProfile) -> bool:
        """Too few matched ratings for personal picks: `pick` falls back to popularity."""
        return profile.n_ratings < self.params.cold_start_threshold

    def pick(self, profile: UserProfile, n: int, allowed: np.ndarray | None = None,
             boosted: np.ndarray | None = None) -> Picks:
        """`rank`'s films, or for a cold profile the n most loved films (by
        `popularity_scores`) the user has not seen, with the same `allowed` and `boosted`."""
        if not self.is_cold(profile):
            return Picks(self.rank(profile, n, allowed=allowed, boosted=boosted), False)
        candidates = (np.ones(self.n_films, dtype=bool) if allowed is None
                      else np.array(allowed, dtype=bool))
        candidates[profile.rated_films] = False
        candidates[profile.watched_films] = False
        scores = self.popularity_scores().astype(np.float64)
        if boosted is not None and len(boosted):
            on_list = np.zeros(self.n_films, dtype=bool)
            on_list[np.asarray(boosted, dtype=np.int64)] = True
            _boost(scores, on_list, scores[candidates])
        scores[~candidates] = -np.inf
        return Picks(top_n(scores, n), True)

    def rank_scores(self, profile: UserProfile) -> np.ndarray:
        """First-stage score of every film (higher is better); seen films are not masked."""
        return self.first_stage_scores(profile.ranking_query[:, None])[:, 0]

    def first_stage_scores(self, queries: np.ndarray) -> np.ndarray:
        """`rank_scores` of many users at once: one column per column of queries (their
        profiles' `ranking_query`)."""
        return self.first_stage.scores(queries)

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
        candidates, features, on_merit = self.candidate_features(
            profile, max(n, self.params.rerank_candidates), allowed, boosted)
        if not len(candidates):
            return candidates
        final = (self.second_stage.scores(features) if self.params.rerank_candidates
                 else features[:, 0])
        if len(boosted):
            # The spread of the films chosen on merit, whichever of them are boosted, so
            # that the boost does not depend on the watchlist.
            _boost(final, np.isin(candidates, boosted), final[:on_merit])
        return candidates[np.argsort(-final, kind="stable")[:n]]

    def candidate_features(self, profile: UserProfile, n: int | None = None,
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
        scores[profile.rated_films] = -np.inf
        scores[profile.watched_films] = -np.inf
        if allowed is not None:
            scores[~np.asarray(allowed, dtype=bool)] = -np.inf
        candidates = top_n(scores, self.params.rerank_candidates if n is None else n)
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
            self.predict(profile, candidates), profile.rated_films, profile.ratings,
            self.params.high_rating), on_merit

    def predict(self, profile: UserProfile, films: np.ndarray) -> np.ndarray:
        """Predicted ratings (1..10) of the given films for this user."""
        films = np.asarray(films, dtype=np.int64)
        centre, spread = self._affinity.centre_and_spread(profile.ranking_embedding)
        affinity = self._affinity.standardise(
            self.item_ranking_factors[films] @ profile.ranking_embedding, centre, spread)
        return self._stars(profile.rating_weights[None, :], films, affinity)

    def predict_pairs(self, users: np.ndarray, films: np.ndarray) -> np.ndarray:
        """Predicted ratings for users of the training data (users without ratings get the
        film's mean, films without ratings the user's offset)."""
        users = np.asarray(users, dtype=np.int64)
        films = np.asarray(films, dtype=np.int64)
        centre, spread = self._affinity.centre_and_spread(self.user_ranking_embeddings)
        raw = rowwise_dot(self.user_ranking_embeddings, users, self.item_ranking_factors, films)
        affinity = self._affinity.standardise(raw, centre[users], spread[users])
        return self._stars(self.user_rating_weights[users], films, affinity)

    def _stars(self, weights: np.ndarray, films: np.ndarray, affinity: np.ndarray
               ) -> np.ndarray:
        return predicted_stars(weights, self.item_bias[films], self.item_rating_factors[films],
                               affinity, global_mean=self.global_mean,
                               affinity_coefficient=self.affinity_coefficient)

    def explain(self, profile: UserProfile, film: int, max_reasons: int = 3
                ) -> tuple[int, ...]:
        """The user's highly rated films most like this one, among those adding to its score.

        "Like" is the cosine of the films' ranking factors, the model's own notion of
        similar films. Ordered by raw contribution instead, the same few strongly
        embedded films explained nearly every pick and so explained none.
        """
        return self.explain_each(profile, [film], max_reasons)[0]

    def explain_each(self, profile: UserProfile, films: Sequence[int], max_reasons: int = 3
                     ) -> list[tuple[int, ...]]:
        """`explain` for each of several films: the loved films' part of the product is
        made once (one product per film was most of a list's time on a busy machine)."""
        if not profile.n_ratings:
            return [() for _ in films]
        # A strict rater's best films count as loved, but never anything under 3.5 stars.
        high = max(min(self.params.high_rating, float(profile.ratings.max())), MIN_REASON_RATING)
        liked = profile.rated_films[profile.ratings >= high]
        terms = self.first_stage.terms(liked)
        factors = self.item_ranking_factors
        reasons = []
        for film in films:
            supporting = liked[self.first_stage.supports(terms, film)]
            similarity = (factors[supporting] @ factors[film]) / np.maximum(
                np.linalg.norm(factors[supporting], axis=1) * np.linalg.norm(factors[film]),
                1e-12)
            order = np.argsort(-similarity, kind="stable")[:max_reasons]
            reasons.append(tuple(int(reason) for reason in supporting[order]))
        return reasons

    def popularity_scores(self) -> np.ndarray:
        """Per film, how many ratings of at least `high_rating` it has: the cold-start order."""
        return self.popularity


def _boost(scores: np.ndarray, boosted: np.ndarray, reference: np.ndarray) -> None:
    """Move the `boosted` (a mask) scores up by WATCHLIST_BOOST standard deviations of
    `reference`, in place; nothing moves when there is no reference to measure."""
    if len(reference):
        scores[boosted] += WATCHLIST_BOOST * float(np.std(reference))
