"""Figure 7d: what the second ranking stage adds, per seed of the evaluation's split.

The product's model is fitted twice on each seed's training users: as shipped (the
second stage learned from one extra fit without 400 of them, see `recommender/fit.py`)
and with the second stage switched off (`rerank_candidates=0`, the first stage's
order). Both rank every film outside each held-out user's fold-in part, and the
score is recall@50 of their hidden films rated >= 8 over popularity's, exactly as
`recommender/evaluation.py` computes it. Also printed: the weights each fit learned.

    python benchmarks/bench_second_stage.py [--ratings PATH] [--seeds 0 1 2 3]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402
from recommender.evaluation import (TOP_K, load_ratings_table, ranking_metrics,  # noqa: E402
                                    split_holdout, top_k)
from recommender.fit import fit_model  # noqa: E402
from recommender.params import ModelParams  # noqa: E402
from recommender.second_stage import FEATURES  # noqa: E402

RELEVANT = 8
VARIANTS = {"first stage only": ModelParams(rerank_candidates=0),
            "with the second stage (product)": ModelParams()}
NAME_WIDTH = 34


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Figure 7d: the second ranking stage.")
    harness.add_sample_arguments(parser)
    args = parser.parse_args(argv)
    if harness.sample_missing(args.ratings):
        return 0
    table = load_ratings_table(args.ratings)
    users, items, ratings = (np.asarray(table.user_index, np.int64),
                             np.asarray(table.film_index, np.int64),
                             np.asarray(table.ratings, np.float32))
    harness.print_header("Figure 7d: recall@50 / popularity's, per seed")
    rows: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for seed in args.seeds:
        train, held_out = split_holdout(users, table.n_users, 300, np.random.default_rng(seed))
        popularity = np.bincount(items[train], weights=ratings[train] >= RELEVANT,
                                 minlength=table.n_films).astype(np.float64)
        users_ranked = [(items[known], ratings[known], items[hidden][ratings[hidden] >= RELEVANT])
                        for known, hidden in held_out]
        users_ranked = [user for user in users_ranked if len(user[2])]
        baseline = np.mean([ranking_metrics(top_k(popularity, known, TOP_K), loved, TOP_K)[0]
                            for known, _, loved in users_ranked])
        print(f"seed {seed}: popularity recall@{TOP_K} {baseline:.4f}")
        for name, params in VARIANTS.items():
            model = fit_model(users[train], items[train], ratings[train], table.n_users,
                              table.n_films, params)
            recall = np.mean([ranking_metrics(model.rank(model.fold_in(known, stars), TOP_K),
                                              loved, TOP_K)[0]
                              for known, stars, loved in users_ranked])
            rows[name].append(float(recall / baseline))
            if params.rerank_candidates:
                print("  weights " + ", ".join(
                    f"{feature} {weight:+.2f}"
                    for feature, weight in zip(FEATURES, model.second_stage.weights)), flush=True)
    harness.print_seed_table(rows, args.seeds, NAME_WIDTH)
    return 0


if __name__ == "__main__":
    sys.exit(main())
