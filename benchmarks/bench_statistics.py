"""Figure 10: a person's statistics and the dataset summary for data users.

The headline is the wall time of `python recommend.py MEMBER --stats --data-dir DIR`
in a subprocess, with the model already cached (one untimed run fits it first), on
synthetic datasets and on the shared 500k sample (imported with its film metadata,
so genres are computed too). The same with `--plot FILE.png`, which imports
matplotlib and draws the PNG, and an in-process breakdown show where the time goes.
`compile_training_data.py stats` and `export` are timed too; they read the whole
dataset from its CSV files, so they scale with it. Target: --stats <= 1 s.

    python benchmarks/bench_statistics.py [--sizes 1000000 20000000] [--repeats 5]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402
from benchmarks.bench_recommend import first_member, measure_imports, run_command  # noqa: E402

TARGET_SECONDS = 1.0
SAMPLE_MOVIES = harness.SHARED_SAMPLE.parent / "movies.csv.gz"


def breakdown(data_dir: Path, member: str) -> dict[str, float]:
    """Seconds of each in-process stage, after imports, with the model cached."""
    from config import Config
    from recommender.cache import load_or_fit
    from recommending.community_cache import community_figures
    from recommending.people import member_id, person_named, taste_of_person
    from recommending.statistics import community_of, taste_statistics

    stages = {}
    start = time.perf_counter()
    data = load_or_fit(data_dir)
    stages["load cached model"] = time.perf_counter() - start
    person = person_named(member)
    start = time.perf_counter()
    data, taste = taste_of_person(data, person, Config.from_env(output_dir=data_dir))
    stages["the member's ratings"] = time.perf_counter() - start
    start = time.perf_counter()
    community_of(data)
    stages["community figures, computed"] = time.perf_counter() - start
    start = time.perf_counter()
    community = community_figures(data, data_dir)
    stages["community figures, cached"] = time.perf_counter() - start
    start = time.perf_counter()
    taste_statistics(data, community, taste, member_id(data, person))
    stages["taste_statistics"] = time.perf_counter() - start
    return stages


def sample_dataset(data_root: Path | None) -> Path | None:
    """The shared sample imported with its metadata (once), or None without ../shared."""
    if harness.sample_missing(harness.SHARED_SAMPLE):
        return None
    path = (harness.DATA_DIR if data_root is None else Path(data_root)) / "shared_sample_500k"
    if not (path / "dataset_state.json").exists():
        run_command(["compile_training_data.py", "import", str(harness.SHARED_SAMPLE),
                     "--movies", str(SAMPLE_MOVIES), "--output-dir", str(path), "-q"])
    return path


def datasets_to_time(args: argparse.Namespace, synthetic_note: str,
                     sample_note: str) -> list[tuple[str, Path]]:
    """(label, folder) of each dataset the flags of `add_latency_arguments` name: the
    generated sizes, then the shared sample unless --no-sample or absent."""
    datasets = [(f"{size:,} ratings ({synthetic_note})",
                 harness.ensure_dataset(size, args.seed, args.data_root))
                for size in args.sizes]
    sample = None if args.no_sample else sample_dataset(args.data_root)
    if sample is not None:
        datasets.append((f"shared 500k sample{sample_note}", sample))
    return datasets


def measure(label: str, data_dir: Path, repeats: int, env: dict[str, str] | None,
            scratch: Path) -> bool:
    member = first_member(data_dir)
    stats = ["recommend.py", member, "--stats", "--data-dir", str(data_dir), "-q"]
    commands = {
        "recommend.py --stats": lambda: run_command(stats, env),
        "recommend.py --stats --plot": lambda: run_command(
            [*stats, "--plot", str(scratch / "plot.png")], env),
        # The plain list and the bare start-up, taken in turn with the figures above, as
        # the machine's load moves them all together.
        "recommend.py (the list)": lambda: run_command(stats[:2] + stats[3:], env),
        "python + imports only": lambda: measure_imports(env),
        "compile_training_data stats": lambda: run_command(
            ["compile_training_data.py", "stats", "--data-dir", str(data_dir), "-q"], env),
    }
    first = run_command(stats, env)  # fits and caches the model if not cached yet
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            seconds[name].append(command())
    export = harness.Timing((run_command(["compile_training_data.py", "export",
                                          str(scratch / "export"), "--data-dir",
                                          str(data_dir), "-q"], env),))
    print(f"{label} (first run, fit + cache if needed: {first:.1f} s)")
    for name, values in seconds.items():
        timing = harness.Timing(tuple(values))
        print(f"  {name:<30}{timing.median:6.2f} s  ({timing.spread})")
    print(f"  {'compile_training_data export':<30}{export.median:6.2f} s  (one run)")
    for stage, stage_seconds in breakdown(data_dir, member).items():
        print(f"  in-process: {stage:<30} {stage_seconds:6.3f} s")
    return harness.Timing(tuple(seconds["recommend.py --stats"])).median <= TARGET_SECONDS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Figure 10: statistics latency.")
    harness.add_latency_arguments(parser, [1_000_000], "synthetic dataset sizes in ratings "
                                  "(full run: 1000000 20000000)", sample=True)
    args = parser.parse_args(argv)
    harness.print_header("Figure 10: --stats with the model cached; dataset stats and export")
    env = harness.blas_thread_env(args.blas_threads)
    scratch = Path(tempfile.mkdtemp(prefix="bench_statistics_"))
    met = True
    try:
        for label, data_dir in datasets_to_time(args, "synthetic, no genres",
                                                " (with genres)"):
            met &= measure(label, data_dir, args.repeats, env, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"target: --stats <= {TARGET_SECONDS:g} s end to end; targets met: {met}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
