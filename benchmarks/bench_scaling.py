"""How far one machine goes: load and fit measured at several sizes, then extrapolated.

For each size a fresh child loads the generated dataset and fits the model, as
`recommend.py` does the first time (`bench_fit_model.py`'s child), and reports
seconds, CPU seconds and peak RSS. A straight line through log(size) and
log(figure) over the three largest sizes (least squares) gives each figure's growth
exponent, the figures at sizes not measured, and the size at which the peak reaches
the machine's memory. Measurements are saved as JSON lines (`--save`) and can be
reused (`--measured`), since one 100M fit takes many minutes.

    python benchmarks/bench_scaling.py --sizes 1000000 5000000 20000000 100000000 \\
        --save benchmarks/data/scaling.jsonl
    python benchmarks/bench_scaling.py --measured benchmarks/data/scaling.jsonl
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import bench_fit_model, harness  # noqa: E402

# Wall times grow with whatever else runs on the cores; the CPU time of the whole child
# (load and fit, all its threads) much less, so it is fitted too.
FIGURES = (("load_seconds", "load s"), ("seconds", "fit s"), ("cpu_seconds", "CPU s"),
           ("peak_rss", "peak GiB"))
EXTRAPOLATED_SIZES = (200_000_000, 500_000_000, 1_000_000_000)
FITTED_SIZES = 3


@dataclass(frozen=True)
class PowerLaw:
    """figure = scale * size ** exponent, fitted in log-log space."""

    scale: float
    exponent: float

    @classmethod
    def fit(cls, sizes: Sequence[float], values: Sequence[float]) -> "PowerLaw":
        exponent, intercept = np.polyfit(np.log(sizes), np.log(values), 1)
        return cls(math.exp(intercept), float(exponent))

    def at(self, size: float) -> float:
        return self.scale * size ** self.exponent

    def size_for(self, value: float) -> float:
        return (value / self.scale) ** (1 / self.exponent)


def measure(size: int, seed: int, data_root: Path | None) -> dict[str, float]:
    data_dir = harness.ensure_dataset(size, seed, data_root)
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = harness.run_measured_child(
        [str(Path(bench_fit_model.__file__).resolve()), "--child", str(data_dir)])
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"ratings": size, "load_seconds": float(report["load_seconds"]),
            "seconds": float(report["seconds"]), "peak_rss": float(report["peak_rss"]),
            "cpu_seconds": (cpu_after.ru_utime - cpu_before.ru_utime
                            + cpu_after.ru_stime - cpu_before.ru_stime),
            "load_average": max(load_before, os.getloadavg()[0])}


def report(rows: list[dict[str, float]], memory_bytes: float) -> str:
    rows = sorted(rows, key=lambda row: row["ratings"])
    lines = [f"{'ratings':>13} {'load s':>8} {'fit s':>8} {'CPU s':>8} {'peak GiB':>9} "
             f"{'load avg':>9}"]
    for row in rows:
        lines.append(f"{int(row['ratings']):>13,} {row['load_seconds']:>8.1f} "
                     f"{row['seconds']:>8.1f} {row['cpu_seconds']:>8.1f} "
                     f"{row['peak_rss'] / 2**30:>9.2f} "
                     f"{row.get('load_average', float('nan')):>9.1f}")
    if len(rows) < 2:
        return "\n".join(lines + ["(two sizes or more are needed to extrapolate)"])
    # The largest sizes only: at small ones the interpreter's fixed cost bends the line.
    fitted = rows[-FITTED_SIZES:]
    sizes = [row["ratings"] for row in fitted]
    laws = {key: PowerLaw.fit(sizes, [row[key] for row in fitted]) for key, _ in FIGURES}
    lines.append(f"log-log fit on the {len(fitted)} largest: " + ", ".join(
        f"{name} ~ size^{laws[key].exponent:.2f}" for key, name in FIGURES))
    for size in EXTRAPOLATED_SIZES:
        lines.append(f"{size:>13,} " + " ".join(
            f"{laws[key].at(size) / (2**30 if key == 'peak_rss' else 1):>8.1f}"
            + (" " if key == "peak_rss" else "") for key, _ in FIGURES) + "  (extrapolated)")
    limit = laws["peak_rss"].size_for(memory_bytes)
    lines.append(f"peak reaches {memory_bytes / 2**30:.0f} GiB at about {limit:,.0f} ratings "
                 f"(load {laws['load_seconds'].at(limit):.0f} s, fit "
                 f"{laws['seconds'].at(limit) / 60:.0f} min, CPU "
                 f"{laws['cpu_seconds'].at(limit) / 60:.0f} min there)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load and fit at several sizes, extrapolated.")
    parser.add_argument("--sizes", type=int, nargs="*", default=[],
                        help="sizes to measure now (full run: 1000000 5000000 20000000 "
                        "100000000)")
    parser.add_argument("--measured", type=Path, help="JSON lines of earlier measurements")
    parser.add_argument("--save", type=Path, help="append this run's measurements here")
    parser.add_argument("--memory-gib", type=float, default=24.0,
                        help="the machine's memory, where the extrapolation stops")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, default=None)
    args = parser.parse_args(argv)
    harness.print_header("How far one machine goes: load and fit, extrapolated")
    rows = ([json.loads(line) for line in args.measured.read_text().splitlines() if line]
            if args.measured else [])
    for size in args.sizes:
        row = measure(size, args.seed, args.data_root)
        rows.append(row)
        if args.save:
            with open(args.save, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
    print(report(rows, args.memory_gib * 2**30))
    return 0


if __name__ == "__main__":
    sys.exit(main())
