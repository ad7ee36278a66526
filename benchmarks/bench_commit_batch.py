"""Figure 3: saving one 50-user batch into datasets of growing size.

The store appends, so a batch should cost the same whatever the dataset holds.
For each size the dataset is opened once, then `commit_batch` alone is timed on
several fresh batches (50 new users, 200-1000 films each, mostly films the
dataset already knows, about 10% watched-unrated). Afterwards the dataset is
rolled back byte for byte, so the cached copy can be reused.
Target: the 20M-rating dataset costs at most 2x what the empty one costs.

    python benchmarks/bench_commit_batch.py [--sizes 0 1000000 5000000 20000000]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402
from benchmarks.generate_dataset import RATING_HISTOGRAM  # noqa: E402
from dataset import layout  # noqa: E402
from load_save_and_translate_data import (DatasetState, DatasetStore,  # noqa: E402
                                          ScrapedFilm, ScrapeStatus, UserScrapeRecord)

BATCH_USERS = 50
TARGET_RATIO = 2.0
NEW_FILMS_FOR_EMPTY = 20_000  # catalogue a batch draws from when the dataset knows no film


def _catalogue(data_dir: Path) -> list[str]:
    """Slugs a batch draws from: the dataset's films, most used first, plus never-seen ones."""
    films = pd.read_csv(data_dir / layout.FILM_MAPPINGS_FILE, usecols=["slug"], dtype=str,
                        keep_default_na=False)["slug"].tolist()
    fresh = max(NEW_FILMS_FOR_EMPTY - len(films), len(films) // 30)
    return films + [f"bench-new-film-{number}" for number in range(fresh)]


def make_batches(catalogue: Sequence[str], count: int, seed: int,
                 users: int = BATCH_USERS) -> list[list[UserScrapeRecord]]:
    """`count` batches of brand-new users with realistic film lists."""
    rng = np.random.default_rng(seed)
    popularity = (np.arange(len(catalogue)) + 2.0) ** -1.05
    popularity = 0.95 * popularity / popularity.sum() + 0.05 / len(catalogue)
    cumulative = np.cumsum(popularity)
    cumulative /= cumulative[-1]
    rating_share = RATING_HISTOGRAM / RATING_HISTOGRAM.sum()
    batches = []
    for batch in range(count):
        records = []
        for slot in range(users):
            watched = int(rng.integers(200, 1001))
            draws = np.searchsorted(cumulative, rng.random(watched * 2))
            chosen = pd.unique(np.minimum(draws, len(catalogue) - 1))[:watched]
            ratings = rng.choice(np.arange(1, 11), len(chosen), p=rating_share)
            unrated = rng.random(len(chosen)) < 0.1
            liked = rng.random(len(chosen)) < 0.15
            tiles = tuple(
                ScrapedFilm(slug=catalogue[index], letterboxd_id=100_000 + int(index),
                            lid=None, title=catalogue[index].replace("-", " ").title(),
                            year=1950 + int(index) % 75,
                            rating=None if skip else int(rating), liked=bool(like))
                for index, rating, skip, like in zip(chosen, ratings, unrated, liked))
            records.append(UserScrapeRecord(f"bench{seed % 100}b{batch:03d}u{slot:02d}",
                                            ScrapeStatus.OK, tiles,
                                            display_name=f"Bench {batch}/{slot}"))
        batches.append(records)
    return batches


class _RollBack:
    """Puts a dataset back exactly as it was: cut appended bytes, restore the state file."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.state_bytes = (data_dir / layout.STATE_FILE).read_bytes()
        self.state = DatasetState.read(data_dir / layout.STATE_FILE)
        self.had_backups = (data_dir / layout.BACKUP_DIR).exists()

    def restore(self) -> None:
        for name, size in self.state.committed.items():
            with open(self.data_dir / name, "r+b") as handle:
                handle.truncate(size)
        (self.data_dir / layout.STATE_FILE).write_bytes(self.state_bytes)
        if not self.had_backups:
            shutil.rmtree(self.data_dir / layout.BACKUP_DIR, ignore_errors=True)


def time_commits(data_dir: Path, batches: int, seed: int,
                 users: int = BATCH_USERS) -> tuple[harness.Timing, int, float]:
    """(commit_batch timings, ratings per batch, seconds to open) on one dataset."""
    rollback = _RollBack(data_dir)
    try:
        start = time.perf_counter()
        store = DatasetStore.open(data_dir)
        open_seconds = time.perf_counter() - start
        prepared = make_batches(_catalogue(data_dir), batches + 1, seed, users)
        store.commit_batch(prepared[0])  # warm-up: first backups/ folder, page cache
        seconds, written = [], 0
        for records in prepared[1:]:
            start = time.perf_counter()
            summary = store.commit_batch(records)
            seconds.append(time.perf_counter() - start)
            written += summary.ratings_written
        return harness.Timing(tuple(seconds)), written // max(batches, 1), open_seconds
    finally:
        rollback.restore()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Figure 3: commit_batch cost vs dataset size.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 1_000_000],
                        help="dataset sizes in ratings (full run: 0 1000000 5000000 20000000)")
    parser.add_argument("--batches", type=int, default=7, help="timed batches per size")
    parser.add_argument("--users", type=int, default=BATCH_USERS, help="users per batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, default=None,
                        help="where generated datasets are cached (default benchmarks/data)")
    args = parser.parse_args(argv)
    harness.print_header(f"Figure 3: commit one {args.users}-user batch")
    print(f"{'ratings':>11} {'median ms':>10} {'ratings/batch':>14} {'open s':>7}  spread")
    medians = {}
    for size in args.sizes:
        data_dir = harness.ensure_dataset(size, args.seed, args.data_root)
        timing, per_batch, open_seconds = time_commits(data_dir, args.batches, args.seed,
                                                          args.users)
        medians[size] = timing.median
        print(f"{size:>11,} {timing.median * 1000:>10.1f} {per_batch:>14,} {open_seconds:>7.2f}"
              f"  {timing.spread}")
    smallest, largest = min(medians), max(medians)
    if largest != smallest and medians[smallest] > 0:
        ratio = medians[largest] / medians[smallest]
        print(f"{largest:,} vs {smallest:,} ratings: {ratio:.2f}x "
              f"(target <= {TARGET_RATIO:g}x); targets met: {ratio <= TARGET_RATIO}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
