"""Figure 8: what the recommendation table adds to a run of recommend.py.

The table measures titles in terminal columns, so a run pays for importing the table's
module and, once a title has a character beyond ASCII, for loading wcwidth; both are
timed in fresh interpreters that have already loaded what the list needs (counted
against figure 6's 1 s). Then rendering a 50-pick table at 80 columns, with Latin
titles and with titles in Japanese, Chinese and decomposed accents.

    python benchmarks/bench_table.py [--repeats 200]
"""
from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402
from presentation.picks import render  # noqa: E402
from recommending.picks import Recommendation  # noqa: E402

PICKS = 50
LATIN = ("Eternal Sunshine of the Spotless Mind", "Heat", "The Lord of the Rings: The Return "
         "of the King", "Back to the Future Part II", "Her")
WIDE = ("千と千尋の神隠し", "花様年華", "Ame\u0301lie", "Cache\u0301", "七人の侍 Seven Samurai")
REASONS = ("Halloween (1978)", "Scream (1996)", "The Thing (1982)")
# What an import adds once the list's own modules (numpy, pandas, the model) are loaded,
# as they are in every run of recommend.py.
IMPORT_SNIPPET = ("import json, sys, time; sys.path.insert(0, '.'); import recommending.picks; "
                  "start = time.perf_counter(); import {module}; "
                  "print(json.dumps({{'seconds': time.perf_counter() - start}}))")


def picks_of(titles: Sequence[str]) -> list[Recommendation]:
    return [Recommendation(rank=rank, slug=f"film-{rank}", title=titles[rank % len(titles)],
                           year=1950 + rank, lid="", predicted_rating=7.3, because=REASONS,
                           on_watchlist=False) for rank in range(1, PICKS + 1)]


def import_seconds(snippet: str, repeats: int) -> harness.Timing:
    """Fresh interpreters: only there does an import cost what a run of the command pays."""
    return harness.Timing(tuple(float(harness.run_measured_child(["-c", snippet])["seconds"])
                                for _ in range(repeats)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Figure 8: the recommendation table's cost.")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--imports", type=int, default=9, help="fresh interpreters to time")
    args = parser.parse_args(argv)
    harness.print_header("Figure 8: rendering the recommendation table")
    for name, titles in (("Latin titles", LATIN), ("CJK and accented titles", WIDE)):
        timing = harness.time_runs(partial(render, picks_of(titles), "table", width=80,
                                           own_average=3.4), args.repeats, warmup=3)
        print(f"{PICKS}-pick table, {name:<24} {timing.median * 1000:7.2f} ms  "
              f"({timing.spread})")
    for module, when in (("presentation.picks", "every run"),
                         ("wcwidth", "runs with a title beyond ASCII")):
        added = import_seconds(IMPORT_SNIPPET.format(module=module), args.imports)
        print(f"import {module:<18} {added.median * 1000:6.1f} ms, paid by {when} "
              f"({added.spread}; fresh interpreters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
