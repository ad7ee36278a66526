"""A user's own Letterboxd data export (ZIP or unzipped folder).

The export is the sanctioned way to bring one's ratings: no network at all. This
module reads its files within limits into `ExportFilm` rows; films/matching.py finds
them in a dataset.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import re
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Sequence

from errors import ExportError
from films.matching import FilmReference
from names import SLUG_PATTERN

logger = logging.getLogger(__name__)

RATINGS_HEADER = ("Date", "Name", "Year", "Letterboxd URI", "Rating")
FILM_LIST_HEADER = ("Date", "Name", "Year", "Letterboxd URI")
# Its Letterboxd URI is the diary entry's, not the film's: only Name and Year name the film.
DIARY_HEADER = ("Date", "Name", "Year", "Letterboxd URI", "Rating", "Rewatch", "Tags",
                "Watched Date")

# A real export is a few MB; these bound what a hostile or broken file can cost.
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 256 * 1024 * 1024
MAX_MEMBERS = 10_000
MAX_COMPRESSION_RATIO = 200

# Folders of an export that hold files named like the ones we read, with other content.
_EXPORT_FOLDERS = frozenset({"lists", "likes", "orphaned", "deleted"})
_BOXD_URI = re.compile(r"^https?://boxd\.it/([A-Za-z0-9]+)/?$")
_FILM_URI = re.compile(rf"^https?://(?:www\.)?letterboxd\.com/film/({SLUG_PATTERN})/?$")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class ExportFilm:
    """One row of ratings.csv, watched.csv, watchlist.csv, likes/films.csv or diary.csv."""

    name: str
    year: int | None
    uri: str                   # the film's boxd.it or letterboxd.com link; "" in the diary
    rating: int | None = None  # 1..10 (stars times two)
    date: date | None = None   # when it was logged (the diary: when it was watched)

    @property
    def lid(self) -> str | None:
        match = _BOXD_URI.match(self.uri)
        return match.group(1) if match else None

    @property
    def slug(self) -> str | None:
        match = _FILM_URI.match(self.uri)
        return match.group(1) if match else None

    @property
    def reference(self) -> FilmReference:
        """What the row says of the film, for the matcher."""
        return FilmReference(title=self.name, year=self.year, lid=self.lid, slug=self.slug)


@dataclass(frozen=True)
class LetterboxdExport:
    ratings: tuple[ExportFilm, ...]
    watched: tuple[ExportFilm, ...]
    watchlist: tuple[ExportFilm, ...]
    liked: tuple[ExportFilm, ...]
    diary: tuple[ExportFilm, ...] = ()

    @property
    def logged(self) -> tuple[ExportFilm, ...]:
        """Every row saying the person has seen the film: rated, watched, liked, diary."""
        return self.ratings + self.watched + self.liked + self.diary


def _member_texts(path: Path) -> dict[str, str]:
    """The CSV files we use, keyed by path suffix, read within the size limits."""
    wanted = ("ratings.csv", "watched.csv", "watchlist.csv", "likes/films.csv", "diary.csv")
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


def _date(text: str) -> date | None:
    text = text.strip()
    if not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_film_rows(text: str, name: str, header: Sequence[str]) -> tuple[ExportFilm, ...]:
    """The rows of one export file; `header` says which (RATINGS_HEADER, DIARY_HEADER...).

    A rating is required in ratings.csv and may be blank in the diary; the diary's own
    link (an entry's, not the film's) is left out, and its date is the watched date.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    found = next(reader, None)
    if found is None or tuple(column.strip() for column in found[:len(header)]) != tuple(header):
        raise ExportError(f"{name} has the header {found!r}, expected {','.join(header)}")
    rating_column = header.index("Rating") if "Rating" in header else None
    diary = header == DIARY_HEADER
    films = []
    for line_number, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) < len(header):
            raise ExportError(f"{name}, line {line_number}: expected {len(header)} columns")
        year_text = row[2].strip()
        rating = None
        if rating_column is not None and not (diary and not row[rating_column].strip()):
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
        logged = _date(row[7]) or _date(row[0]) if diary else _date(row[0])
        films.append(ExportFilm(name=row[1], year=year, uri="" if diary else row[3].strip(),
                                rating=rating, date=logged))
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
                              "likes/films.csv", FILM_LIST_HEADER),
        diary=parse_film_rows(texts.get("diary.csv", ",".join(DIARY_HEADER)), "diary.csv",
                              DIARY_HEADER))
