"""Figure 7d: a learned second stage that reorders the chosen model's top candidates.

The chosen model's 300 best films for a user are re-scored by a linear function
of ten features that the fitted model and the training ratings give without any
film metadata: the model's own score (standardised, and its position), the
predicted stars, the film's popularity, its shrunk share of ratings >= 8, its
rating bias, and four similarities between the candidate and the films the user
rated, taken as cosines of the films' singular-value-scaled factors (weighted by
the user's centred ratings; the best to a film rated >= 8; the mean of the top
five; the mean). The weights are learned with a listwise softmax loss on inner
users: three times, 400 training users are held out of an extra fit, folded in
from 80% of their ratings and scored on their hidden ratings >= 8. Nothing of the
evaluation's held-out users is seen in training. Then the model is refitted on
all training users and the weights applied to the evaluation's held-out users.

A second variant needs no extra fit: with every feature standardised over the
user's own candidates (scale-free), one set of weights is learned on the other
seeds' held-out users (leaving out everyone held out in the seed being scored)
and applied as fixed weights, as a product could ship them.

Same split, same recall@50 over popularity's as `evaluation.py`; tuned on seeds
1-3 (candidates 150/300/600, regularisation, similarity scaling, inner fits,
release-year features), seed 0 looked at once.

    python benchmarks/bench_learned_reranker.py [--ratings PATH] [--seeds 0 1 2 3]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import scipy.optimize

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402
from evaluation import TOP_K, load_ratings_table, ranking_metrics, split_holdout, top_k  # noqa
from recommender_model import RecommenderModel, top_items  # noqa: E402

RELEVANT = 8
CANDIDATES = 300
INNER_USERS = 400
INNER_FITS = 3
L2 = 0.01
LOVED_PRIOR = 20  # ratings of the average film's share of >= 8 that a film's share is shrunk with
ROWS = ("chosen model", "reranked, weights from extra fits",
        "reranked, weights from other seeds")
NAME_WIDTH = 38
FEATURES = ("model score (z)", "log position", "predicted stars", "log rating count",
            "shrunk share >= 8", "film bias", "similarity, rating-weighted",
            "similarity, best loved film", "similarity, top five", "similarity, mean")


class Ratings(NamedTuple):
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray


class Stage:
    """One fitted model with what the features need from its training ratings."""

    def __init__(self, train: Ratings, n_users: int, n_items: int) -> None:
        self.model = RecommenderModel.fit(*train, n_users, n_items)
        count = np.bincount(train.items, minlength=n_items).astype(np.float64)
        loved = np.bincount(train.items, weights=train.ratings >= RELEVANT, minlength=n_items)
        prior = loved.sum() / count.sum()
        self.log_count = np.log1p(count)
        self.loved_share = (loved + LOVED_PRIOR * prior) / (count + LOVED_PRIOR)
        # Factors scaled by their singular values: X^T X ~ V S^2 V^T, so these rows'
        # cosines approximate the films' cosines in the rating matrix.
        singular = np.linalg.norm(self.model.user_ranking_embeddings, axis=0)
        scaled = self.model.item_ranking_factors.astype(np.float64) * singular
        self.unit = scaled / np.maximum(np.linalg.norm(scaled, axis=1, keepdims=True), 1e-12)

    def candidates(self, items: np.ndarray, ratings: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """The model's best CANDIDATES films outside `items`, in its order, and features."""
        model = self.model
        profile = model.fold_in(items, ratings)
        scores = model.rank_scores(profile).astype(np.float64)
        standard_scores = (scores - scores.mean()) / max(scores.std(), 1e-12)
        scores[profile.rated_items] = -np.inf
        chosen = top_items(scores, CANDIDATES)
        rated, values = profile.rated_items, profile.ratings
        similarity = self.unit[chosen] @ self.unit[rated].T
        centred = (values - values.mean()) / (values.std() + 1.0)
        loved = values >= min(RELEVANT, values.max())
        top_five = -np.sort(-similarity, axis=1)[:, :5].mean(axis=1)
        features = np.column_stack([
            standard_scores[chosen],
            np.log1p(np.arange(len(chosen))), model.predict(profile, chosen),
            self.log_count[chosen], self.loved_share[chosen], model.item_bias[chosen],
            similarity @ centred / len(values), similarity[:, loved].max(axis=1), top_five,
            similarity.mean(axis=1)])
        return chosen, features


class LinearReranker:
    """Weights over standardised features, fitted by a listwise softmax loss."""

    def __init__(self, groups: list[tuple[np.ndarray, np.ndarray]]) -> None:
        stacked = np.vstack([features for features, _ in groups])
        self.mean, self.scale = stacked.mean(axis=0), stacked.std(axis=0) + 1e-9
        standard = [((features - self.mean) / self.scale, hits) for features, hits in groups]

        def loss(weights: np.ndarray) -> tuple[float, np.ndarray]:
            total, gradient = 0.0, np.zeros_like(weights)
            for features, hits in standard:
                scores = features @ weights
                scores -= scores.max()
                probability = np.exp(scores)
                probability /= probability.sum()
                total -= np.log(probability[hits] + 1e-300).mean()
                gradient -= features[hits].mean(axis=0) - probability @ features
            n = len(standard)
            return total / n + L2 * weights @ weights, gradient / n + 2 * L2 * weights

        start = np.zeros(stacked.shape[1])
        start[0] = 1.0  # the model's own order
        self.weights = scipy.optimize.minimize(loss, start, jac=True, method="L-BFGS-B").x

    def order(self, features: np.ndarray) -> np.ndarray:
        return np.argsort(-((features - self.mean) / self.scale) @ self.weights, kind="stable")


