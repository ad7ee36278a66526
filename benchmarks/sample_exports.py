"""Letterboxd export ZIPs made from members of the shared sample, as Letterboxd writes them.

Used by the matching benchmark and by the tests on real data: each member's films with
their real titles and release years, most rated, some only watched, in the diary (where
the link is a diary entry's, not the film's) or liked; the boxd.it links are ones no
dataset knows, so only titles, years and slugs can find the films.
"""
from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pandas as pd

from films.titles import split_slug_year


def release_year(movie: pd.Series, slug: str) -> str:
    """The year an export gives a film: the metadata's, or (where it lost it) the release
    date's, the slug's, or a recent one (the films missing it are recent releases)."""
    if movie["year_released"]:
        return movie["year_released"]
    if movie["release_date"][:4].isdigit():
        return movie["release_date"][:4]
    return str(split_slug_year(slug)[1] or 2023)


def export_zip(path: Path, rows: pd.DataFrame, movies: pd.DataFrame) -> Path:
    """`rows` (movie_id, rating_val) of one member as an export ZIP at `path`; `movies` is
    the sample's movies file indexed by movie_id, with its true titles."""
    files = {name: io.StringIO() for name in ("ratings", "watched", "diary", "likes")}
    writers = {name: csv.writer(handle, lineterminator="\r\n") for name, handle in files.items()}
    writers["ratings"].writerow(["Date", "Name", "Year", "Letterboxd URI", "Rating"])
    writers["watched"].writerow(["Date", "Name", "Year", "Letterboxd URI"])
    writers["likes"].writerow(["Date", "Name", "Year", "Letterboxd URI"])
    writers["diary"].writerow(["Date", "Name", "Year", "Letterboxd URI", "Rating", "Rewatch",
                               "Tags", "Watched Date"])
    for number, (slug, rating) in enumerate(zip(rows["movie_id"], rows["rating_val"])):
        movie = movies.loc[slug]
        name, year = movie["movie_title"], release_year(movie, slug)
        uri = f"https://boxd.it/z{number}"
        kind = number % 10
        if kind < 7:
            writers["ratings"].writerow(["2024-01-01", name, year, uri, f"{rating / 2:g}"])
        elif kind < 8:
            writers["watched"].writerow(["2024-01-01", name, year, uri])
        elif kind < 9:
            writers["diary"].writerow(["2024-01-02", name, year, "https://boxd.it/entry1", "",
                                       "", "", "2024-01-01"])
        else:
            writers["likes"].writerow(["2024-01-01", name, year, uri])
    with zipfile.ZipFile(path, "w") as archive:
        for name, handle in files.items():
            archive.writestr("likes/films.csv" if name == "likes" else f"{name}.csv",
                             handle.getvalue())
    return path
