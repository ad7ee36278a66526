"""A taste match as text (the score, its meaning, three short tables) or JSON."""
from __future__ import annotations

import json
from typing import Sequence

from presentation.film_table import FilmRow, film_table, wrapped
from presentation.picks import stars
from presentation.text import terminal_safe
from presentation.text_width import cut_to_width
from recommending.match import FilmOfTwo, TasteMatch

FORMATS = ("table", "json")
NAME_COLUMN = 12   # at most: a name is cut to this many columns over its stars
PREDICTED_MARK = "*"
INDENT = "  "


def _film_json(film: FilmOfTwo, names: Sequence[str]) -> dict:
    return {"title": film.film.title, "year": film.film.year, "slug": film.film.slug,
            "letterboxd_uri": film.film.uri,
            "stars": dict(zip(names, film.stars)),
            "predicted": dict(zip(names, film.predicted))}


def _stars_cell(value: float, predicted: bool) -> str:
    return stars(value) + (PREDICTED_MARK if predicted else "")


def render_match(match: TasteMatch, output_format: str, width: int | None = 80) -> str:
    names = match.names
    if output_format == "json":
        return json.dumps({
            "names": list(names), "score": match.score, "meaning": match.meaning,
            "correlation": round(match.correlation, 4),
            "calibrated_on_members": match.calibrated_on,
            "rated_in_common": match.rated_in_common,
            "both_loved": [_film_json(film, names) for film in match.both_loved],
            "disagreements": [_film_json(film, names) for film in match.disagreements],
            "both_would_love": [
                {"title": pick.film.title, "year": pick.film.year, "slug": pick.film.slug,
                 "letterboxd_uri": pick.film.uri,
                 "predicted_stars": dict(zip(names, pick.predicted_stars))}
                for pick in match.both_would_love],
            "notes": list(match.notes)}, ensure_ascii=False, indent=2)
    shown = [terminal_safe(name) for name in names]
    headers = [cut_to_width(name, NAME_COLUMN) for name in shown]
    inner = None if width is None else width - len(INDENT)
    lines = wrapped(terminal_safe(match.meaning), width)

    def section(title: str, films: Sequence[FilmOfTwo], empty: str) -> None:
        lines.extend(["", *wrapped(title, width)])
        if not films:
            lines.extend(wrapped(empty, inner, INDENT))
            return
        rows = [FilmRow(film.film.title, film.film.year,
                        tuple(_stars_cell(value, guess)
                              for value, guess in zip(film.stars, film.predicted)))
                for film in films]
        lines.extend(film_table(rows, headers, inner, numbered=False, indent=INDENT))

    section(f"Both loved (4★ or more; {match.rated_in_common} films rated by both)",
            match.both_loved, "no film both rated 4★ or more")
    section("Biggest disagreements", match.disagreements,
            "none of 1½★ or more")
    lines.extend(["", *wrapped("Both would love (neither has logged them; ordered by "
                               "the lower of the two predictions)", width)])
    if match.both_would_love:
        lines.extend(film_table(
            [FilmRow(pick.film.title, pick.film.year,
                     tuple(stars(value) for value in pick.predicted_stars))
             for pick in match.both_would_love], headers, inner, numbered=False,
            indent=INDENT))
    else:
        lines.extend(wrapped("no film passes the filters", inner, INDENT))
    lines.append("")
    shortened = [f"{header} = {name}" for header, name in zip(headers, shown) if header != name]
    if shortened:
        lines.extend(wrapped("Columns: " + "; ".join(shortened), width))
    lines.extend(wrapped(f"{PREDICTED_MARK} = predicted by the model: that person has not "
                         "rated the film.", width))
    return "\n".join(lines)
