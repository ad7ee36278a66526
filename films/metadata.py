"""Film metadata as published datasets write it, read into one clean form.

Real files disagree with each other and with themselves: genres as a JSON list
(`["Drama", "Comedy"]`, the Kaggle layout), as Python's list repr or `|`-separated;
runtimes of 0 for "unknown"; years missing or far out of range; TV series among the
films, marked by a `content_type` column, a TMDB link to `/tv/`, or TMDB's TV-only
genre names. Every reader here takes a column of text and returns a column in the
dataset's form: names joined by `|`, numbers or <NA>, content type `film`, `tv` or "".
"""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from films.codes import country_code, language_code
from films.titles import FIRST_FILM_YEAR

LAST_YEAR = 2100
# Longer than any film or series Letterboxd lists as one entry (the longest are ~14,000
# minutes); a bigger number is a broken cell.
MAX_RUNTIME_MINUTES = 15_000
FILM = "film"
TV = "tv"
# TMDB gives series genres of their own; a film never carries one.
TV_ONLY_GENRES = frozenset({"Sci-Fi & Fantasy", "Action & Adventure", "War & Politics",
                            "Kids", "News", "Reality", "Soap", "Talk"})
_QUOTED = re.compile(r"""["']((?:[^"'\\]|\\.)*)["']""")


def _names(cell: str) -> list[str]:
    """The names in one cell: a JSON list, a Python list repr, or `|`-separated text."""
    cell = cell.strip()
    if not cell:
        return []
    if cell.startswith("["):
        try:
            parsed = json.loads(cell)
        except ValueError:
            parsed = _QUOTED.findall(cell)  # ['Drama', 'Comedy'], never evaluated
        if isinstance(parsed, list):
            names = [item.get("name", "") if isinstance(item, dict) else item
                     for item in parsed]
            return [str(name).strip() for name in names if str(name).strip()]
        return []
    return [part.strip() for part in cell.split("|") if part.strip()]


def name_list_column(cells: pd.Series) -> pd.Series:
    """Genres or countries, `|`-separated in the dataset's form, duplicates dropped."""
    cells = cells.fillna("").astype(str)
    unique = cells.drop_duplicates()
    cleaned = {cell: "|".join(dict.fromkeys(name.replace("|", "/") for name in _names(cell)))
               for cell in unique}
    return cells.map(cleaned)


def year_column(cells: pd.Series) -> tuple[pd.Series, int]:
    """Release years (`Int64`), and how many were present but impossible (dropped)."""
    text = cells.fillna("").astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    whole = numbers.where(numbers == numbers.round())
    valid = whole.between(FIRST_FILM_YEAR, LAST_YEAR)
    refused = int(((text != "") & ~valid).sum())
    return whole.where(valid).astype("Int64"), refused


def runtime_column(cells: pd.Series) -> pd.Series:
    """Minutes (`Int64`); 0, negative, fractional nonsense or absurd values are unknown."""
    numbers = pd.to_numeric(cells.fillna("").astype(str).str.strip(), errors="coerce")
    valid = (numbers > 0) & (numbers <= MAX_RUNTIME_MINUTES)
    return numbers.where(valid).round().astype("Int64")


def country_list_column(cells: pd.Series) -> pd.Series:
    """Countries (names or codes, in any list form) as `|`-separated ISO 3166 codes."""
    cells = cells.fillna("").astype(str)
    cleaned = {cell: "|".join(dict.fromkeys(code for code in map(country_code, _names(cell))
                                            if code))
               for cell in cells.drop_duplicates()}
    return cells.map(cleaned)


def language_column(cells: pd.Series) -> pd.Series:
    """ISO 639-1 codes ("en", "ja") from codes or English names; "" when unknown."""
    cells = cells.fillna("").astype(str)
    return cells.map({cell: language_code(cell) for cell in cells.drop_duplicates()})


def content_type_column(content_types: pd.Series | None, tmdb_links: pd.Series | None,
                        genres: pd.Series) -> pd.Series:
    """`film`, `tv` or "" (unknown), from the first source that says: an explicit
    content type, a TMDB link, then TMDB's series-only genres."""
    result = pd.Series("", index=genres.index, dtype=object)
    if content_types is not None:
        stated = content_types.fillna("").astype(str).str.strip().str.lower()
        result = np.where(stated.isin(["movie", "film"]), FILM,
                          np.where(stated.isin(["tv", "series", "tv series"]), TV, ""))
        result = pd.Series(result, index=genres.index, dtype=object)
    if tmdb_links is not None:
        links = tmdb_links.fillna("").astype(str)
        from_link = np.where(links.str.contains("/tv/", regex=False), TV,
                             np.where(links.str.contains("/movie/", regex=False), FILM, ""))
        result = result.where(result != "", from_link)
    series_genres = genres.fillna("").str.split("|").map(
        lambda names: bool(TV_ONLY_GENRES.intersection(names)))
    return result.where((result != "") | ~series_genres, TV)
