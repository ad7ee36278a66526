"""A user's own Letterboxd data export (ZIP or unzipped folder).

The export is the sanctioned way to bring one's ratings: no network at all.
Films are matched to the dataset by Letterboxd id (`boxd.it/<lid>`), then by
slug, then by title and year.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from errors import ExportError
from names import SLUG_PATTERN

logger = logging.getLogger(__name__)

RATINGS_HEADER = ("Date", "Name", "Year", "Letterboxd URI", "Rating")
FILM_LIST_HEADER = ("Date", "Name", "Year", "Letterboxd URI")

# A real export is a few MB; these bound what a hostile or broken file can cost.
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 256 * 1024 * 1024
MAX_MEMBERS = 10_000
MAX_COMPRESSION_RATIO = 200

# Folders of an export that hold files named like the ones we read, with other content.
_EXPORT_FOLDERS = frozenset({"lists", "likes", "orphaned", "deleted"})
_BOXD_URI = re.compile(r"^https?://boxd\.it/([A-Za-z0-9]+)/?$")
_FILM_URI = re.compile(rf"^https?://(?:www\.)?letterboxd\.com/film/({SLUG_PATTERN})/?$")


@dataclass(frozen=True)
class ExportFilm:
    """One row of ratings.csv, watched.csv, watchlist.csv or likes/films.csv."""

    name: str
    year: int | None
    uri: str
    rating: int | None = None  # 1..10 (stars times two)

    @property
    def lid(self) -> str | None:
        match = _BOXD_URI.match(self.uri)
        return match.group(1) if match else None

    @property
    def slug(self) -> str | None:
        match = _FILM_URI.match(self.uri)
        return match.group(1) if match else None


@dataclass(frozen=True)
class LetterboxdExport:
    ratings: tuple[ExportFilm, ...]
    watched: tuple[ExportFilm, ...]
    watchlist: tuple[ExportFilm, ...]
    liked: tuple[ExportFilm, ...]


def _member_texts(path: Path) -> dict[str, str]:
    """The CSV files we use, keyed by path suffix, read within the size limits."""
    wanted = ("ratings.csv", "watched.csv", "watchlist.csv", "likes/films.csv")
    texts: dict[str, str] = {}
    if path.is_dir():
        for suffix in wanted:
            candidates = sorted(path.rglob(Path(suffix).name),
                                key=lambda found: (len(found.parts), found.as_posix()))
            for candidate in candidates:
                if _matches(candidate.relative_to(path).as_posix(), suffix):
                    if candidate.stat().st_size > MAX_MEMBER_BYTES:
                        raise ExportError(f"{candidate} is larger than {MAX_MEMBER_BYTES} bytes")
                    texts[suffix] = _decode(candidate.read_bytes(), candidate)
                    break
        return texts
    if not zipfile.is_zipfile(path):
        raise ExportError(f"{path} is neither a ZIP file nor a folder of a Letterboxd export")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise ExportError(f"{path} has {len(members)} entries; an export has far fewer")
            total = 0
            shallowest_first = sorted(members, key=lambda member: member.filename.count("/"))
            for suffix in wanted:
                for member in shallowest_first:
                    if member.is_dir() or not _matches(member.filename, suffix):
                        continue
                    _check_member_size(path, member)
                    total += member.file_size
                    if total > MAX_TOTAL_BYTES:
                        raise ExportError(f"{path} unpacks to more than {MAX_TOTAL_BYTES} bytes")
                    texts[suffix] = _decode(_read_member(archive, member), path)
                    break
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as error:
        raise ExportError(f"{path} is not a readable ZIP file ({error})") from None
    return texts


def _matches(member_path: str, suffix: str) -> bool:
    """At the export's root or inside folders that unzipping or re-zipping added, but
    never inside the export's own folders: a list the user named "Ratings" is
    lists/ratings.csv. Callers try the shallowest paths first."""
    if not (member_path == suffix or member_path.endswith("/" + suffix)):
        return False
    wrappers = member_path[:-len(suffix)].split("/")
    return not _EXPORT_FOLDERS.intersection(wrappers)


def _check_member_size(path: Path, member: zipfile.ZipInfo) -> None:
    if member.file_size > MAX_MEMBER_BYTES:
        raise ExportError(f"{path}: {member.filename} unpacks to {member.file_size} bytes, "
                          f"more than the {MAX_MEMBER_BYTES} allowed")
    if member.compress_size and member.file_size / member.compress_size > MAX_COMPRESSION_RATIO:
        raise ExportError(f"{path}: {member.filename} is compressed suspiciously well "
                          "(a ZIP bomb?); refusing to unpack it")


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
    """Read at most the declared size: a lying header cannot make us unpack more."""
    with archive.open(member) as handle:
        data = handle.read(MAX_MEMBER_BYTES + 1)
    if len(data) > MAX_MEMBER_BYTES:
        raise ExportError(f"{member.filename} unpacks to more than {MAX_MEMBER_BYTES} bytes")
    return data


def _decode(data: bytes, source: Path) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ExportError(f"{source} is not UTF-8 text") from None


def parse_film_rows(text: str, name: str, header: Sequence[str]) -> tuple[ExportFilm, ...]:
    reader = csv.reader(io.StringIO(text, newline=""))
    found = next(reader, None)
    if found is None or tuple(column.strip() for column in found[:len(header)]) != tuple(header):
        raise ExportError(f"{name} has the header {found!r}, expected {','.join(header)}")
    rating_column = header.index("Rating") if "Rating" in header else None
    films = []
    for line_number, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) < len(header):
            raise ExportError(f"{name}, line {line_number}: expected {len(header)} columns")
        year_text = row[2].strip()
        rating = None
        if rating_column is not None:
            try:
                stars = float(row[rating_column])
                if not math.isfinite(stars):
                    raise ValueError("not finite")
            except ValueError:
                raise ExportError(f"{name}, line {line_number}: rating "
                                  f"{row[rating_column]!r} is not a number") from None
            rating = round(stars * 2)
            if not 1 <= rating <= 10 or abs(stars * 2 - rating) > 1e-6:
                raise ExportError(f"{name}, line {line_number}: rating {stars} is not "
                                  "0.5 to 5 in half stars")
        year = int(year_text) if re.fullmatch(r"[0-9]{4}", year_text) else None
        films.append(ExportFilm(name=row[1], year=year,
                                uri=row[3].strip(), rating=rating))
    return tuple(films)


def read_export(path: Path) -> LetterboxdExport:
    """Parse an export; ratings.csv is required, the other files are optional."""
    path = Path(path)
    if not path.exists():
        raise ExportError(f"{path} does not exist")
    texts = _member_texts(path)
    if "ratings.csv" not in texts:
        raise ExportError(f"{path} has no ratings.csv: is it a Letterboxd data export?")
    return LetterboxdExport(
        ratings=parse_film_rows(texts["ratings.csv"], "ratings.csv", RATINGS_HEADER),
        watched=parse_film_rows(texts.get("watched.csv", ",".join(FILM_LIST_HEADER)),
                             "watched.csv", FILM_LIST_HEADER),
        watchlist=parse_film_rows(texts.get("watchlist.csv", ",".join(FILM_LIST_HEADER)),
                               "watchlist.csv", FILM_LIST_HEADER),
        liked=parse_film_rows(texts.get("likes/films.csv", ",".join(FILM_LIST_HEADER)),
                           "likes/films.csv", FILM_LIST_HEADER))


_NOT_A_WORD = re.compile(r"[\W_]+")


def _normalised_title(title: str) -> str:
    """Case, accents and punctuation dropped; letters of every script kept, so that two
    titles in Cyrillic or Japanese do not both shrink to the empty string."""
    if not title.isascii():  # most titles are: skip the per-character pass for them
        decomposed = unicodedata.normalize("NFKD", title)
        title = "".join(character for character in decomposed
                        if not unicodedata.combining(character))
    return _NOT_A_WORD.sub(" ", title.casefold()).strip()


class _KeyIndex:
    """Film id by a text key, the first film holding it winning; empty keys match nothing.

    Hashed by pandas in C: a Python dict over every film of a large dataset cost more
    than the rest of a recommendation.
    """

    def __init__(self, keys: pd.Series) -> None:
        keys = keys[keys != ""]
        index = pd.Index(keys.to_numpy())
        first = ~index.duplicated()
        self._keys = index[first]
        self._film_ids = keys.index.to_numpy()[first]

    def find(self, wanted: Sequence[str]) -> np.ndarray:
        """Film id per key, -1 where none."""
        positions = self._keys.get_indexer(list(wanted))
        found = np.full(len(positions), -1, dtype=np.int64)
        hit = positions >= 0
        found[hit] = self._film_ids[positions[hit]]
        return found


class FilmMatcher:
    """Finds dataset film ids for export rows: by lid, then slug, then title and year.

    The slug and title indexes are built on the first row that needs them.
    """

    def __init__(self, films: pd.DataFrame) -> None:
        self._films = films
        self._by_lid = _KeyIndex(films["lid"])
        self._by_slug: _KeyIndex | None = None
        self._by_title_year: dict[tuple[str, int | None], int] | None = None

    def _title_index(self) -> dict[tuple[str, int | None], int]:
        """Normalising every title costs more than all the other matching together."""
        if self._by_title_year is None:
            self._by_title_year = {}
            films = self._films
            for title, year, film in zip(films["title"].tolist(), films["year"].tolist(),
                                         films.index.tolist()):
                normalised = _normalised_title(str(title))
                if normalised:
                    key = (normalised, None if pd.isna(year) else int(year))
                    self._by_title_year.setdefault(key, film)
        return self._by_title_year

    def match(self, film: ExportFilm) -> int | None:
        found = int(self.match_all([film])[0])
        return None if found < 0 else found

    def match_all(self, films: Iterable[ExportFilm]) -> np.ndarray:
        """Film id per row, -1 where nothing matched."""
        rows = list(films)
        found = self._by_lid.find([film.lid or "" for film in rows])
        missing = np.flatnonzero(found < 0)
        if len(missing):
            if self._by_slug is None:
                self._by_slug = _KeyIndex(self._films["slug"])
            found[missing] = self._by_slug.find([rows[row].slug or "" for row in missing])
            missing = missing[found[missing] < 0]
        for row in missing.tolist():
            title = _normalised_title(rows[row].name)
            if title:
                found[row] = self._title_index().get((title, rows[row].year), -1)
        return found
