"""The film mappings: every film's identity and metadata, read back and checked.

One row per film, ids 0, 1, 2... in order of first appearance. The metadata columns
(`layout.FILM_METADATA_COLUMNS`) are filled by `import` from a published metadata file
and by `compile_training_data.py films` from the films' own pages; a scrape only knows
slug, lid, ids, title and year. Every value a person could have edited is checked
against the rule below, so a broken cell is one error naming its line, not a crash in
a later command. A format-1 file (without metadata columns) reads as one whose
metadata is all unknown.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dataset import checks
from dataset.layout import (FILM_MAPPINGS_FILE, FILM_METADATA_COLUMNS, FILMS_HEADER,
                            FILMS_HEADER_V1)
from errors import DatasetError
from films.metadata import LAST_YEAR, MAX_RUNTIME_MINUTES
from films.titles import FIRST_FILM_YEAR
from names import SLUG_PATTERN

# What each checked column may hold (every one may also be empty).
_CELL_RULES = {
    "lid": r"[A-Za-z0-9]{1,12}",
    "letterboxd_id": r"[0-9]{1,18}",
    "year": r"[0-9]{4}",
    "runtime": r"[0-9]{1,5}",
    "language": r"[a-z]{2,3}",
    "countries": r"[A-Z]{2}(?:\|[A-Z]{2})*",
    "content_type": r"film|tv",
    "average_rating": r"[0-5](?:\.[0-9]{1,4})?",
    "rating_count": r"[0-9]{1,18}",
    "details_fetched": r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z",
}
_NUMBER_BOUNDS = {"year": (FIRST_FILM_YEAR, LAST_YEAR), "runtime": (1, MAX_RUNTIME_MINUTES),
                  "average_rating": (0.5, 5.0)}
INTEGER_COLUMNS = ("letterboxd_id", "year", "runtime", "rating_count")
# Whole numbers of at most this many digits: every one fits int64.
_MAX_DIGITS = 18


def _header_of(path: Path) -> tuple[str, ...]:
    """This format's header, or format 1's; anything else is refused by the reader."""
    with open(path, "rb") as handle:
        first_line = handle.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    return FILMS_HEADER_V1 if first_line == ",".join(FILMS_HEADER_V1) else FILMS_HEADER


def _with_every_column(films: pd.DataFrame) -> pd.DataFrame:
    for column in FILM_METADATA_COLUMNS:
        if column not in films:
            films[column] = ""
    return films


def _check_cells(path: Path, films: pd.DataFrame) -> None:
    for column, rule in _CELL_RULES.items():
        text = films[column]
        known = (text != "").to_numpy(dtype=bool)
        if column in INTEGER_COLUMNS or column in _NUMBER_BOUNDS:
            # Numbers first: "not a whole number" or "out of range" says more than a rule.
            digits = text.str.fullmatch(r"[0-9]+(?:\.[0-9]+)?" if column == "average_rating"
                                        else r"[0-9]+").to_numpy(dtype=bool)
            bad = known & ~digits
            if bad.any():
                line = checks.first_bad_line(bad)
                what = "a number" if column == "average_rating" else "a whole number"
                raise DatasetError(path, f"{column} {text.iloc[line - 2][:40]!r} is not {what}",
                                   line)
            numbers = pd.to_numeric(text.where(known, "0")).to_numpy(dtype="float64")
            low, high = _NUMBER_BOUNDS.get(column, (0, 10**_MAX_DIGITS - 1))
            bad = known & ~((numbers >= low) & (numbers <= high)
                            & (text.str.len() <= _MAX_DIGITS).to_numpy(dtype=bool))
            if bad.any():
                line = checks.first_bad_line(bad)
                limits = (f"{low:g}-{high:g} or empty" if column in _NUMBER_BOUNDS
                          else "too large")
                raise DatasetError(path, f"{column} {text.iloc[line - 2][:40]} is out of range "
                                   f"({limits})", line)
        bad = known & ~text.str.fullmatch(rule).to_numpy(dtype=bool)
        if bad.any():
            line = checks.first_bad_line(bad)
            raise DatasetError(path, f"{column} {text.iloc[line - 2][:40]!r} is not a valid "
                               "value", line)


def read_film_mappings(data_dir: Path, committed: int | None = None) -> pd.DataFrame:
    """The film mappings as text, every column present and every cell checked."""
    path = Path(data_dir) / FILM_MAPPINGS_FILE
    if not path.is_file():
        raise DatasetError(path, "file is missing")
    films = checks.read_table(path, _header_of(path), committed=committed)
    checks.check_dense_ids(path, checks.integer_column(path, films, "film_id"), "film_id")
    checks.check_names(path, films["slug"], SLUG_PATTERN, "slug")
    films = _with_every_column(films)
    _check_cells(path, films)
    return films


def typed(films: pd.DataFrame) -> pd.DataFrame:
    """Numbers as numbers (`Int64`, <NA> for unknown), indexed by film id."""
    for column in INTEGER_COLUMNS:
        films[column] = pd.to_numeric(films[column].replace("", None)).astype("Int64")
    films["average_rating"] = pd.to_numeric(films["average_rating"].replace("", None)
                                            ).astype("float64")
    return films.drop(columns="film_id")


def read_checked_before(data_dir: Path, committed: int) -> pd.DataFrame:
    """The typed table of a file known unchanged since it passed `read_film_mappings`
    (the model cache's fingerprint says so): the recommender's fast path."""
    path = Path(data_dir) / FILM_MAPPINGS_FILE
    header = _header_of(path)
    checks.check_header(path, header)
    text = [column for column in header if column not in INTEGER_COLUMNS
            and column not in ("film_id", "average_rating")]
    try:
        films = pd.read_csv(
            checks.committed_part(path, committed), keep_default_na=False,
            na_values={column: [""] for column in (*INTEGER_COLUMNS, "average_rating")},
            dtype={"film_id": np.int64, "average_rating": "float64",
                   **{column: "Int64" for column in INTEGER_COLUMNS if column in header},
                   **{column: str for column in text}})
    except (pd.errors.ParserError, ValueError) as error:
        raise DatasetError(path, f"not a valid film table ({error})") from None
    for column in FILM_METADATA_COLUMNS:
        if column not in films:
            films[column] = pd.array([pd.NA] * len(films), dtype="Int64") \
                if column in INTEGER_COLUMNS else np.nan if column == "average_rating" else ""
    return films.drop(columns="film_id")

