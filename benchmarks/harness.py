"""Shared plumbing for the benchmark scripts: timing, peak memory, cached datasets.

Each benchmark script is runnable alone (`python benchmarks/bench_*.py`) and
prints its figures; this module keeps the measuring the same everywhere so the
numbers in BENCHMARKS.md are comparable.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from benchmarks.generate_dataset import generate_dataset

BENCHMARKS_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCHMARKS_DIR.parent
DATA_DIR = BENCHMARKS_DIR / "data"
SHARED_DIR = PROJECT_ROOT.parent / "shared"
SHARED_PAGES_DIR = SHARED_DIR / "letterboxd_pages"
SHARED_SAMPLE = SHARED_DIR / "datasets" / "letterboxd_ratings_500k" / "ratings.csv.gz"


def add_sample_arguments(parser: argparse.ArgumentParser, seeds: bool = True) -> None:
    """--ratings (and --seeds) as every figure-7 script takes them."""
    parser.add_argument("--ratings", type=Path, default=SHARED_SAMPLE,
                        help="ratings CSV in the Kaggle layout (default: the shared 500k sample)")
    if seeds:
        parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])


def add_latency_arguments(parser: argparse.ArgumentParser, sizes: list[int],
                          sizes_help: str, sample: bool = False, repeats: int = 5) -> None:
    """The flags of every script that times runs on generated datasets: which sizes
    (and whether the shared sample too), repeats, the generator's seed, where the
    datasets live, and a cap on the runs' BLAS threads."""
    parser.add_argument("--sizes", type=int, nargs="*", default=sizes, help=sizes_help)
    if sample:
        parser.add_argument("--no-sample", action="store_true",
                            help="skip the shared 500k sample")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="cap BLAS threads in the runs (default: the library's choice)")


def sample_missing(path: Path) -> bool:
    """True, after saying so, when the ratings file is not there (no ../shared)."""
    if path.is_file():
        return False
    print(f"skipped: {path} is not available")
    return True


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated runs; the median is the figure we quote."""

    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def spread(self) -> str:
        return (f"min {min(self.seconds):.4g} s, max {max(self.seconds):.4g} s, "
                f"n={len(self.seconds)}")


def time_runs(action: Callable[[], object], repeats: int, warmup: int = 0,
              clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Run `action` `warmup` times unmeasured, then `repeats` times measured by `clock`
    (wall time by default; `time.process_time` counts only this process's CPU, which
    other processes on the cores do not inflate)."""
    for _ in range(warmup):
        action()
    seconds = []
    for _ in range(repeats):
        start = clock()
        action()
        seconds.append(clock() - start)
    return Timing(tuple(seconds))


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (Linux: VmHWM, else getrusage)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def children_peak_rss_bytes() -> int:
    """The largest peak RSS of any finished child of this process."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def blas_thread_env(threads: int | None) -> dict[str, str] | None:
    """An environment that caps BLAS/OpenMP threads, or None for the inherited one."""
    if threads is None:
        return None
    return {**os.environ, **{name: str(threads) for name in (
        "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}}


def run_measured_child(argv: Sequence[str], timeout: float | None = None,
                       env: dict[str, str] | None = None) -> dict[str, object]:
    """Run a child Python process that prints one JSON object as its last stdout line.

    Memory is measured in a fresh process so that one measurement's heap never
    inflates the next one's peak.
    """
    completed = subprocess.run([sys.executable, *argv], cwd=PROJECT_ROOT, capture_output=True,
                               text=True, timeout=timeout, check=False, env=env)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({completed.returncode}):\n"
                           f"{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def machine_summary() -> str:
    """Cores, memory and CPU model, for quoting next to a figure."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError):
        pass
    return f"{os.cpu_count()} cores{memory}, {model}, Python {platform.python_version()}"


def dataset_dir(ratings: int, seed: int) -> Path:
    return DATA_DIR / f"ratings{ratings}_seed{seed}"


def ensure_dataset(ratings: int, seed: int, data_root: Path | None = None) -> Path:
    """The cached synthetic dataset of this size and seed, generated on first use."""
    root = DATA_DIR if data_root is None else Path(data_root)
    path = root / f"ratings{ratings}_seed{seed}"
    if not (path / "dataset_state.json").exists():
        print(f"generating {ratings:,} ratings (seed {seed}) into {path} ...", flush=True)
        start = time.perf_counter()
        generate_dataset(path, ratings=ratings, seed=seed)
        print(f"  generated in {time.perf_counter() - start:.1f} s", flush=True)
    return path


def mib(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB"


def print_seed_table(rows: dict[str, Sequence[float]], seeds: Sequence[int],
                     name_width: int) -> None:
    """The closing table of the figure-7 scripts: one row per method, one column per seed."""
    print(f"\n{'method':<{name_width}}" + "".join(f"{f'seed {seed}':>9}" for seed in seeds))
    for name, values in rows.items():
        print(f"{name:<{name_width}}" + "".join(f"{value:>9.3f}" for value in values))


def print_header(title: str) -> None:
    print(f"== {title}")
    print(f"   machine: {machine_summary()}")
