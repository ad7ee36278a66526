"""A user's own Letterboxd data export (ZIP or unzipped folder).

The export is the sanctioned way to bring one's ratings: no network at all. This
module reads its files within limits into `ExportFilm` rows; films/matching.py finds
them in a dataset.
"""
from __future__ import annotations

import csv
import io
import logging
import lzma
import math
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Iterator, Sequence

from errors import ExportError, UnusableFileError
from films.matching import FilmReference
from names import SLUG_PATTERN
from safe_files import open_regular_file, read_regular_file

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


# The files of an export we read, by their path in it.
_WANTED = ("ratings.csv", "watched.csv", "watchlist.csv", "likes/films.csv", "diary.csv")
# Methods the zipfile module unpacks (stored, deflate, bzip2, LZMA); a bit of the
# general-purpose flags that marks an encrypted entry.
_ZIP_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                          zipfile.ZIP_LZMA})
_ENCRYPTED = 0x1
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class _Entry:
    """A file of the export read within the limits: where it was, and its text."""

    name: str   # how errors name it: the export, then the path inside it
    text: str


def _shown(name: str) -> str:
    """An entry's name as an error line shows it: a crafted name must not drive the terminal."""
    return _CONTROL_CHARACTERS.sub("?", name)


def _export_entries(path: Path) -> dict[str, _Entry]:
    """The CSV files we use, keyed by their path in an export, read within the limits."""
    if path.is_dir():
        return _folder_entries(path)
    try:  # the path the person gave may be a link to their ZIP; a FIFO is not waited on
        archive_file = open_regular_file(path, follow_symlinks=True)
    except UnusableFileError as error:
        raise ExportError(f"{path} {error.reason}: give a Letterboxd export ZIP or its "
                          "unzipped folder") from None
    with archive_file:
        if not zipfile.is_zipfile(archive_file):
            raise ExportError(f"{path} is neither a ZIP file nor a folder of a Letterboxd "
                              "export")
        try:
            with zipfile.ZipFile(archive_file) as archive:
                return _zip_entries(path, archive)
        # NotImplementedError: a directory entry asking for a later ZIP version.
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError,
                NotImplementedError) as error:
            raise ExportError(f"{path} is not a readable ZIP file ({_shown(str(error))})"
                              ) from None


def _folder_entries(path: Path) -> dict[str, _Entry]:
    """An unzipped export under the ZIP's limits: as many files at most, regular files
    only (never a symlink, a FIFO or a device), as many bytes at most."""
    found: list[str] = []
    for folder, subfolders, files in os.walk(path):  # symlinked folders are not entered
        found.extend(Path(folder, name).relative_to(path).as_posix() for name in files)
        if len(found) + len(subfolders) > MAX_MEMBERS:
            raise ExportError(f"{path} holds more than {MAX_MEMBERS} files; an export has "
                              "far fewer")
    shallowest_first = sorted(found, key=lambda name: (name.count("/"), name))
    entries: dict[str, _Entry] = {}
    total = 0
    for suffix in _WANTED:
        for relative in shallowest_first:
            if _matches(relative, suffix):
                name = f"{path}: {_shown(relative)}"
                try:
                    data = read_regular_file(path / relative, MAX_MEMBER_BYTES)
                except UnusableFileError as error:
                    raise ExportError(f"{name} {error.reason}") from None
                total += len(data)
                if total > MAX_TOTAL_BYTES:
                    raise ExportError(f"{path} holds more than {MAX_TOTAL_BYTES} bytes of "
                                      "export files")
                entries[suffix] = _Entry(name, _decode(data, name))
                break
    return entries


def _zip_entries(path: Path, archive: zipfile.ZipFile) -> dict[str, _Entry]:
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise ExportError(f"{path} has {len(members)} entries; an export has far fewer")
    entries: dict[str, _Entry] = {}
    total = 0
    shallowest_first = sorted(members, key=lambda member: member.filename.count("/"))
    for suffix in _WANTED:
        for member in shallowest_first:
            if not _matches(member.filename, suffix) or member.is_dir():
                continue
            name = f"{path}: {_shown(member.filename)}"
            _check_member(name, member)
            total += member.file_size
            if total > MAX_TOTAL_BYTES:
                raise ExportError(f"{path} unpacks to more than {MAX_TOTAL_BYTES} bytes")
            entries[suffix] = _Entry(name, _decode(_read_member(name, archive, member), name))
            break
    return entries


def _matches(member_path: str, suffix: str) -> bool:
    """At the export's root or inside folders that unzipping or re-zipping added, but
    never inside the export's own folders: a list the user named "Ratings" is
    lists/ratings.csv. Callers try the shallowest paths first."""
    if not (member_path == suffix or member_path.endswith("/" + suffix)):
        return False
    wrappers = member_path[:-len(suffix)].split("/")
    return not _EXPORT_FOLDERS.intersection(wrappers)


