"""A recommendation list as a terminal table, CSV or JSON, and as list-import entries."""
from __future__ import annotations

import json
import shutil
from typing import Sequence

import pandas as pd

from letterboxd.list_import import ListEntry
from presentation.film_table import GAP, MIN_FILM_WIDTH, film_cell, notes_cell
from presentation.text_width import cut_to_width, display_width, pad_to_width
from recommending.picks import Recommendation
from safe_files import spreadsheet_safe

FORMATS = ("table", "csv", "json")
MIN_TABLE_WIDTH = 50
_STARS_WIDTH = 5  # ★★★★★ or ★★★★½
_REASONS_HEADER = "Because you rated highly"


def stars(value: float) -> str:
    whole = int(value)
    return "★" * whole + ("½" if value - whole >= 0.5 else "")


def _title_and_year(title: str, year: int | None) -> str:
    return f"{title} ({year})" if year else title


def table_width() -> int:
    """The terminal's width where stdout is one (80 columns otherwise), at least 50."""
    return max(MIN_TABLE_WIDTH, shutil.get_terminal_size((80, 24)).columns)


def render(picks: Sequence[Recommendation], output_format: str, *, width: int | None = 80,
           own_average: float | None = None) -> str:
    """The list in `output_format`. A table fits `width` columns (None: as wide as its
    longest line) and ends with a line on what the order and the stars mean, beside
    the user's own average in stars (`own_average`) when known."""
    if output_format == "json":
        return json.dumps([{
            "rank": pick.rank, "title": pick.title, "year": pick.year, "slug": pick.slug,
            "letterboxd_uri": pick.uri, "predicted_stars": pick.predicted_stars,
            "predicted_rating": round(pick.predicted_rating, 2), "because": list(pick.because),
            "on_watchlist": pick.on_watchlist} for pick in picks], ensure_ascii=False, indent=2)
    if output_format == "csv":
        frame = pd.DataFrame([{
            "rank": pick.rank, "title": pick.title, "year": pick.year or "", "slug": pick.slug,
            "letterboxd_uri": pick.uri, "predicted_stars": pick.predicted_stars,
            "predicted_rating": f"{pick.predicted_rating:.1f}",
            "because": "; ".join(pick.because),
            "on_watchlist": "yes" if pick.on_watchlist else ""} for pick in picks],
            columns=["rank", "title", "year", "slug", "letterboxd_uri", "predicted_stars",
                     "predicted_rating", "because", "on_watchlist"])
        for column in ("title", "because"):
            frame[column] = frame[column].map(spreadsheet_safe)
        return frame.to_csv(index=False, lineterminator="\n").rstrip("\n")
    return "\n".join(_table(picks, width, own_average))


def _reasons(pick: Recommendation) -> list[str]:
    return (["on your watchlist"] if pick.on_watchlist else []) + list(pick.because)


def _table(picks: Sequence[Recommendation], width: int | None,
           own_average: float | None) -> list[str]:
    rank_width = len(f"{len(picks)}.")
    fixed = rank_width + _STARS_WIDTH + 3 * len(GAP)
    longest_film = max((display_width(film_cell(pick.title, pick.year, None))
                        for pick in picks), default=4)
    if width is None:
        film_width = longest_film
        reasons_width: int | None = None
    else:
        room = max(width - fixed, 2 * MIN_FILM_WIDTH)
        film_width = min(longest_film, max(MIN_FILM_WIDTH, room // 2))
        reasons_width = room - film_width
    header = (f"{'#':>{rank_width}}{GAP}{pad_to_width('Film', film_width)}{GAP}"
              f"{'Stars':<{_STARS_WIDTH}}{GAP}"
              f"{cut_to_width(_REASONS_HEADER, reasons_width or len(_REASONS_HEADER))}")
    lines = [header.rstrip()]
    for pick in picks:
        film = pad_to_width(film_cell(pick.title, pick.year, film_width), film_width)
        lines.append(f"{f'{pick.rank}.':>{rank_width}}{GAP}{film}{GAP}"
                     f"{stars(pick.predicted_stars):<{_STARS_WIDTH}}{GAP}"
                     f"{notes_cell(_reasons(pick), reasons_width)}".rstrip())
    lines.append(_footer(width, own_average))
    return lines


def _footer(width: int | None, own_average: float | None) -> str:
    """What the order and the stars mean: the longest wording that fits."""
    average = (f" (your average: {own_average:.1f}★)" if own_average is not None else "")
    wordings = [
        "Ordered by how well each film matches your taste, not by stars; ★ = the rating we "
        f"predict you would give{average}",
        f"Ordered by match, not stars; ★ = the rating we predict{average}",
        f"Ordered by match; ★ = predicted{average}",
    ]
    for wording in wordings:
        if width is None or display_width(wording) <= width:
            return wording
    return cut_to_width(wordings[-1], width)


def list_entries(picks: Sequence[Recommendation]) -> list[ListEntry]:
    return [ListEntry(uri=pick.uri, title=pick.title, year=pick.year,
                      review=f"predicted {pick.predicted_stars:g}★"
                      + (f" · because you rated {'; '.join(pick.because)} highly"
                         if pick.because else ""))
            for pick in picks]
