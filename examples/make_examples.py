"""Write the small files the README's offline commands use, so that a fresh clone can try
`import` and `recommend.py --export` with nothing downloaded.

    python examples/make_examples.py

They come from the simulated site's synthetic members (seed 1), in the layouts the real
sources use: `published/` is a ratings file in the Kaggle "letterboxd-movie-ratings-data"
layout (gzipped), and `letterboxd-export-example.zip` the data export of one member who
is not in it, as Letterboxd's settings page would give it. The output is the same on
every run (fixed seed, no timestamps).
"""
from __future__ import annotations

import csv
import gzip
import io
import sys
import zipfile
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
sys.path.insert(0, str(EXAMPLES.parent))

from simulated_site import SiteData  # noqa: E402

SEED = 1
MEMBERS = 150
FILMS = 500
FIXED_TIME = (2026, 1, 1, 0, 0, 0)
EXPORT_DATE = "2026-01-01"


def csv_text(header: list[str], rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_gzip(path: Path, text: str) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                mtime=0) as packed:
        packed.write(text.encode("utf-8"))


def main() -> None:
    data = SiteData.generate(seed=SEED, n_users=MEMBERS, n_films=FILMS)
    members = list(data.users)
    person = members[len(members) // 3]  # a middling member: neither the most nor least active
    published = EXAMPLES / "published"
    published.mkdir(exist_ok=True)
    write_gzip(published / "ratings.csv.gz", csv_text(
        ["user_id", "movie_id", "rating_val"],
        [[name, entry.slug, entry.rating] for name in members if name != person
         for entry in data.entries(name) if entry.rating is not None]))
    films = [data.film(slug) for slug in sorted(data.films)]
    write_gzip(published / "movies.csv.gz", csv_text(
        ["movie_id", "movie_title", "year_released", "genres"],
        [[film.slug, film.title, film.year or "", "|".join(film.genres)] for film in films]))

    def film_row(slug: str) -> list[object]:
        film = data.film(slug)
        return [EXPORT_DATE, film.title, film.year or "", f"https://boxd.it/{film.lid}"]

    entries = data.entries(person)
    files = {
        "ratings.csv": csv_text(["Date", "Name", "Year", "Letterboxd URI", "Rating"],
                                [film_row(entry.slug) + [f"{entry.rating / 2:g}"]
                                 for entry in entries if entry.rating is not None]),
        "watched.csv": csv_text(["Date", "Name", "Year", "Letterboxd URI"],
                                [film_row(entry.slug) for entry in entries]),
        "watchlist.csv": csv_text(["Date", "Name", "Year", "Letterboxd URI"],
                                  [film_row(slug) for slug in data.watchlists.get(person, [])]),
    }
    with zipfile.ZipFile(EXAMPLES / "letterboxd-export-example.zip", "w",
                         zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(zipfile.ZipInfo(name, FIXED_TIME), text)
    print(f"wrote {published} and the export of {person} ({len(entries)} films)")


if __name__ == "__main__":
    main()
