"""Figure 15: the questions beside the list (--match, --with, --from-list, --since,
--like), with the model cached, end to end.

Each question is timed as a person runs it, `python recommend.py ... --data-dir DIR`
in a subprocess, with the model fitted and cached first and one untimed match run to
compute and keep the taste match's calibration: a match of two members, a member with
two others, a text list of `LIST_FILMS` films (half "Title (Year)", half links), an
export of `EXPORT_RATINGS` ratings logged over three years asked `--since` a year ago,
and the films like the most rated film. In each repeat the member's plain list and a
bare `python -c "import recommend"` are timed in turn with them, so that the load on
the machine moves them all together and the work can be told from Python's start-up.
An in-process breakdown shows where the work goes. Target: each <= 1 s end to end.

    python benchmarks/bench_questions.py [--sizes 1000000] [--no-sample] [--repeats 5]
"""
from __future__ import annotations

import argparse
import csv
import io
import shutil
import sys
import tempfile
import time
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402
from benchmarks.bench_recommend import measure_imports, run_command  # noqa: E402
from benchmarks.bench_statistics import datasets_to_time  # noqa: E402

TARGET_SECONDS = 1.0
LIST_FILMS = 100
EXPORT_RATINGS = 300
MIN_MEMBER_RATINGS = 20
POPULAR_FILMS = 2000   # the list's and the export's films are drawn from the most rated
START_UP = "python + imports only"
THE_LIST = "recommend.py MEMBER (the list)"


def film_link(films: pd.DataFrame, film: int) -> str:
    """The film's boxd.it link where the dataset knows its lid, else its page's link."""
    lid = films["lid"].iloc[film]
    return (f"https://boxd.it/{lid}" if isinstance(lid, str) and lid
            else f"https://letterboxd.com/film/{films['slug'].iloc[film]}/")


def year_of(films: pd.DataFrame, film: int) -> int | None:
    year = films["year"].iloc[film]
    return None if pd.isna(year) else int(year)


def popular_films(data, count: int, seed: int) -> np.ndarray:
    """`count` films drawn from the dataset's most rated, never a series."""
    counts = np.asarray(data.rating_counts)
    films = np.argsort(-counts, kind="stable")[:POPULAR_FILMS]
    films = films[(counts[films] > 0)
                  & (data.films["content_type"].to_numpy()[films] != "tv")]
    return np.random.default_rng(seed).choice(films, min(count, len(films)), replace=False)