def _check_member(name: str, member: zipfile.ZipInfo) -> None:
    """Refuse, before unpacking a byte, what cannot or should not be unpacked."""
    if member.flag_bits & _ENCRYPTED:
        raise ExportError(f"{name} is encrypted; Letterboxd's exports are not")
    if member.compress_type not in _ZIP_METHODS:
        raise ExportError(f"{name} is compressed with method {member.compress_type}, which "
                          "cannot be unpacked here; unzip and zip it again")
    if member.file_size > MAX_MEMBER_BYTES:
        raise ExportError(f"{name} unpacks to {member.file_size} bytes, "
                          f"more than the {MAX_MEMBER_BYTES} allowed")
    if member.compress_size and member.file_size / member.compress_size > MAX_COMPRESSION_RATIO:
        raise ExportError(f"{name} is compressed suspiciously well "
                          "(a ZIP bomb?); refusing to unpack it")


def _read_member(name: str, archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
    """Read at most the declared size: a lying header cannot make us unpack more."""
    try:
        with archive.open(member) as handle:
            data = handle.read(MAX_MEMBER_BYTES + 1)
    # The zipfile module's ways of saying the data are damaged: a CRC or a length that
    # does not match, a corrupt deflate, bzip2 or LZMA stream, an unreadable header.
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, EOFError, ValueError,
            RuntimeError, NotImplementedError) as error:
        raise ExportError(f"{name} is damaged and cannot be unpacked "
                          f"({_shown(str(error))[:200]})") from None
    if len(data) > MAX_MEMBER_BYTES:
        raise ExportError(f"{name} unpacks to more than {MAX_MEMBER_BYTES} bytes")
    return data


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ExportError(f"{name} is not UTF-8 text") from None


def parse_film_rows(text: str, name: str, header: Sequence[str]) -> tuple[ExportFilm, ...]:
    """The rows of one export file; `header` says which (RATINGS_HEADER, DIARY_HEADER...),
    `name` is how errors name it. Errors never quote the file's content: a path given as
    an export may hold anything. A rating is required in ratings.csv and may be blank in
    the diary; the diary's own link (an entry's, not the film's) is left out, and its
    date is the watched date."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return _film_rows(reader, name, header)
    except csv.Error as error:  # a cell over the csv module's 128 KiB, a stray quote...
        raise ExportError(f"{name}, line {reader.line_num}: not readable as CSV "
                          f"({error})") from None


def _film_rows(reader: Iterator[list[str]], name: str,
               header: Sequence[str]) -> tuple[ExportFilm, ...]:
    found = next(reader, None)
    if found is None or tuple(column.strip() for column in found[:len(header)]) != tuple(header):
        raise ExportError(f"{name} does not start with the header {','.join(header)}: is it "
                          "from a Letterboxd export?")
    rating_column = header.index("Rating") if "Rating" in header else None
    diary = tuple(header) == DIARY_HEADER
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
                raise ExportError(f"{name}, line {line_number}: the rating is not a "
                                  "number") from None
            rating = round(stars * 2)
            if not 1 <= rating <= 10 or abs(stars * 2 - rating) > 1e-6:
                raise ExportError(f"{name}, line {line_number}: the rating is not 0.5 to 5 "
                                  "in half stars")
        year = int(year_text) if re.fullmatch(r"[0-9]{4}", year_text) else None
        logged = _date(row[7]) or _date(row[0]) if diary else _date(row[0])
        films.append(ExportFilm(name=row[1], year=year, uri="" if diary else row[3].strip(),
                                rating=rating, date=logged))
    return tuple(films)


def _date(text: str) -> date | None:
    text = text.strip()
    if not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def read_export(path: Path) -> LetterboxdExport:
    """Parse an export; ratings.csv is required, the other files are optional."""
    path = Path(path)
    if not path.exists():
        raise ExportError(f"{path} does not exist")
    entries = _export_entries(path)
    if "ratings.csv" not in entries:
        raise ExportError(f"{path} has no ratings.csv: is it a Letterboxd data export?")

    def rows(suffix: str, header: Sequence[str]) -> tuple[ExportFilm, ...]:
        entry = entries.get(suffix, _Entry(suffix, ",".join(header)))
        return parse_film_rows(entry.text, entry.name, header)

    return LetterboxdExport(ratings=rows("ratings.csv", RATINGS_HEADER),
                            watched=rows("watched.csv", FILM_LIST_HEADER),
                            watchlist=rows("watchlist.csv", FILM_LIST_HEADER),
                            liked=rows("likes/films.csv", FILM_LIST_HEADER),
                            diary=rows("diary.csv", DIARY_HEADER))
