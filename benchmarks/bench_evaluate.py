"""Figure 7: the recommender's quality table on the shared 500k-rating sample.

Runs the evaluation exactly as a user would, in a subprocess, and prints its
table verbatim with the wall time: `python recommend.py --evaluate RATINGS_CSV`.
Skips cleanly where the sample is absent.

    python benchmarks/bench_evaluate.py [--ratings PATH] [--seed 0]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402


def evaluation_command(ratings: Path, seed: int) -> list[str]:
    return ["recommend.py", "--evaluate", str(ratings), "--seed", str(seed)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Figure 7: evaluation table.")
    harness.add_sample_arguments(parser, seeds=False)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="cap BLAS threads in the run (default: the library's choice)")
    args = parser.parse_args(argv)
    if harness.sample_missing(args.ratings):
        return 0
    harness.print_header("Figure 7: evaluation on " + args.ratings.name
                         + (f", BLAS threads capped at {args.blas_threads}"
                            if args.blas_threads else ""))
    command = evaluation_command(args.ratings, args.seed)
    print("command: python " + " ".join(command))
    start = time.perf_counter()
    completed = subprocess.run([sys.executable, *command], cwd=harness.PROJECT_ROOT,
                               capture_output=True, text=True, check=False,
                               env=harness.blas_thread_env(args.blas_threads))
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        print(completed.stderr[-3000:], file=sys.stderr)
        return completed.returncode
    print(completed.stdout.rstrip())
    print(f"wall time: {elapsed:.1f} s, peak RSS of the run: "
          f"{harness.mib(harness.children_peak_rss_bytes())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
