"""A list of films a person brings: a Letterboxd list export, a list-import CSV (or any
export file with a Name or Title column: watchlist.csv too), or plain text with one
film a line. Each line becomes a `FilmReference` for films/matching.py; this module
never decides which film a line means.

Plain-text lines may be "Title (Year)", a bare title, a slug, a letterboxd.com/film/
link or a boxd.it link; blank lines and lines starting with "#" are skipped.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from errors import BadInputError, UnusableFileError
from films.matching import FilmReference
from letterboxd.urls import parse_film_link
from names import SLUG_PATTERN
from safe_files import read_regular_file

MAX_LIST_BYTES = 16 * 1024 * 1024
MAX_LIST_LINES = 50_000
LIST_EXPORT_FIRST_LINE = "Letterboxd list export"
LIST_EXPORT_FILMS_HEADER = ("Position", "Name", "Year", "URL")
# Column names, lower case, that say a CSV names films (Letterboxd's import accepts
# "url" for LetterboxdURI; its exports say "Name" and "Letterboxd URI").
_TITLE_COLUMNS = ("title", "name")
_LINK_COLUMNS = ("letterboxduri", "letterboxd uri", "url")
_TITLE_AND_YEAR = re.compile(r"^(?P<title>.*\S)\s*\((?P<year>\d{4})\)$")
_SLUG = re.compile(SLUG_PATTERN)
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class ListLine:
    line: int                          # where it is in the file (1 = the first line)
    text: str                          # the line as written, for naming it
    reference: FilmReference | None    # None: the line names no film (another link)


@dataclass(frozen=True)
class FilmListFile:
    kind: str                          # "Letterboxd list export", "CSV" or "text"
    title: str | None                  # the list's own name, where the file gives it
    lines: tuple[ListLine, ...]


def film_reference(text: str) -> FilmReference | None:
    """The film one line or command-line argument names: a link, "Title (Year)", a slug
    or a bare title; None for a link to anything but a film."""
    text = text.strip()
    link = parse_film_link(text)
    if link is not None:
        return FilmReference(lid=link.lid, slug=link.slug)
    if "://" in text or text.lower().startswith(("letterboxd.com/", "boxd.it/")):
        return None
    dated = _TITLE_AND_YEAR.match(text)
    if dated:
        return FilmReference(title=dated["title"], year=int(dated["year"]))
    return FilmReference(title=text, slug=text if _SLUG.fullmatch(text) else None)


def _shown(text: str) -> str:
    return _CONTROL_CHARACTERS.sub("?", text)[:200]


def _year(text: str) -> int | None:
    text = text.strip()
    return int(text) if re.fullmatch(r"\d{4}", text) else None


def _rows(text: str, source: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return list(reader)
    except csv.Error as error:
        raise BadInputError(f"{source}, line {reader.line_num}: not readable as CSV "
                            f"({error})") from None


def _cell(row: list[str], column: int | None) -> str:
    return row[column].strip() if column is not None and column < len(row) else ""


def _csv_lines(rows: list[list[str]], first_line: int, title_column: int | None,
               link_column: int | None, year_column: int | None) -> tuple[ListLine, ...]:
    lines = []
    for number, row in enumerate(rows, start=first_line):
        if not any(cell.strip() for cell in row):
            continue
        link = parse_film_link(_cell(row, link_column)) if _cell(row, link_column) else None
        title, year = _cell(row, title_column), _year(_cell(row, year_column))
        reference = None
        if link is not None or title:
            reference = FilmReference(title=title, year=year,
                                      lid=link.lid if link else None,
                                      slug=link.slug if link else None)
        lines.append(ListLine(number, _shown(",".join(row)), reference))
    return tuple(lines)


def _list_export(text: str, source: str) -> FilmListFile:
    """Letterboxd's list export: its name line, the list's header and row, a blank
    line, then the films under Position,Name,Year,URL,Description."""
    rows = _rows(text, source)
    for index, row in enumerate(rows):
        if tuple(cell.strip() for cell in row[:4]) == LIST_EXPORT_FILMS_HEADER:
            title = rows[2][1].strip() if len(rows) > 2 and len(rows[2]) > 1 else None
            return FilmListFile(LIST_EXPORT_FIRST_LINE, title or None,
                                _csv_lines(rows[index + 1:], index + 2, 1, 3, 2))
    raise BadInputError(f"{source} starts as a Letterboxd list export but has no films' "
                        f"header ({','.join(LIST_EXPORT_FILMS_HEADER)},...)")


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [cell.strip().lower() for cell in header]
    return next((lowered.index(name) for name in names if name in lowered), None)


def parse_film_list(text: str, source: str) -> FilmListFile:
    """The films `text` names, one `ListLine` each; `source` names it in errors."""
    text = text.lstrip("\ufeff")
    if text.count("\n") > MAX_LIST_LINES:
        raise BadInputError(f"{source} has more than {MAX_LIST_LINES:,} lines; a list of "
                            "films has far fewer")
    first = text.split("\n", 1)[0].strip()
    if first.startswith(LIST_EXPORT_FIRST_LINE):
        return _list_export(text, source)
    header = next(csv.reader([first])) if first else []
    title_column, link_column = _column(header, _TITLE_COLUMNS), _column(header, _LINK_COLUMNS)
    if title_column is not None or link_column is not None:
        rows = _rows(text, source)[1:]
        return FilmListFile("CSV", None, _csv_lines(rows, 2, title_column, link_column,
                                                    _column(header, ("year",))))
    lines = tuple(ListLine(number, _shown(line.strip()), film_reference(line))
                  for number, line in enumerate(text.splitlines(), start=1)
                  if line.strip() and not line.lstrip().startswith("#"))
    return FilmListFile("text", None, lines)


def read_film_list(path: Path) -> FilmListFile:
    """The list in the file at `path`, read within limits; one clear error otherwise."""
    try:
        data = read_regular_file(Path(path), MAX_LIST_BYTES)
    except FileNotFoundError:
        raise BadInputError(f"there is no list file at {path}") from None
    except UnusableFileError as error:
        raise BadInputError(f"{path} {error.reason}: give a list export, a list-import "
                            "CSV or a text file of films") from None
    except OSError as error:
        raise BadInputError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInputError(f"{path} is not UTF-8 text: give a list export, a list-import "
                            "CSV or a text file of films") from None
    if "\x00" in text:
        raise BadInputError(f"{path} is not a text file: give a list export, a list-import "
                            "CSV or a text file of films")
    listed = parse_film_list(text, str(path))
    if not listed.lines:
        raise BadInputError(f"{path} names no film")
    return listed
