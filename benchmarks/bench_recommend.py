"""Figure 6: recommending for a new user with the model already cached, end to end.

A "new user" is someone outside the dataset who brings their Letterboxd export
ZIP (300 ratings of films the dataset knows, matched by boxd.it id), so no
network is involved. The figure is the wall time of the whole command,
`python recommend.py --export ZIP --data-dir DIR`, in a subprocess, after one
untimed run that fits and caches the model (or, for a cache of older code, upgrades
it). A dataset member is timed the same way, and an in-process breakdown (cache load,
export matching, fold-in and ranking) shows where the time goes. Beside each wall
time, the CPU time the command used (user + system, from the kernel's accounting of
the child), which other work on the cores inflates less, and the load averages before
and after. Target: <= 1 s end to end.

    python benchmarks/bench_recommend.py [--sizes 1000000 20000000] [--repeats 5]
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402
from benchmarks.generate_dataset import RATING_HISTOGRAM  # noqa: E402
from dataset import layout  # noqa: E402

TARGET_SECONDS = 1.0
EXPORT_RATINGS = 300


def write_export_zip(data_dir: Path, path: Path, ratings: int, seed: int) -> None:
    """A Letterboxd export for someone new: ratings.csv and watched.csv of known films."""
    films = pd.read_csv(data_dir / layout.FILM_MAPPINGS_FILE, dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    # Ids follow first appearance, so low ids are the popular films.
    popular = min(len(films), max(ratings * 4, 2000))
    chosen = rng.choice(popular, min(ratings, popular), replace=False)
    stars = rng.choice(np.arange(1, 11), len(chosen),
                       p=RATING_HISTOGRAM / RATING_HISTOGRAM.sum()) / 2
    rows = []
    for film_id, value in zip(chosen.tolist(), stars.tolist()):
        film = films.iloc[film_id]
        rows.append(["2026-11-01", film["title"], film["year"], f"https://boxd.it/{film['lid']}",
                     f"{value:g}"])
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ratings.csv", _csv_text(
            ["Date", "Name", "Year", "Letterboxd URI", "Rating"], rows))
        archive.writestr("watched.csv", _csv_text(
            ["Date", "Name", "Year", "Letterboxd URI"], [row[:4] for row in rows]))


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return table.getvalue()


def first_member(data_dir: Path) -> str:
    log = pd.read_csv(data_dir / layout.USER_UPDATES_FILE, dtype=str, keep_default_na=False)
    return str(log[(log["status"] == "ok") & (log["n_ratings"].astype(int) > 0)]
               ["username"].iloc[0])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_command(argv: Sequence[str], env: dict[str, str] | None = None,
                cpu: list[float] | None = None) -> float:
    """Wall seconds of the command; its CPU seconds are appended to `cpu` when given."""
    start, cpu_start = time.perf_counter(), _children_cpu()
    completed = subprocess.run([sys.executable, *argv], cwd=harness.PROJECT_ROOT,
                               capture_output=True, text=True, check=False, env=env)
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({completed.returncode}):\n"
                           f"{completed.stderr[-3000:]}")
    if cpu is not None:
        cpu.append(_children_cpu() - cpu_start)
    return elapsed


def timed(argv: Sequence[str], env: dict[str, str] | None, repeats: int
          ) -> tuple[harness.Timing, harness.Timing]:
    """Wall and CPU seconds of `repeats` runs of the command."""
    cpu: list[float] = []
    wall = tuple(run_command(argv, env, cpu) for _ in range(repeats))
    return harness.Timing(wall), harness.Timing(tuple(cpu))


IMPORTS = ("-c", "import recommend")


def measure_imports(env: dict[str, str] | None) -> float:
    """Seconds for a fresh interpreter to import recommend.py and exit."""
    return run_command(IMPORTS, env)


def load_averages() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def breakdown(data_dir: Path, export: Path) -> dict[str, tuple[float, float]]:
    """Wall and CPU seconds of each in-process stage, after imports, with the model cached."""
    from recommender.cache import load_or_fit
    from recommending.filters import FilmFilter, allowed_films
    from recommending.picks import recommend
    from recommending.taste import taste_from_export

    stages = {}
    start, cpu = time.perf_counter(), time.process_time()
    data = load_or_fit(data_dir)
    stages["load cached model"] = (time.perf_counter() - start, time.process_time() - cpu)
    start, cpu = time.perf_counter(), time.process_time()
    taste = taste_from_export(data, export)
    stages["read + match export"] = (time.perf_counter() - start, time.process_time() - cpu)
    start, cpu = time.perf_counter(), time.process_time()
    recommend(data, taste, allowed_films(data, FilmFilter()), top=50)
    stages["fold-in + rank + explain"] = (time.perf_counter() - start,
                                          time.process_time() - cpu)
    return stages


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Figure 6: recommendation latency.")
    harness.add_latency_arguments(parser, [1_000_000], "dataset sizes in ratings "
                                  "(full run: 1000000 20000000)")
    args = parser.parse_args(argv)
    harness.print_header("Figure 6: recommend for a new user, model cached"
                         + (f", BLAS threads capped at {args.blas_threads}"
                            if args.blas_threads else ""))
    env = harness.blas_thread_env(args.blas_threads)
    scratch = Path(tempfile.mkdtemp(prefix="bench_recommend_"))
    met = True
    try:
        for size in args.sizes:
            data_dir = harness.ensure_dataset(size, args.seed, args.data_root)
            export = scratch / f"export_{size}.zip"
            write_export_zip(data_dir, export, EXPORT_RATINGS, args.seed)
            new_user = ["recommend.py", "--export", str(export), "--data-dir", str(data_dir)]
            member = ["recommend.py", first_member(data_dir), "--data-dir", str(data_dir)]
            first = run_command(new_user, env)  # fits and caches the model if not cached yet
            before = load_averages()
            new_user_times = timed(new_user, env, args.repeats)
            member_times = timed(member, env, args.repeats)
            import_times = timed(IMPORTS, env, args.repeats)
            met &= new_user_times[0].median <= TARGET_SECONDS
            print(f"{size:,} ratings (first run, fit + cache if needed: {first:.1f} s)")
            print(f"  {before} before, {load_averages()} after; wall (CPU) medians")
            for name, (wall, cpu) in (("new user, export ZIP", new_user_times),
                                      ("dataset member", member_times),
                                      ("python + imports only", import_times)):
                print(f"  {name:<22} {wall.median:6.2f} s ({cpu.median:.2f} s CPU)  "
                      f"({wall.spread})")
            for stage, (seconds, cpu_seconds) in breakdown(data_dir, export).items():
                print(f"  in-process: {stage:<26} {seconds:6.3f} s ({cpu_seconds:.3f} s CPU)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"target: <= {TARGET_SECONDS:g} s end to end; targets met: {met}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