def write_list(data, path: Path, seed: int) -> None:
    """A festival line-up as plain text: "Title (Year)" and links on alternate lines (a
    link too where the dataset holds two films of that title and year, as the
    generated datasets do: such a line would only be named as ambiguous)."""
    films = data.films
    twice = films.duplicated(["title", "year"], keep=False).to_numpy()
    lines = ["# a line-up of films, one a line"]
    for number, film in enumerate(popular_films(data, LIST_FILMS, seed).tolist()):
        title, year = films["title"].iloc[film], year_of(films, film)
        lines.append(f"{title} ({year})" if number % 2 and title and year and not twice[film]
                     else film_link(films, film))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_dated_export(data, path: Path, today: date, seed: int) -> date:
    """An export whose ratings were logged over the last three years, evenly; returns
    the date a year ago, from which about a third of them count."""
    films = popular_films(data, EXPORT_RATINGS, seed + 1)
    rng = np.random.default_rng(seed)
    ratings = rng.integers(1, 11, len(films))
    days = rng.integers(0, 3 * 365, len(films))
    rows = []
    for film, rating, ago in zip(films.tolist(), ratings.tolist(), days.tolist()):
        year = year_of(data.films, film)
        rows.append([(today - timedelta(days=ago)).isoformat(), data.films["title"].iloc[film],
                     "" if year is None else year, film_link(data.films, film),
                     f"{rating / 2:g}"])
    tables = {}
    for name, header, width in (("ratings", ["Date", "Name", "Year", "Letterboxd URI",
                                             "Rating"], 5),
                                ("watched", ["Date", "Name", "Year", "Letterboxd URI"], 4)):
        table = io.StringIO()
        writer = csv.writer(table, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(row[:width] for row in rows)
        tables[name] = table.getvalue()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in tables.items():
            archive.writestr(f"{name}.csv", text)
    return today - timedelta(days=365)


def members_of(data, count: int) -> list[str]:
    """The first `count` members with enough ratings for a personal list."""
    per_member = np.diff(np.asarray(data.rating_indptr))
    chosen = np.flatnonzero(per_member >= MIN_MEMBER_RATINGS)[:count]
    name_of = dict(zip(data.users.ids.tolist(), data.users.names.tolist()))
    return [name_of[member].decode("utf-8") for member in chosen.tolist()]


def breakdown(data_dir: Path, people: Sequence[str], listed: Path, export: Path,
              since: date, like: str) -> dict[str, float]:
    """Seconds of each in-process stage, after imports, with the model cached."""
    from config import Config
    from letterboxd.film_lists import film_reference, read_film_list
    from recommender.cache import load_or_fit
    from recommending.filters import FilmFilter, allowed_films
    from recommending.given_list import GivenListRequest, rank_given_list
    from recommending.group import GroupRequest, group_picks
    from recommending.match import MatchRequest, taste_match
    from recommending.match_cache import cached_match_calibration
    from recommending.people import person_named, taste_of_person
    from recommending.picks import recommend
    from recommending.recent import SinceRequest, recent_taste
    from recommending.similar import LikeRequest, films_like
    from recommending.taste import taste_from_export

    config = Config.from_env(output_dir=data_dir)
    stages: dict[str, float] = {}

    def timed(stage: str, action):
        start = time.perf_counter()
        result = action()
        stages[stage] = time.perf_counter() - start
        return result

    data = timed("load cached model", lambda: load_or_fit(data_dir))
    tastes = timed("three members' ratings", lambda: [
        taste_of_person(data, person_named(name), config)[1] for name in people])
    calibration = timed("match calibration, from its cache",
                        lambda: cached_match_calibration(data, data_dir))
    timed("taste_match", lambda: taste_match(data, tastes[0], tastes[1], MatchRequest(),
                                             calibration))
    timed("group_picks (three people)", lambda: group_picks(data, tastes, GroupRequest()))
    lines = timed("read the list file", lambda: read_film_list(listed).lines)
    timed("rank_given_list", lambda: rank_given_list(data, tastes[0],
                                                     GivenListRequest(lines=lines)))
    taste = timed("read + match the export", lambda: taste_from_export(data, export))
    timed("recent_taste + the list", lambda: recommend(
        data, recent_taste(taste, SinceRequest(since), date.today()).taste,
        allowed_films(data, FilmFilter()), top=50))
    timed("films_like", lambda: films_like(data, LikeRequest(film=film_reference(like))))
    return stages


def measure(label: str, data_dir: Path, repeats: int, env: dict[str, str] | None,
            scratch: Path, seed: int) -> bool:
    from recommender.cache import load_or_fit

    base = ["--data-dir", str(data_dir), "-q"]
    start = time.perf_counter()
    data = load_or_fit(data_dir)  # fits and caches the model if needed
    fitted = time.perf_counter() - start
    people = members_of(data, 3)
    like = str(data.films["slug"].iloc[int(np.argmax(np.asarray(data.rating_counts)))])
    listed, export = scratch / "line-up.txt", scratch / "export.zip"
    write_list(data, listed, seed)
    since = write_dated_export(data, export, date.today(), seed)
    member, other, third = people
    commands = {
        "--match": ["recommend.py", member, "--match", other],
        "--with (two others)": ["recommend.py", member, "--with", other, "--with", third],
        f"--from-list ({LIST_FILMS} films)": ["recommend.py", member, "--from-list",
                                              str(listed)],
        f"--since (export, {EXPORT_RATINGS} ratings)": ["recommend.py", str(export),
                                                        "--since", since.isoformat()],
        "--like (the most rated film)": ["recommend.py", "--like", like],
        THE_LIST: ["recommend.py", member],
    }
    # The match's calibration is computed once per fitted model and kept beside it.
    first = run_command([*commands["--match"], *base], env)
    seconds: dict[str, list[float]] = {name: [] for name in [*commands, START_UP]}
    for _ in range(repeats):
        for name, argv in commands.items():
            seconds[name].append(run_command([*argv, *base], env))
        seconds[START_UP].append(measure_imports(env))
    start_up = harness.Timing(tuple(seconds[START_UP])).median
    print(f"{label} (model loaded, fitted + cached if needed: {fitted:.1f} s; a first, "
          f"untimed match, calibration computed and kept: {first:.1f} s)")
    met = True
    for name, values in seconds.items():
        timing = harness.Timing(tuple(values))
        beyond = ("" if name == START_UP
                  else f"  beyond start-up {timing.median - start_up:+5.2f} s")
        print(f"  {name:<34}{timing.median:6.2f} s{beyond}  ({timing.spread})")
        if name not in (START_UP, THE_LIST):
            met &= timing.median <= TARGET_SECONDS
    for stage, stage_seconds in breakdown(data_dir, people, listed, export, since,
                                          like).items():
        print(f"  in-process: {stage:<34} {stage_seconds:6.3f} s")
    return met


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Figure 15: the questions' latency.")
    harness.add_latency_arguments(parser, [], "synthetic dataset sizes in ratings "
                                  "(e.g. 1000000)", sample=True)
    args = parser.parse_args(argv)
    harness.print_header("Figure 15: the questions with the model cached, end to end")
    env = harness.blas_thread_env(args.blas_threads)
    scratch = Path(tempfile.mkdtemp(prefix="bench_questions_"))
    met = True
    try:
        for label, data_dir in datasets_to_time(args, "synthetic", ""):
            met &= measure(label, data_dir, args.repeats, env, scratch, args.seed)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"target: each question <= {TARGET_SECONDS:g} s end to end; targets met: {met}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
