"""Beyond one machine: Spark MLlib's ALS on the same split and metrics as figure 7.

The step after a 24 GB machine (BENCHMARKS.md, "Beyond one machine") is a cluster.
This script shows the path in local mode: the ratings are exported to Parquet (the
format a cluster reads), Spark's ALS is fitted on the training users' rows, and the
held-out users are folded into Spark's film factors by the same ridge regression ALS
solves for a user (ALS-WR: the penalty grows with the user's number of ratings), then
scored exactly like `recommend.py --evaluate` scores the product: the same
`recommender.evaluation.split_holdout`, recall@50 and NDCG@50 of the hidden films
rated 8 or more, RMSE of the hidden ratings. Popularity on the same split gives the
ratio the README quotes.

pyspark is optional and not in requirements.txt (it needs Java 17 too); without it
the script says so and exits 0.

    pip install pyspark
    python benchmarks/spark_als.py                      # the shared 500k sample
    python benchmarks/spark_als.py --dataset output/    # a dataset folder's ratings
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402
from dataset.loading import load_ratings_dataset  # noqa: E402
from recommender import evaluation  # noqa: E402

# What Spark's ALS is given: its defaults but for a rank of 20 and ten sweeps, not
# tuned (BENCHMARKS.md says what tuning might still gain).
RANK = 20
REGULARISATION = 0.1
ITERATIONS = 10
IMPLICIT_ALPHA = 5.0
# A hidden film counts as loved from 4 stars, as in figure 7.
RELEVANT = 8
# Local mode: one JVM, as many worker threads as cores, and enough heap for the sample.
SPARK_MASTER = "local[*]"
DRIVER_MEMORY = "4g"


@dataclass(frozen=True)
class SparkScores:
    """One ALS variant's figures on the held-out users."""

    name: str
    rmse: float | None
    recall: float
    ndcg: float
    seconds: float


def spark_available() -> bool:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False
    return True


def load_table(ratings: Path | None, dataset: Path | None) -> evaluation.RatingsTable:
    """The ratings as dense ids: a Kaggle-layout file as `--evaluate` reads it, or a dataset."""
    if dataset is None:
        return evaluation.load_ratings_table(ratings)
    data = load_ratings_dataset(dataset)
    return evaluation.RatingsTable(data.user_index, data.film_index, data.rating,
                                   data.n_users, data.n_films)


def export_parquet(table: evaluation.RatingsTable, rows: np.ndarray, path: Path) -> None:
    """The chosen rows as a Parquet file of (user, film, rating) integers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"user": table.user_index[rows].astype(np.int32),
                             "film": table.film_index[rows].astype(np.int32),
                             "rating": table.ratings[rows].astype(np.float32)}), path)


def fit_spark_als(parquet: Path, n_films: int, *, implicit: bool, seed: int
                  ) -> tuple[np.ndarray, float]:
    """Spark's film factors (films x RANK; zeros for films it never saw) and its fit time."""
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master(SPARK_MASTER).appName("letterboxd-als")
             .config("spark.driver.memory", DRIVER_MEMORY)
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        started = time.perf_counter()
        ratings = spark.read.parquet(str(parquet))
        als = ALS(rank=RANK, maxIter=ITERATIONS, regParam=REGULARISATION, userCol="user",
                  itemCol="film", ratingCol="rating", implicitPrefs=implicit,
                  alpha=IMPLICIT_ALPHA, seed=seed, coldStartStrategy="drop")
        model = als.fit(ratings)
        rows = model.itemFactors.collect()
        seconds = time.perf_counter() - started
    finally:
        spark.stop()
    factors = np.zeros((n_films, RANK))
    for row in rows:
        factors[row["id"]] = row["features"]
    return factors, seconds


def fold_in(factors: np.ndarray, films: np.ndarray, ratings: np.ndarray, implicit: bool
            ) -> np.ndarray:
    """A user's vector, solved as Spark's ALS solves a user given the film factors."""
    chosen = factors[films]
    if implicit:
        # Hu et al.: confidence 1 + alpha r on observed films, preference 1, all films at 0.
        confidence = IMPLICIT_ALPHA * ratings
        gram = factors.T @ factors + (chosen.T * confidence) @ chosen
        rhs = chosen.T @ (1.0 + confidence)
    else:
        gram, rhs = chosen.T @ chosen, chosen.T @ ratings
    penalty = REGULARISATION * len(films)
    return np.linalg.solve(gram + penalty * np.eye(factors.shape[1]), rhs)


