"""Figure 7b: ranking methods other than the product's first stage, on the evaluation's split.

Each method ranks every film outside a held-out user's fold-in part; the score is
recall@50 of the hidden films rated >= 8, over popularity's, exactly as
`recommender/evaluation.py` computes it (same split for the same seed). Hyperparameters
were tuned on seeds 1-3; seed 0 is the one BENCHMARKS.md reports.

The alternatives keep a dense users x films matrix and, for EASE, a films x films
inverse, so this script is for samples of up to about 15,000 films.

    python benchmarks/bench_ranking_alternatives.py [--ratings PATH] [--seeds 0 1 2 3]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import scipy.sparse.linalg

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402
from recommender.evaluation import (TOP_K, load_ratings_table, ranking_metrics,  # noqa: E402
                                    split_holdout, top_k)
from recommender.fit import fit_model  # noqa: E402
from recommender.model import RecommenderModel  # noqa: E402
from recommender.params import ModelParams  # noqa: E402
from recommender.ranking import interaction_weight  # noqa: E402

MAX_FILMS = 15_000
RELEVANT = 8
NAME_WIDTH = 40
DAMPING = 0.25  # the column scaling the product uses, count^-0.25


class Split:
    """One seed's training matrix and held-out users, in the form the scorers take."""

    def __init__(self, table, seed: int) -> None:
        users, items, ratings = (np.asarray(table.user_index, np.int64),
                                 np.asarray(table.film_index, np.int64),
                                 np.asarray(table.ratings, np.float32))
        train, held_out = split_holdout(users, table.n_users, 300, np.random.default_rng(seed))
        self.train = (users[train], items[train], ratings[train])
        self.n_users, self.n_films = table.n_users, table.n_films
        dense = np.zeros((table.n_users, table.n_films), np.float32)
        dense[users[train], items[train]] = ratings[train]
        self.ratings = dense[np.unique(users[train])]
        self.known = [(items[known], ratings[known]) for known, _ in held_out]
        self.relevant = [items[hidden][ratings[hidden] >= RELEVANT] for _, hidden in held_out]
        counts = np.maximum((self.ratings > 0).sum(axis=0), 1).astype(np.float64)
        self.column_scale = counts ** -DAMPING
        self.weighted = np.where(self.ratings > 0, interaction_weight(self.ratings), 0.0)
        self._models: dict[str, RecommenderModel] = {}

    def model(self, version: str = "product") -> RecommenderModel:
        """The product's model (or an earlier version) on the training users, fitted once
        per split. The first stage is all these methods compete with."""
        if version not in self._models:
            self._models[version] = fit_model(*self.train, self.n_users, self.n_films,
                                              MODEL_VERSIONS[version])
        return self._models[version]

    def fold_in_rows(self, scaled: bool = True) -> np.ndarray:
        """The held-out users' weighted known ratings, one dense row each."""
        rows = np.zeros((len(self.known), self.n_films))
        for row, (items, ratings) in zip(rows, self.known):
            row[items] = interaction_weight(ratings) * (self.column_scale[items] if scaled else 1)
        return rows

    def recall(self, scores: np.ndarray) -> float:
        recalls = [ranking_metrics(top_k(user_scores, known[0], TOP_K), relevant, TOP_K)[0]
                   for user_scores, known, relevant in zip(scores, self.known, self.relevant)
                   if len(relevant)]
        return float(np.mean(recalls))


def popularity(split: Split) -> np.ndarray:
    return np.tile((split.ratings >= RELEVANT).sum(axis=0).astype(np.float64),
                   (len(split.known), 1))


def first_stage(split: Split, version: str = "product") -> np.ndarray:
    """The product's first stage, the one these methods compete with (the second stage
    reorders whichever of them ranks first; figure 7d)."""
    model = split.model(version)
    return np.vstack([model.rank_scores(model.fold_in(items, ratings))
                      for items, ratings in split.known])


def pure_svd(split: Split) -> np.ndarray:
    """The product's ranking until 2026-12-01: (x * d) V V^T on the first stage's factors."""
    model = split.model()
    return np.vstack([model.item_ranking_factors @ model.fold_in(items, ratings).ranking_embedding
                      for items, ratings in split.known])


def ease(split: Split, reg: float = 30.0) -> np.ndarray:
    """Steck's EASE (2019) on the same damped, weighted matrix."""
    matrix = split.weighted * split.column_scale
    gram = matrix.T @ matrix
    gram[np.diag_indices_from(gram)] += reg
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    return split.fold_in_rows() @ weights