def learn_reranker(train: Ratings, n_users: int, n_items: int, seed: int) -> LinearReranker:
    groups = []
    for fit in range(INNER_FITS):
        inner_train, inner_users = split_holdout(train.users, n_users, INNER_USERS,
                                                 np.random.default_rng([seed, fit]))
        stage = Stage(Ratings(*(part[inner_train] for part in train)), n_users, n_items)
        for known, hidden in inner_users:
            relevant = train.items[hidden][train.ratings[hidden] >= RELEVANT]
            chosen, features = stage.candidates(train.items[known], train.ratings[known])
            hits = np.flatnonzero(np.isin(chosen, relevant))
            if len(hits):
                groups.append((features, hits))
    return LinearReranker(groups)


class HeldOutUser(NamedTuple):
    user: int
    candidates: np.ndarray
    features: np.ndarray
    relevant: np.ndarray


def standardised_per_user(features: np.ndarray) -> np.ndarray:
    """Each feature in standard deviations over the user's own candidates: free of the
    dataset's scales, so weights learned on one split can be applied to another."""
    return (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-9)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Figure 7d: a learned reranking stage.")
    harness.add_sample_arguments(parser)
    args = parser.parse_args(argv)
    if harness.sample_missing(args.ratings):
        return 0
    table = load_ratings_table(args.ratings)
    everyone = Ratings(np.asarray(table.user_index, np.int64),
                       np.asarray(table.item_index, np.int64),
                       np.asarray(table.ratings, np.float32))
    harness.print_header("Figure 7d: recall@50 / popularity's, per seed")
    rows: dict[str, list[float]] = {name: [] for name in ROWS}
    held_by_seed: dict[int, list[HeldOutUser]] = {}
    popularity_recall: dict[int, float] = {}
    for seed in args.seeds:
        train_rows, held_out = split_holdout(everyone.users, table.n_users, 300,
                                             np.random.default_rng(seed))
        train = Ratings(*(part[train_rows] for part in everyone))
        reranker = learn_reranker(train, table.n_users, table.n_items, seed)
        stage = Stage(train, table.n_users, table.n_items)
        popularity = stage.model.popularity_scores()
        recalls: dict[str, list[float]] = {"popularity": [], ROWS[0]: [], ROWS[1]: []}
        held_by_seed[seed] = []
        for known, hidden in held_out:
            relevant = everyone.items[hidden][everyone.ratings[hidden] >= RELEVANT]
            if not len(relevant):
                continue
            known_items = everyone.items[known]
            chosen, features = stage.candidates(known_items, everyone.ratings[known])
            held_by_seed[seed].append(HeldOutUser(int(everyone.users[known[0]]), chosen,
                                                  standardised_per_user(features), relevant))
            for name, ranked in (("popularity", top_k(popularity, known_items, TOP_K)),
                                 (ROWS[0], chosen), (ROWS[1], chosen[reranker.order(features)])):
                recalls[name].append(ranking_metrics(ranked, relevant, TOP_K)[0])
        baseline = popularity_recall[seed] = float(np.mean(recalls["popularity"]))
        print(f"seed {seed}: popularity recall@{TOP_K} {baseline:.4f}; weights "
              + ", ".join(f"{name} {weight:+.2f}"
                          for name, weight in zip(FEATURES, reranker.weights)), flush=True)
        for name in ROWS[:2]:
            rows[name].append(float(np.mean(recalls[name])) / baseline)
    for seed in args.seeds:
        # Weights from the other seeds' held-out users, none of them held out here.
        here = {user.user for user in held_by_seed[seed]}
        groups = [(user.features, np.flatnonzero(np.isin(user.candidates, user.relevant)))
                  for other in args.seeds if other != seed for user in held_by_seed[other]
                  if user.user not in here]
        groups = [(features, hits) for features, hits in groups if len(hits)]
        if not groups:  # a single seed: no other seeds to learn from
            rows[ROWS[2]].append(float("nan"))
            continue
        fixed = LinearReranker(groups)
        recall = np.mean([ranking_metrics(user.candidates[fixed.order(user.features)],
                                          user.relevant, TOP_K)[0]
                          for user in held_by_seed[seed]])
        rows[ROWS[2]].append(float(recall) / popularity_recall[seed])
    harness.print_seed_table(rows, args.seeds, NAME_WIDTH)
    return 0


if __name__ == "__main__":
    sys.exit(main())
