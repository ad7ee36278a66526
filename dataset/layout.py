"""The one home of the dataset's on-disk layout: names, headers, state file, CSV bytes.

Layout and guarantees (the README documents every column):

* The big files only ever grow by appends, so saving a batch costs in
  proportion to the batch, not to the dataset. `dataset_state.json`, replaced
  atomically after every batch, records how many bytes of each file are
  committed; a batch is committed exactly when that file is replaced. Whatever
  lies beyond (a batch cut short by kill -9) is cut off on the next open, so a
  continued run ends with exactly the rows an uninterrupted one would have.
* Each scrape of a user appends one row to the update log and one contiguous
  block of rows to the ratings files, in the same order, so the log is also
  the index of the blocks. A user's ratings are the block of their latest
  decisive scrape (ok, not found or private); a refresh appends a new block
  and the old one becomes dead until compaction rewrites the files once.
* Ids are dense row numbers assigned in order of first appearance and never
  change, so `continue` keeps them stable.

Pure (no numpy, no pandas), so every reader of a file name can import it cheaply.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from functools import lru_cache
from itertools import groupby
from pathlib import Path
from typing import Iterable, Sequence, TextIO

from errors import DatasetError
from letterboxd.urls import film_url
from safe_files import spreadsheet_safe

# 2: the film mappings carry film metadata (FILM_METADATA_COLUMNS). A format-1 dataset
# is read as it is and upgraded (dataset/upgrade.py) by the first writer that opens it.
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)

# --- names in a dataset folder ---------------------------------------------------

RATINGS_FILE = "latest_raw_user_ratings.csv"
USER_MAPPINGS_FILE = "latest_user_mappings.csv"
FILM_MAPPINGS_FILE = "latest_film_mappings.csv"
USER_UPDATES_FILE = "latest_user_updates.csv"
UNRATED_FILE = "latest_watched_unrated.csv"
TRANSLATED_FILE = "latest_translated_user_ratings.csv"
STATE_FILE = "dataset_state.json"
BACKUP_DIR = "backups"
ARCHIVE_DIR = "archive"
# The recommender's cache; archived with the dataset it was fitted on.
MODEL_DIR = "model"
# A new or imported dataset is written here whole, then moved in: until its state file
# is moved (last), the folder's previous content stays the dataset. No TEMP_SUFFIX: the
# stray-file sweep deletes files with it, and this is a folder.
STAGING_DIR = ".incoming"
# A compacted file waits under its name plus this until the compaction is committed.
COMPACT_SUFFIX = ".compact"

RATINGS_HEADER = ("user_id", "film_id", "rating")
UNRATED_HEADER = ("user_id", "film_id")
USERS_HEADER = ("user_id", "username", "display_name")
FILM_IDENTITY_COLUMNS = ("film_id", "slug", "lid", "letterboxd_id", "title", "year")
# genres and countries `|`-separated (countries as ISO 3166 codes), runtime in minutes,
# language an ISO 639 code, content_type `film`, `tv` or empty, the community's average
# (0.5-5 stars) and number of ratings on Letterboxd, and when a film page was last read.
FILM_METADATA_COLUMNS = ("genres", "runtime", "language", "countries", "content_type",
                         "average_rating", "rating_count", "details_fetched")
FILMS_HEADER = FILM_IDENTITY_COLUMNS + FILM_METADATA_COLUMNS
# The film mappings of a format-1 dataset.
FILMS_HEADER_V1 = FILM_IDENTITY_COLUMNS + ("genres",)
NO_FILM_METADATA = ("",) * len(FILM_METADATA_COLUMNS)
UPDATES_HEADER = ("user_id", "username", "last_scraped", "status", "n_ratings", "n_unrated")
TRANSLATED_HEADER = ("username", "title", "year", "slug", "stars", "rating", "liked", "film_url")

# Every data file of a dataset, with its header; the state file counts their bytes.
HEADERS: dict[str, tuple[str, ...]] = {
    RATINGS_FILE: RATINGS_HEADER,
    UNRATED_FILE: UNRATED_HEADER,
    USER_MAPPINGS_FILE: USERS_HEADER,
    FILM_MAPPINGS_FILE: FILMS_HEADER,
    USER_UPDATES_FILE: UPDATES_HEADER,
    TRANSLATED_FILE: TRANSLATED_HEADER,
}
# Files rewritten by compaction, which drops dead blocks.
BLOCK_FILES = (RATINGS_FILE, UNRATED_FILE, TRANSLATED_FILE, USER_UPDATES_FILE)
# Files that are ever rewritten whole: the block files, and the film mappings when film
# metadata changes. A rewrite killed after its commit point leaves their `.compact`
# copies for the next open to move in; an archived dataset needs them as much as its
# state file.
REWRITTEN_FILES = (*BLOCK_FILES, FILM_MAPPINGS_FILE)
COMPACTED_FILES = tuple(name + COMPACT_SUFFIX for name in REWRITTEN_FILES)

# What `backup_name` writes; a state file naming anything else was edited.
BACKUP_NAME = re.compile(r"raw_user_ratings_[0-9]{8}T[0-9]{6}Z_b[0-9]{6,}\.csv")


def backup_name(now: datetime, batch: int) -> str:
    """The backup copy of batch number `batch`: matches BACKUP_NAME, sorts by time then batch."""
    return f"raw_user_ratings_{now.strftime('%Y%m%dT%H%M%SZ')}_b{batch:06d}.csv"


def archive_stamp(now: datetime) -> str:
    """The name of an archive folder made at `now`."""
    return now.strftime("%Y%m%dT%H%M%SZ")


# --- times -------------------------------------------------------------------------

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_now() -> datetime:
    """Now, to the second: the precision the update log keeps."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def format_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=timezone.utc)


