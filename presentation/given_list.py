"""A given list ranked for one person: a table (seen films marked), CSV or JSON."""
from __future__ import annotations

import json

import pandas as pd

from presentation.film_table import FilmRow, film_table, wrapped
from presentation.picks import stars
from presentation.text import star_label, terminal_safe
from recommending.given_list import RankedFilm, RankedList
from safe_files import spreadsheet_safe

FORMATS = ("table", "csv", "json")
_STARS_HEADER = "Stars"
_NOTES_HEADER = "Seen, or because you rated highly"


def _notes(film: RankedFilm) -> tuple[str, ...]:
    if film.seen:
        return (f"seen: you rated it {star_label(film.own_rating)}★" if film.own_rating
                else "seen",)
    return (("on your watchlist",) if film.on_watchlist else ()) + film.because


def render_given_list(ranked: RankedList, output_format: str, width: int | None = 80) -> str:
    """The ranked films; the unmatched lines are for the log, not for this output."""
    if output_format == "json":
        return json.dumps([{
            "rank": film.rank, "title": film.film.title, "year": film.film.year,
            "slug": film.film.slug, "letterboxd_uri": film.film.uri,
            "predicted_stars": film.predicted_stars,
            "predicted_rating": round(film.predicted_rating, 2), "seen": film.seen,
            "own_stars": film.own_rating / 2 if film.own_rating else None,
            "on_watchlist": film.on_watchlist, "because": list(film.because),
            "lines": list(film.lines)} for film in ranked.films],
            ensure_ascii=False, indent=2)
    if output_format == "csv":
        frame = pd.DataFrame([{
            "rank": film.rank, "title": spreadsheet_safe(film.film.title),
            "year": film.film.year or "", "slug": film.film.slug,
            "letterboxd_uri": film.film.uri, "predicted_stars": film.predicted_stars,
            "seen": "yes" if film.seen else "",
            "own_stars": film.own_rating / 2 if film.own_rating else "",
            "on_watchlist": "yes" if film.on_watchlist else "",
            "because": spreadsheet_safe("; ".join(film.because))} for film in ranked.films],
            columns=["rank", "title", "year", "slug", "letterboxd_uri", "predicted_stars",
                     "seen", "own_stars", "on_watchlist", "because"])
        return frame.to_csv(index=False, lineterminator="\n").rstrip("\n")
    if not ranked.films:
        return "No film of the list is in the dataset and passes the filters."
    rows = [FilmRow(film.film.title, film.film.year, (stars(film.predicted_stars),),
                    _notes(film)) for film in ranked.films]
    lines = film_table(rows, [_STARS_HEADER], width, notes_header=_NOTES_HEADER)
    seen = len(ranked.films) - ranked.unseen
    order = ("by how well each film matches your taste, as your own list would be"
             if not ranked.cold_start else
             "by how loved each film is in the dataset (too few of your ratings match it)")
    lines += wrapped(f"{ranked.unseen} films you have not logged, ordered {order}"
                     + (f"; then the {seen} you have, by your rating" if seen else "")
                     + f". ★ = the rating we predict {terminal_safe(ranked.name)} would give.",
                     width)
    return "\n".join(lines)
