"""Figure 7c: what films watched without a rating are worth to the model.

Published ratings files hold ratings only, while a real profile also lists films
watched but never rated (about one in ten on the synthetic datasets). This script
turns a share of the sample's ratings into such films, for training and held-out
users alike, and runs the evaluation's protocol with three ways of treating them:

* ignored: neither fitted on nor folded in (but still left out of the lists);
* fold-in only: counted when a user is folded in, not when fitting;
* fitted and folded in: the product, as `fit_model(watched=...)` does.

The score is recall@50 of hidden films rated >= 8 over popularity's, and the
held-out RMSE; each seed draws its own split and its own unrated films.

    python benchmarks/bench_watched_unrated.py [--ratings PATH] [--share 0.1] [--seeds 0 1 2 3]
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

RELEVANT = 8
WAYS = ("ignored", "fold-in only", "fitted and folded in")


def measure(table, seed: int, share: float) -> dict[str, tuple[float, float]]:
    """Per way: (recall@50 over popularity's, held-out RMSE) on one seed's split."""
    users, items, ratings = (np.asarray(table.user_index, np.int64),
                             np.asarray(table.film_index, np.int64),
                             np.asarray(table.ratings, np.float32))
    rng = np.random.default_rng(seed)
    train, held_out = split_holdout(users, table.n_users, 300, rng)
    unrated = rng.random(len(ratings)) < share
    rated_train, watched_train = train & ~unrated, train & unrated
    fitted = (users[rated_train], items[rated_train], ratings[rated_train],
              table.n_users, table.n_films)
    plain = fit_model(*fitted)
    with_watched = fit_model(*fitted, watched=(users[watched_train], items[watched_train]))
    popularity = np.bincount(items[rated_train], weights=ratings[rated_train] >= RELEVANT,
                             minlength=table.n_films)
    recalls: dict[str, list[float]] = {way: [] for way in (*WAYS, "popularity")}
    errors: dict[str, list[np.ndarray]] = {way: [] for way in WAYS}
    for known, hidden in held_out:
        rated, watched = known[~unrated[known]], items[known[unrated[known]]]
        profiles = {"ignored": plain.fold_in(items[rated], ratings[rated]),
                    "fold-in only": plain.fold_in(items[rated], ratings[rated], watched),
                    "fitted and folded in": with_watched.fold_in(items[rated], ratings[rated],
                                                                 watched)}
        models = {"ignored": plain, "fold-in only": plain, "fitted and folded in": with_watched}
        relevant = items[hidden][ratings[hidden] >= RELEVANT]
        unseen = np.ones(table.n_films, dtype=bool)
        unseen[items[known]] = False  # watched films are left out even where ignored
        for way, profile in profiles.items():
            errors[way].append(models[way].predict(profile, items[hidden]) - ratings[hidden])
            if len(relevant):
                top = models[way].rank(profile, TOP_K, allowed=unseen)
                recalls[way].append(ranking_metrics(top, relevant, TOP_K)[0])
        if len(relevant):
            top = top_k(popularity, items[known], TOP_K)
            recalls["popularity"].append(ranking_metrics(top, relevant, TOP_K)[0])
    baseline = float(np.mean(recalls["popularity"]))
    return {way: (float(np.mean(recalls[way])) / baseline,
                  float(np.sqrt(np.mean(np.concatenate(errors[way]) ** 2)))) for way in WAYS}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Figure 7c: films watched without a rating.")
    harness.add_sample_arguments(parser)
    parser.add_argument("--share", type=float, default=0.1,
                        help="share of ratings turned into unrated watches (default 0.1)")
    args = parser.parse_args(argv)
    if not 0 < args.share < 1:
        parser.error("--share must be between 0 and 1")
    if harness.sample_missing(args.ratings):
        return 0
    table = load_ratings_table(args.ratings)
    harness.print_header(f"Figure 7c: {args.share:.0%} of ratings made unrated; "
                         f"recall@{TOP_K} / popularity's and RMSE, per seed")
    results = {seed: measure(table, seed, args.share) for seed in args.seeds}
    print(f"{'way':<24}" + "".join(f"{f'seed {seed}':>16}" for seed in args.seeds))
    for way in WAYS:
        print(f"{way:<24}" + "".join(f"{results[seed][way][0]:>9.3f}x {results[seed][way][1]:.3f}"
                                     for seed in args.seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
