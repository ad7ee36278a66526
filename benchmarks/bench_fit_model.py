"""Figure 5: fitting the recommender on 1M and 20M ratings: seconds and peak RSS.

Each run is a fresh child process that loads the dataset, then times
`fit_model` alone (with the watched-unrated films, as `recommend.py`
fits it). Peak RSS is the whole process's (load included,
since that is what `recommend.py` needs the first time); the peak reached by
the load alone is shown beside it. Targets: 1M in <= 10 s, 20M in <= 180 s,
peak <= 6 GB.

    python benchmarks/bench_fit_model.py [--sizes 1000000 20000000] [--repeats 3]
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

TARGET_SECONDS = {1_000_000: 10.0, 20_000_000: 180.0}
TARGET_PEAK_BYTES = 6 * 10**9


def _child(data_dir: Path) -> None:
    from load_save_and_translate_data import load_ratings_dataset
    from recommender.fit import fit_model

    start = time.perf_counter()
    data = load_ratings_dataset(data_dir)
    load_seconds = time.perf_counter() - start
    after_load = harness.peak_rss_bytes()
    start = time.perf_counter()
    model = fit_model(data.user_index, data.film_index, data.rating, data.n_users,
                      data.n_films, watched=(data.unrated_user, data.unrated_film))
    fit_seconds = time.perf_counter() - start
    print(json.dumps({"seconds": fit_seconds, "load_seconds": load_seconds,
                      "peak_rss": harness.peak_rss_bytes(), "peak_after_load": after_load,
                      "n_users": model.n_users, "n_films": model.n_films}))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Figure 5: model fit time and peak memory.")
    harness.add_latency_arguments(parser, [1_000_000], "dataset sizes in ratings "
                                  "(full run: 1000000 20000000)", repeats=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        _child(args.child)
        return 0
    harness.print_header("Figure 5: fit_model"
                         + (f", BLAS threads capped at {args.blas_threads}"
                            if args.blas_threads else ""))
    print(f"{'ratings':>11} {'fit median s':>13} {'peak RSS':>10} {'peak after load':>16} "
          f"{'load s':>7}  spread")
    met = True
    for size in args.sizes:
        data_dir = harness.ensure_dataset(size, args.seed, args.data_root)
        argv_child = [str(Path(__file__).resolve()), "--child", str(data_dir)]
        env = harness.blas_thread_env(args.blas_threads)
        reports = [harness.run_measured_child(argv_child, env=env) for _ in range(args.repeats)]
        timing = harness.Timing(tuple(float(report["seconds"]) for report in reports))
        peak = max(int(report["peak_rss"]) for report in reports)
        after_load = max(int(report["peak_after_load"]) for report in reports)
        load_seconds = harness.Timing(tuple(float(r["load_seconds"]) for r in reports)).median
        print(f"{size:>11,} {timing.median:>13.2f} {harness.mib(peak):>10} "
              f"{harness.mib(after_load):>16} {load_seconds:>7.2f}  {timing.spread}")
        met &= peak <= TARGET_PEAK_BYTES
        if size in TARGET_SECONDS:
            met &= timing.median <= TARGET_SECONDS[size]
    print("targets: 1M <= 10 s, 20M <= 180 s, peak <= 6 GB; targets met: "
          f"{met if set(args.sizes) & set(TARGET_SECONDS) else 'no target size measured'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
