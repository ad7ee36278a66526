"""Figure 1: parsing one 72-film grid page, parse_film_grid (lxml) vs BeautifulSoup.

Both sides extract the same fields (slug, film id, lid, title, year, rating,
liked) from the saved real pages in tests/fixtures/pages/ (copies of
../shared/letterboxd_pages/), and the script checks they agree before timing, so
the comparison is like for like.
Target: <= 5 ms for the raw page (issue 19; it was 10 ms) and >= 3x faster than
BeautifulSoup("html.parser") on both. The CPU time of a parse is shown too: on cores shared
with other processes the wall time grows, the CPU time much less.

    python benchmarks/bench_parse_grid.py [--repeats 30]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
import time
import types
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bs4 import BeautifulSoup  # noqa: E402

from benchmarks import harness  # noqa: E402
from letterboxd.grid_page import parse_film_grid  # noqa: E402
from letterboxd.records import FilmGridPage, FilmTile  # noqa: E402

GRID_PAGES = ("youngjaek__user_films_page1_thebigal_RAW.html",
              "sdl60660__user_films_samtestacct_page1_RENDERED.html")
FIXTURE_PAGES_DIR = harness.PROJECT_ROOT / "tests" / "fixtures" / "pages"
# The time target is the raw page's, the HTML a crawl fetches (figure 1 and issue 19
# quote it); the rendered page is a browser's DOM saved after its scripts ran, larger,
# and never fetched by a crawl: it is timed for reference, held to the speed-up only.
TARGET_MS = 5.0
TIMED_AGAINST_TARGET = "_RAW.html"
TARGET_SPEEDUP = 3.0

_TILE_CLASSES = {"griditem", "posteritem", "poster-container"}
_NAME_WITH_YEAR = re.compile(r"(.+?)\s+\((\d{4})\)")
_FILM_LINK = re.compile(r"/film/([^/]+)/")
_FILM_UID = re.compile(r"film:(\d+)")
_RATED = re.compile(r"rated-(\d+)")


def _split_name(name: str) -> tuple[str, int | None]:
    match = _NAME_WITH_YEAR.fullmatch(name)
    return (match.group(1), int(match.group(2))) if match else (name, None)


def _is_island(tag: object) -> bool:
    attrs = getattr(tag, "attrs", {})
    return ("data-item-slug" in attrs or "data-film-slug" in attrs
            or attrs.get("data-component-class") == "LazyPoster")


def parse_grid_with_beautifulsoup(html: str) -> tuple[FilmTile, ...]:
    """The same extraction as parse_film_grid, the BeautifulSoup way."""
    soup = BeautifulSoup(html, "html.parser")
    films = []
    for tile in soup.find_all("li", class_=lambda classes: classes in _TILE_CLASSES):
        island = tile.find(_is_island)
        if island is None:
            continue
        slug = island.get("data-item-slug") or island.get("data-film-slug")
        if not slug or "/" in slug:
            match = _FILM_LINK.search(island.get("data-target-link") or "")
            slug = match.group(1) if match else None
        if not slug:
            continue
        try:
            identifier = json.loads(island.get("data-postered-identifier") or "{}")
        except ValueError:
            identifier = {}
        rating, liked, letterboxd_id = None, False, None
        uid = _FILM_UID.fullmatch(str(identifier.get("uid", "")))
        if uid:
            letterboxd_id = int(uid.group(1))
        for paragraph in tile.find_all("p", class_="poster-viewingdata"):
            for element in paragraph.find_all(True):
                classes = element.get("class") or []
                for name in classes:
                    match = _RATED.fullmatch(name)
                    if match and 1 <= int(match.group(1)) <= 10:
                        rating = int(match.group(1))
                liked = liked or "icon-liked" in classes or "liked" in classes
        title, year = _split_name(island.get("data-item-name") or island.get("data-film-name")
                                  or "")
        lid = identifier.get("lid")
        films.append(FilmTile(slug=slug, letterboxd_id=letterboxd_id,
                              lid=lid if isinstance(lid, str) else None, title=title, year=year,
                              rating=rating, liked=liked))
    return tuple(films)


def _module_at(commit: str, name: str) -> types.ModuleType:
    """A project module as it was at a git commit, loaded under its own name."""
    source = subprocess.run(["git", "show", f"{commit}:{name.replace('.', '/')}.py"],
                            cwd=harness.PROJECT_ROOT, capture_output=True, text=True,
                            check=True).stdout
    module = types.ModuleType(name)
    exec(compile(source, f"{name}_at_{commit}", "exec"), module.__dict__)  # noqa: S102 (ours)
    return module


def parser_at(commit: str) -> Callable[[str], FilmGridPage]:
    """parse_film_grid as `letterboxd/grid_page.py` was at a git commit, with that
    commit's `markup` and `records` beneath it (their names moved between commits)."""
    saved = {name: sys.modules[name] for name in ("letterboxd.markup", "letterboxd.records")}
    try:
        for name in saved:
            sys.modules[name] = _module_at(commit, name)
        return _module_at(commit, "letterboxd.grid_page").parse_film_grid
    finally:
        sys.modules.update(saved)


