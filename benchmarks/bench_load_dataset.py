"""Figure 4: loading a dataset for the model (`load_ratings_dataset`): time and peak RSS.

Every run happens in a fresh child process so its peak resident memory is
its own (read from /proc/self/status VmHWM, which includes the interpreter
and pandas: the "after imports" column). Files are in the page cache after the first run;
the median is of warm runs. Target: 20M ratings in <= 30 s and <= 3 GB.

    python benchmarks/bench_load_dataset.py [--sizes 5000000 20000000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402

TARGET_SECONDS = 30.0
TARGET_PEAK_BYTES = 3 * 10**9


def _child(data_dir: Path) -> None:
    from dataset.loading import load_ratings_dataset

    before = harness.peak_rss_bytes()
    start = time.perf_counter()
    data = load_ratings_dataset(data_dir)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss": harness.peak_rss_bytes(),
                      "rss_before": before, "ratings": int(len(data.rating)),
                      "users": data.n_users, "films": data.n_films}))


def measure(data_dir: Path, repeats: int,
            cold_runs: int = 1) -> tuple[harness.Timing, int, dict[str, object]]:
    """(warm timings, largest peak RSS, last child's report); unmeasured cold runs first."""
    argv = [str(Path(__file__).resolve()), "--child", str(data_dir)]
    for _ in range(cold_runs):
        harness.run_measured_child(argv)
    reports = [harness.run_measured_child(argv) for _ in range(repeats)]
    timing = harness.Timing(tuple(float(report["seconds"]) for report in reports))
    return timing, max(int(report["peak_rss"]) for report in reports), reports[-1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Figure 4: load time and peak memory.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000],
                        help="dataset sizes in ratings (full run: 5000000 20000000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold-runs", type=int, default=1,
                        help="unmeasured runs that fill the page cache")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        _child(args.child)
        return 0
    harness.print_header("Figure 4: load_ratings_dataset")
    print(f"{'ratings':>11} {'median s':>9} {'peak RSS':>10} {'after imports':>14}  spread")
    met: bool | None = None
    for size in args.sizes:
        data_dir = harness.ensure_dataset(size, args.seed, args.data_root)
        timing, peak, report = measure(data_dir, args.repeats, args.cold_runs)
        print(f"{size:>11,} {timing.median:>9.2f} {harness.mib(peak):>10} "
              f"{harness.mib(int(report['rss_before'])):>14}  {timing.spread}")
        if size >= 20_000_000:
            met = (met is not False and timing.median <= TARGET_SECONDS
                   and peak <= TARGET_PEAK_BYTES)
    print(f"target for 20M: <= {TARGET_SECONDS:g} s and <= {TARGET_PEAK_BYTES / 1e9:g} GB; "
          f"targets met: {'20M not measured' if met is None else met}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
