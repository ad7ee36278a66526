"""The streaming import: `compile_training_data.py import` of a published ratings file.

Each run is a fresh child process that imports the generator's published layout
(`generate_dataset.py --published`: `ratings_export.csv` and `movie_data.csv`) into an
empty folder, and reports its wall time and peak RSS (VmHWM, the interpreter,
pandas and pyarrow included). Targets on 20M ratings: <= 45 s and <= 1.5 GB.

    python benchmarks/bench_import.py --sizes 20000000 --repeats 3
    python benchmarks/bench_import.py --file PATH/TO/ratings.csv.gz --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402
from benchmarks.generate_dataset import (PUBLISHED_MOVIES, PUBLISHED_RATINGS,  # noqa: E402
                                         generate_published)

TARGET_SECONDS = {20_000_000: 45.0}
TARGET_PEAK_BYTES = {20_000_000: 1.5 * 10**9}


def _child(ratings: Path, movies: Path | None, out: Path) -> None:
    from dataset.importer import import_published_dataset

    start = time.perf_counter()
    summary = import_published_dataset(ratings, out, movies_path=movies)
    print(json.dumps({"seconds": time.perf_counter() - start,
                      "peak_rss": harness.peak_rss_bytes(), "ratings": summary.ratings,
                      "load_average": os.getloadavg()[0]}))


def published_dataset(size: int, seed: int, data_root: Path | None) -> Path:
    """The generator's published layout of this size, generated on first use."""
    folder = (harness.DATA_DIR if data_root is None else data_root) / f"published{size}_seed{seed}"
    if not (folder / PUBLISHED_RATINGS).is_file():
        print(f"generating {size:,} published ratings into {folder} ...", flush=True)
        generate_published(folder, ratings=size, seed=seed)
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The streaming import: time and peak memory.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000],
                        help="generated published datasets (full run: 20000000)")
    parser.add_argument("--file", type=Path, help="import this ratings file instead")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--child", type=Path, nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        ratings, movies, out = args.child
        _child(ratings, None if str(movies) == "-" else movies, out)
        return 0
    harness.print_header("The streaming import")
    sources = ([(args.file, None, args.file.name)] if args.file else
               [(folder / PUBLISHED_RATINGS, folder / PUBLISHED_MOVIES, f"{size:,}")
                for size, folder in ((size, published_dataset(size, args.seed, args.data_root))
                                     for size in args.sizes)])
    print(f"{'source':>14} {'median s':>9} {'peak RSS':>10} {'load avg':>9}  spread")
    met, measured = True, False
    for ratings, movies, name in sources:
        reports = []
        for _ in range(args.repeats):
            out = Path(tempfile.mkdtemp(dir=harness.DATA_DIR if harness.DATA_DIR.exists()
                                        else None)) / "dataset"
            try:
                reports.append(harness.run_measured_child(
                    [str(Path(__file__).resolve()), "--child", str(ratings),
                     str(movies) if movies else "-", str(out)]))
            finally:
                shutil.rmtree(out.parent, ignore_errors=True)
        timing = harness.Timing(tuple(float(report["seconds"]) for report in reports))
        peak = max(int(report["peak_rss"]) for report in reports)
        load = max(float(report["load_average"]) for report in reports)
        print(f"{name:>14} {timing.median:>9.2f} {harness.mib(peak):>10} {load:>9.1f}  "
              f"{timing.spread}")
        size = int(reports[0]["ratings"])
        if size in TARGET_SECONDS:
            measured = True
            met &= timing.median <= TARGET_SECONDS[size] and peak <= TARGET_PEAK_BYTES[size]
    print("targets: 20M <= 45 s and <= 1.5 GB; targets met: "
          f"{met if measured else 'no target size measured'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
