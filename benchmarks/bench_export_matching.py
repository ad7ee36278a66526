"""Figure 9: exports matched to a dataset whose metadata is as degraded as published files.

The shared 500k sample is imported with its movies file made worse the way published
files are: for a share of the films (20% by default) the title is replaced by the slug
and the year removed, as for releases that came after the file was made. Export ZIPs
of sample members (benchmarks/sample_exports.py: real titles and years, no usable
links) are then matched and recommended for, by this toolkit's matcher and by the exact
(title, year) rule it replaced. Printed per rule: the share of logged films found, and
the share of the top-50 picks that the person had already logged.

    python benchmarks/bench_export_matching.py            # about two minutes
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402
from benchmarks.sample_exports import export_zip  # noqa: E402
from films.titles import title_key  # noqa: E402
from letterboxd.export_reader import read_export  # noqa: E402
from load_save_and_translate_data import import_published_dataset  # noqa: E402
from recommender.cache import CachedModel, load_or_fit  # noqa: E402
from recommending.filters import FilmFilter, allowed_films  # noqa: E402
from recommending.picks import recommend  # noqa: E402
from recommending.taste import UserTaste, taste_from_export  # noqa: E402

TOP = 50


def degraded_movies(movies: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """The movies file with `share` of the films known only by their slug."""
    worse = movies.copy()
    hit = np.random.default_rng(seed).random(len(worse)) < share
    worse.loc[hit, "movie_title"] = worse.loc[hit, "movie_id"]
    worse.loc[hit, "year_released"] = ""
    return worse


def exact_title_year_taste(data: CachedModel, export_path: Path) -> UserTaste:
    """What the matcher before this one did: lid, slug, then an exact (title, year)."""
    films = data.films
    index: dict[tuple[str, int | None], int] = {}
    for film, (title, year) in enumerate(zip(films["title"], films["year"])):
        index.setdefault((title_key(str(title)), None if pd.isna(year) else int(year)), film)
    export = read_export(export_path)

    def ids(rows) -> np.ndarray:
        return np.array([index.get((title_key(row.name), row.year), -1) for row in rows],
                        dtype=np.int64)

    rated = ids(export.ratings)
    ratings = np.array([row.rating for row in export.ratings], dtype=np.int64)
    logged = ids(export.logged)
    return UserTaste(name=export_path.name, rated_films=rated[rated >= 0],
                     ratings=ratings[rated >= 0], watched=np.unique(logged[logged >= 0]),
                     watchlist=None, source_note="exact title and year")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    harness.add_sample_arguments(parser, seeds=False)
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--degraded-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if harness.sample_missing(args.ratings):
        return 0
    movies_path = args.ratings.parent / "movies.csv.gz"
    ratings = pd.read_csv(args.ratings)
    movies = pd.read_csv(movies_path, dtype=str, keep_default_na=False)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        degraded = folder / "movies.csv"
        degraded_movies(movies, args.degraded_share, args.seed).to_csv(degraded, index=False)
        import_published_dataset(args.ratings, folder / "data", movies_path=degraded)
        data = load_or_fit(folder / "data")
        allowed = allowed_films(data, FilmFilter())
        film_id = {slug: film for film, slug in enumerate(data.films["slug"])}
        names = sorted(ratings["user_id"].unique())
        people = names[::max(1, len(names) // args.people)][:args.people]
        by_title = movies.set_index("movie_id")
        totals = {rule: [0, 0, 0, 0] for rule in ("this matcher", "exact title and year")}
        for number, person in enumerate(people):
            rows = ratings[ratings["user_id"] == person]
            export = export_zip(folder / f"{number}.zip", rows, by_title)
            own = {film_id[slug] for slug in rows["movie_id"]}
            logged = set(data.catalogue.same_films(list(own)).tolist())
            for rule, taste in (("this matcher", taste_from_export(data, export)),
                                ("exact title and year", exact_title_year_taste(data, export))):
                picks, _ = recommend(data, taste, allowed, top=TOP)
                shown = [film_id[pick.slug] for pick in picks]
                total = totals[rule]
                total[0] += len(own & set(data.catalogue.same_films(taste.watched).tolist()))
                total[1] += len(own)
                total[2] += sum(film in logged for film in shown)
                total[3] += len(shown)
    print(f"== Figure 9: exports matched to degraded metadata ({args.degraded_share:.0%} of "
          f"films known only by their slug), {len(people)} members of the sample")
    print(f"   machine: {harness.machine_summary()}")
    print(f"{'rule':<22} {'logged films found':>19} {'picks already logged':>21}")
    for rule, (found, logged_total, repeated, shown_total) in totals.items():
        print(f"{rule:<22} {found / logged_total:>18.1%} {repeated / shown_total:>20.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