# --- the update log's status column --------------------------------------------------

class ScrapeStatus(str, Enum):
    OK = "ok"
    NOT_FOUND = "not_found"
    PRIVATE = "private"
    # A scrape that failed (an outage, a page over the size limit...); logged, retried by
    # later runs a few times, changes no data.
    FAILED = "failed"

    @property
    def decisive(self) -> bool:
        return self is not ScrapeStatus.FAILED


# --- the state file ------------------------------------------------------------------

@dataclass
class DatasetState:
    """`dataset_state.json`: the committed bytes of every file, and where the crawl stands."""

    committed: dict[str, int]
    next_members_page: int = 1
    batches: int = 0
    pending_backup: str | None = None
    compacting: bool = False
    format: int = FORMAT_VERSION

    @property
    def headers(self) -> dict[str, tuple[str, ...]]:
        """The header of every data file in this state's format."""
        if self.format == 1:
            return {**HEADERS, FILM_MAPPINGS_FILE: FILMS_HEADER_V1}
        return HEADERS

    def to_bytes(self) -> bytes:
        return json.dumps({
            "format": self.format,
            "committed_bytes": self.committed,
            "next_members_page": self.next_members_page,
            "batches": self.batches,
            "pending_backup": self.pending_backup,
            "compacting": self.compacting,
        }, indent=2, sort_keys=True).encode("utf-8")

    @classmethod
    def read(cls, path: Path) -> "DatasetState":
        return cls.parse(path, path.read_bytes())

    @classmethod
    def parse(cls, path: Path, data: bytes) -> "DatasetState":
        """The state in `data` (read from `path`, which errors name)."""
        try:
            raw = json.loads(data)
            if raw.get("format") not in READABLE_FORMATS:
                raise DatasetError(path, f"unsupported format {raw.get('format')!r}")
            committed = {name: int(raw["committed_bytes"][name]) for name in HEADERS}
            pending_backup = raw.get("pending_backup")
            # It becomes part of a rename: only a name this store writes may get there.
            if pending_backup is not None and not (isinstance(pending_backup, str)
                                                   and BACKUP_NAME.fullmatch(pending_backup)):
                raise DatasetError(path, f"pending_backup {pending_backup!r} is not a backup "
                                   "file name this tool writes")
            return cls(committed=committed,
                       next_members_page=int(raw.get("next_members_page", 1)),
                       batches=int(raw.get("batches", 0)),
                       pending_backup=pending_backup,
                       compacting=bool(raw.get("compacting", False)),
                       format=raw["format"])
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise DatasetError(path, f"unreadable state file ({error})") from None