def score_variant(name: str, table: evaluation.RatingsTable, held_out: list,
                  factors: np.ndarray, implicit: bool, seconds: float) -> SparkScores:
    """RMSE (explicit ALS only: implicit scores are no ratings) and the ranking metrics."""
    errors, recalls, ndcgs = [], [], []
    k = min(evaluation.TOP_K, table.n_films)
    ratings = table.ratings.astype(np.float64)
    for known, hidden in held_out:
        vector = fold_in(factors, table.film_index[known], ratings[known], implicit)
        scores = factors @ vector
        hidden_films = table.film_index[hidden]
        if not implicit:
            errors.append(np.clip(scores[hidden_films], 1, 10) - ratings[hidden])
        relevant = hidden_films[ratings[hidden] >= RELEVANT]
        if not len(relevant):
            continue
        recall, ndcg = evaluation.ranking_metrics(
            evaluation.top_k(scores, table.film_index[known], k), relevant, k)
        recalls.append(recall)
        ndcgs.append(ndcg)
    rmse = float(np.sqrt(np.mean(np.concatenate(errors) ** 2))) if errors else None
    return SparkScores(name, rmse, float(np.mean(recalls)), float(np.mean(ndcgs)), seconds)



def popularity_recall(table: evaluation.RatingsTable, train: np.ndarray, held_out: list
                      ) -> float:
    """Recall@50 of films ordered by their number of ratings >= 8, on the same split."""
    popularity = np.bincount(table.film_index[train], weights=table.ratings[train] >= RELEVANT,
                             minlength=table.n_films)
    k = min(evaluation.TOP_K, table.n_films)
    recalls = []
    for known, hidden in held_out:
        relevant = table.film_index[hidden][table.ratings[hidden] >= RELEVANT]
        if len(relevant):
            recalls.append(evaluation.ranking_metrics(
                evaluation.top_k(popularity, table.film_index[known], k), relevant, k)[0])
    return float(np.mean(recalls))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_sample_arguments(parser, seeds=False)
    parser.add_argument("--dataset", type=Path, help="a dataset folder instead of --ratings")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    harness.print_header("Beyond one machine: Spark MLlib ALS, local mode")
    if not spark_available():
        print("skipped: pyspark is not installed (optional: `pip install pyspark`, "
              "which needs Java 17)")
        return 0
    if args.dataset is None and harness.sample_missing(args.ratings):
        return 0
    table = load_table(args.ratings, args.dataset)
    rng = np.random.default_rng(args.seed)
    train, held_out = evaluation.split_holdout(table.user_index, table.n_users, 300, rng)
    print(f"{len(table.ratings):,} ratings, {table.n_users:,} users, {table.n_films:,} films; "
          f"seed {args.seed}; {len(held_out)} held-out users folded in from 80% of their "
          "ratings")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        parquet = Path(folder) / "train.parquet"
        export_parquet(table, np.flatnonzero(train), parquet)
        for name, implicit in (("Spark ALS, explicit", False), ("Spark ALS, implicit", True)):
            factors, seconds = fit_spark_als(parquet, table.n_films, implicit=implicit,
                                             seed=args.seed)
            results.append(score_variant(name, table, held_out, factors, implicit, seconds))
    popular = popularity_recall(table, train, held_out)
    print(f"\n{'method':<24}{'RMSE':>7}{'recall@50':>11}{'NDCG@50':>9}{'x popularity':>14}"
          f"{'fit s':>8}")
    print(f"{'popularity':<24}{'-':>7}{popular:>11.4f}{'-':>9}{1:>14.2f}{'-':>8}")
    for scores in results:
        rmse = "-" if scores.rmse is None else f"{scores.rmse:.3f}"
        print(f"{scores.name:<24}{rmse:>7}{scores.recall:>11.4f}{scores.ndcg:>9.4f}"
              f"{scores.recall / popular:>14.2f}{scores.seconds:>8.1f}")
    print("\nthe product on the same split: python recommend.py --evaluate "
          f"{args.dataset or args.ratings} --seed {args.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