def _films(page: object) -> list[tuple]:
    """A page's films as plain tuples, comparable across commits' record classes."""
    return [dataclasses.astuple(film) for film in page.films]


def compare_with(commit: str, html: str, repeats: int) -> str:
    """The current parser against the one at `commit`, alternated parse by parse, in CPU
    time: on shared cores both suffer the same load, so their ratio stands."""
    try:
        before = parser_at(commit)
    except subprocess.CalledProcessError as error:
        return f"  against {commit}: no grid parser to load there ({error.stderr.strip()})"
    if _films(before(html)) != _films(parse_film_grid(html)):
        return f"  against {commit}: the results differ"
    times: dict[str, list[float]] = {"before": [], "now": []}
    for _ in range(repeats):
        for name, parse in (("before", before), ("now", parse_film_grid)):
            start = time.process_time()
            parse(html)
            times[name].append(time.process_time() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    return (f"  against {commit}: {medians['before'] * 1000:.2f} ms -> "
            f"{medians['now'] * 1000:.2f} ms CPU, ratio {medians['now'] / medians['before']:.3f} "
            f"(medians of {repeats}; minimums "
            f"{min(times['now']) / min(times['before']):.3f})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Figure 1: grid page parse time.")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured runs first")
    parser.add_argument("--pages-dir", type=Path, default=FIXTURE_PAGES_DIR)
    parser.add_argument("--against", metavar="COMMIT",
                        help="also time the parser as it was at this git commit, alternated "
                        "with the current one (a ratio that load on the machine leaves alone)")
    args = parser.parse_args(argv)
    pages = [args.pages_dir / name for name in GRID_PAGES if (args.pages_dir / name).is_file()]
    if not pages:
        print(f"skipped: no saved grid pages in {args.pages_dir}")
        return 0
    harness.print_header("Figure 1: parse one 72-film grid page")
    met = True
    for path in pages:
        html = path.read_text(encoding="utf-8")
        ours = parse_film_grid(html).films
        theirs = parse_grid_with_beautifulsoup(html)
        agree = ours == theirs
        lxml_time = harness.time_runs(partial(parse_film_grid, html), args.repeats, args.warmup)
        lxml_cpu = harness.time_runs(partial(parse_film_grid, html), args.repeats, args.warmup,
                                     clock=time.process_time)
        soup_time = harness.time_runs(partial(parse_grid_with_beautifulsoup, html),
                                      args.repeats, args.warmup)
        speedup = soup_time.median / lxml_time.median
        in_time = (lxml_time.median * 1000 <= TARGET_MS
                   or not path.name.endswith(TIMED_AGAINST_TARGET))
        met &= in_time and speedup >= TARGET_SPEEDUP and agree
        print(f"{path.name}: {len(ours)} films, {path.stat().st_size / 1000:.1f} kB, "
              f"same result: {agree}")
        print(f"  parse_film_grid     {lxml_time.median * 1000:7.2f} ms  ({lxml_time.spread})")
        print(f"  parse_film_grid CPU {lxml_cpu.median * 1000:7.2f} ms  ({lxml_cpu.spread}, "
              f"load average {os.getloadavg()[0]:.1f})")
        print(f"  BeautifulSoup       {soup_time.median * 1000:7.2f} ms  ({soup_time.spread})")
        target = (f"<= {TARGET_MS:g} ms and " if path.name.endswith(TIMED_AGAINST_TARGET)
                  else "rendered DOM, time for reference; ")
        print(f"  speed-up            {speedup:7.1f} x   (target {target}>= {TARGET_SPEEDUP:g} x)")
        if args.against:
            print(compare_with(args.against, html, args.repeats))
    print(f"targets met: {met}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