# --- CSV bytes -------------------------------------------------------------------------

# With "\n" line ends the csv module leaves a lone "\r" unquoted, and readers would
# split the row there: a row holding one is written fully quoted instead.
CARRIAGE_RETURN = "\r"


def needs_full_quoting(row: Sequence[object]) -> bool:
    return any(isinstance(cell, str) and CARRIAGE_RETURN in cell for cell in row)


def write_csv_rows(handle: TextIO, rows: Iterable[Sequence[object]],
                   fully_quoted: Iterable[bool] | None = None) -> None:
    """Write rows as CSV with "\\n" line ends, quoting fully the rows that need it.

    `fully_quoted` (one flag per row) lets a caller that has whole columns find those
    rows at once; without it each row is checked here.
    """
    plain = csv.writer(handle, lineterminator="\n")
    if fully_quoted is None:
        rows = list(rows)
        fully_quoted = list(map(needs_full_quoting, rows))
    else:
        fully_quoted = list(fully_quoted)
    if not any(fully_quoted):  # the usual case, written in one call
        plain.writerows(rows)
        return
    quoted = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for quote, run in groupby(zip(fully_quoted, rows), key=lambda pair: pair[0]):
        (quoted if quote else plain).writerows(row for _, row in run)


def csv_bytes(rows: Iterable[Sequence[object]], header: Sequence[str] | None = None) -> bytes:
    """Rows (after an optional header) as the UTF-8 CSV bytes every dataset file holds."""
    buffer = io.StringIO()
    if header is not None:
        write_csv_rows(buffer, [header])
    write_csv_rows(buffer, rows)
    return buffer.getvalue().encode("utf-8")


def header_bytes(name: str) -> bytes:
    """The first line of dataset file `name`; never quoted, as readers compare it verbatim."""
    return csv_bytes((), HEADERS[name])


# --- the translated (human-facing) file ------------------------------------------------------



# A translated row is four parts, each a function of one thing, so that writers of many
# rows compute each part once per user, film or rating and gather (the store per batch,
# the importer and the benchmarks' generator per file); translated_row_from_parts is the
# one place that says how parts make a row. The film parts are cached: a batch repeats
# the same films in many rows.
_FILM_CACHE = 1 << 14


def translated_user_cells(username: str) -> tuple[str]:
    return (spreadsheet_safe(username),)


@lru_cache(maxsize=_FILM_CACHE)
def translated_film_cells(title: str, year: int | str | None, slug: str) -> tuple[object, ...]:
    return (spreadsheet_safe(title), "" if year is None else year, slug)


@lru_cache(maxsize=32)
def translated_verdict_cells(rating: int, liked: bool | None) -> tuple[object, ...]:
    """Stars, half-star rating and like; a like nobody recorded (an import) is empty."""
    return (f"{rating / 2:g}", rating, "" if liked is None else ("true" if liked else "false"))


@lru_cache(maxsize=_FILM_CACHE)
def translated_url_cells(slug: str) -> tuple[str]:
    """The film's page on the site."""
    return (film_url(slug),)


def translated_row_from_parts(user: tuple[object, ...], film: tuple[object, ...],
                              verdict: tuple[object, ...],
                              url: tuple[object, ...]) -> tuple[object, ...]:
    """The parts above, in TRANSLATED_HEADER's order."""
    return (*user, *film, *verdict, *url)


def translated_row(username: str, title: str, year: int | str | None, slug: str, rating: int,
                   liked: bool | None) -> tuple[object, ...]:
    """One row of the translated file."""
    return translated_row_from_parts(translated_user_cells(username),
                                     translated_film_cells(title, year, slug),
                                     translated_verdict_cells(rating, liked),
                                     translated_url_cells(slug))
