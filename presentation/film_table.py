"""One table of films for every question's answer: a film column whose titles are cut
(never their years), fixed columns of short cells (stars, counts), and a last column
of notes that keeps as many whole notes as fit. Widths are terminal columns
(presentation/text_width.py), so CJK titles and accents stay aligned.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Sequence

from presentation.text_width import cut_to_width, display_width, pad_to_width

GAP = "  "
MIN_FILM_WIDTH = 14  # a few words of a title, and its year


@dataclass(frozen=True)
class FilmRow:
    title: str
    year: int | None
    cells: tuple[str, ...] = ()   # one per fixed column
    notes: tuple[str, ...] = ()   # the last column's parts, joined by "; "


def film_cell(title: str, year: int | None, width: int | None) -> str:
    """Title and year in `width` columns (None: whole): the title is cut, never the year."""
    shown_year = f" ({year})" if year else ""
    if width is None:
        return title + shown_year
    return cut_to_width(title, width - display_width(shown_year)) + shown_year


def notes_cell(parts: Sequence[str], width: int | None) -> str:
    """As many whole parts as fit in `width` columns; the first one cut if none does."""
    if width is None:
        return "; ".join(parts)
    shown = ""
    for part in parts:
        longer = f"{shown}; {part}" if shown else part
        if display_width(longer) > width:
            break
        shown = longer
    if not shown and parts:
        shown = cut_to_width(parts[0], width)
    return shown


def film_table(rows: Sequence[FilmRow], headers: Sequence[str], width: int | None, *,
               notes_header: str | None = None, numbered: bool = True,
               indent: str = "") -> list[str]:
    """The rows as lines of at most `width` columns (None: as wide as they need)."""
    rank_width = len(f"{len(rows)}.") if numbered else 0
    fixed = [max([display_width(header)] + [display_width(row.cells[column]) for row in rows])
             for column, header in enumerate(headers)]
    used = (display_width(indent) + (rank_width + len(GAP) if numbered else 0)
            + sum(fixed) + len(GAP) * len(fixed) + (len(GAP) if notes_header else 0))
    longest = max((display_width(film_cell(row.title, row.year, None)) for row in rows),
                  default=4)
    notes_width: int | None = None
    if width is None:
        film_width = longest
    elif notes_header is None:
        film_width = min(longest, max(MIN_FILM_WIDTH, width - used))
    else:
        room = max(width - used, 2 * MIN_FILM_WIDTH)
        film_width = min(longest, max(MIN_FILM_WIDTH, room // 2))
        notes_width = room - film_width
    film_width = max(film_width, display_width("Film"))

    def line(rank: str, film: str, cells: Sequence[str], notes: str) -> str:
        parts = [f"{rank:>{rank_width}}"] if numbered else []
        parts.append(pad_to_width(film, film_width))
        parts.extend(pad_to_width(cell, size) for cell, size in zip(cells, fixed))
        if notes_header is not None:
            parts.append(notes)
        return (indent + GAP.join(parts)).rstrip()

    lines = [line("#", "Film", headers, cut_to_width(notes_header or "",
                                                     notes_width or len(notes_header or "")))]
    for number, row in enumerate(rows, start=1):
        lines.append(line(f"{number}.", film_cell(row.title, row.year, film_width),
                          row.cells, notes_cell(row.notes, notes_width)))
    return lines


def wrapped(text: str, width: int | None, indent: str = "") -> list[str]:
    """A sentence as lines of at most `width` columns (None: one line)."""
    if width is None:
        return [indent + text]
    return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent,
                         break_on_hyphens=False) or [""]
