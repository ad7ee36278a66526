"""Films like X: a table with each film's shared fans, CSV or JSON."""
from __future__ import annotations

import json

import pandas as pd

from presentation.film_table import FilmRow, film_table, wrapped
from recommending.similar import SimilarFilms
from safe_files import spreadsheet_safe

FORMATS = ("table", "csv", "json")


def shared_fans(count: int, of: int) -> str:
    """"112 of 224 (50%)": a film's share of the asked film's fans."""
    return f"{count} of {of} ({round(100 * count / of)}%)" if of else "0"


def render_similar(similar: SimilarFilms, output_format: str, width: int | None = 80) -> str:
    asked = similar.film
    if output_format == "json":
        return json.dumps({
            "film": {"title": asked.title, "year": asked.year, "slug": asked.slug,
                     "letterboxd_uri": asked.uri},
            "fans": similar.fans, "fans_are_members_who": similar.fans_word,
            "films": [{"rank": film.rank, "title": film.film.title, "year": film.film.year,
                       "slug": film.film.slug, "letterboxd_uri": film.film.uri,
                       "similarity": round(film.similarity, 4),
                       "shared_fans": film.shared_fans} for film in similar.films]},
            ensure_ascii=False, indent=2)
    if output_format == "csv":
        frame = pd.DataFrame([{
            "rank": film.rank, "title": spreadsheet_safe(film.film.title),
            "year": film.film.year or "", "slug": film.film.slug,
            "letterboxd_uri": film.film.uri, "similarity": f"{film.similarity:.3f}",
            "shared_fans": film.shared_fans} for film in similar.films],
            columns=["rank", "title", "year", "slug", "letterboxd_uri", "similarity",
                     "shared_fans"])
        return frame.to_csv(index=False, lineterminator="\n").rstrip("\n")
    word = similar.fans_word
    lines = wrapped(f"Films like {asked.label}, nearest first in the model's space. "
                    f"Shared fans: of the {similar.fans} members who {word} it"
                    + (" (4★ or more)" if word == "loved" else "")
                    + f", how many {word} each film too.", width)
    if not similar.films:
        return "\n".join([*lines, "No film passes the filters."])
    rows = [FilmRow(film.film.title, film.film.year,
                    (shared_fans(film.shared_fans, similar.fans),)) for film in similar.films]
    return "\n".join(lines + film_table(rows, ["Shared fans"], width))