def shrunk_svd(split: Split, factors: int = 200, reg: float = 30.0) -> np.ndarray:
    """PureSVD with each factor shrunk by sigma^2 / (sigma^2 + reg), 200 factors."""
    matrix = split.weighted * split.column_scale
    _, singular, right = scipy.sparse.linalg.svds(matrix, k=min(factors, min(matrix.shape) - 1))
    shrink = singular ** 2 / (singular ** 2 + reg)
    return (split.fold_in_rows() @ right.T) * shrink @ right


def rp3beta(split: Split, alpha: float = 1.0, beta: float = 0.5) -> np.ndarray:
    """Random walk item-user-item, divided by popularity^beta (Paudel et al. 2017)."""
    seen = (split.ratings > 0).astype(np.float64)
    to_users = seen / np.maximum(seen.sum(axis=0, keepdims=True), 1)
    to_items = seen / np.maximum(seen.sum(axis=1, keepdims=True), 1)
    walk = (to_users.T @ to_items) ** alpha / np.maximum(seen.sum(axis=0), 1) ** beta
    np.fill_diagonal(walk, 0.0)
    return (split.fold_in_rows(scaled=False) > 0) @ walk


def user_knn(split: Split, neighbours: int = 100, power: float = 2.0) -> np.ndarray:
    """Cosine nearest training users; their weighted ratings, summed by similarity^power."""
    train = split.weighted * split.column_scale
    train = train / np.maximum(np.linalg.norm(train, axis=1, keepdims=True), 1e-12)
    queries = split.fold_in_rows()
    queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    similarity = queries @ train.T
    neighbours = min(neighbours, similarity.shape[1] - 1)
    cut = -np.partition(-similarity, neighbours, axis=1)[:, neighbours][:, None]
    return np.where(similarity >= cut, similarity, 0.0) ** power @ split.weighted


def standardised(scores: np.ndarray) -> np.ndarray:
    """Per user, zero mean and unit spread, so that methods can be added."""
    return ((scores - scores.mean(axis=1, keepdims=True))
            / np.maximum(scores.std(axis=1, keepdims=True), 1e-12))


# The first stage without its softened tail is the one shipped until 2026-12-01 evening,
# with the 5 power iterations it had then.
MODEL_VERSIONS = {"product": ModelParams(rerank_candidates=0),
                  "no tail": ModelParams(rerank_candidates=0, ranking_tail_factors=0,
                                         svd_power_iterations=5)}
CHOSEN = "first stage (EASE, 50 + tail 150)"
SCORERS: dict[str, Callable[[Split], np.ndarray]] = {
    CHOSEN: first_stage,
    "first stage without the tail": lambda split: first_stage(split, "no tail"),
    "PureSVD, same 50 factors": pure_svd,
    "EASE, reg 30": ease,
    "PureSVD, 200 shrunk factors": shrunk_svd,
    "RP3beta": rp3beta,
    "user kNN": user_knn,
}
BLENDS: dict[str, dict[str, float]] = {
    "first stage + EASE": {CHOSEN: 1, "EASE, reg 30": 1},
    "first stage + EASE + 0.5 RP3beta": {CHOSEN: 1,
                                    "EASE, reg 30": 1, "RP3beta": 0.5},
    "first stage + EASE + 0.25 user kNN": {CHOSEN: 1,
                                      "EASE, reg 30": 1, "user kNN": 0.25},
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Figure 7b: other ranking methods.")
    harness.add_sample_arguments(parser)
    args = parser.parse_args(argv)
    if harness.sample_missing(args.ratings):
        return 0
    table = load_ratings_table(args.ratings)
    if table.n_films > MAX_FILMS:
        parser.error(f"{table.n_films:,} films: the dense alternatives stop at {MAX_FILMS:,}")
    harness.print_header("Figure 7b: recall@50 / popularity's, per seed")
    ratios: dict[str, list[float]] = {name: [] for name in [*SCORERS, *BLENDS]}
    for seed in args.seeds:
        split = Split(table, seed)
        baseline = split.recall(popularity(split))
        scores = {name: standardised(scorer(split)) for name, scorer in SCORERS.items()}
        scores.update({name: sum(weight * scores[part] for part, weight in parts.items())
                       for name, parts in BLENDS.items()})
        print(f"seed {seed}: popularity recall@{TOP_K} {baseline:.4f}")
        for name, method_scores in scores.items():
            recall = split.recall(method_scores)
            ratios[name].append(recall / baseline)
            print(f"  {name:<38}{recall:>8.4f}{recall / baseline:>7.3f}x", flush=True)
    harness.print_seed_table(ratios, args.seeds, NAME_WIDTH)
    return 0


if __name__ == "__main__":
    sys.exit(main())
