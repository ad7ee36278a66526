"""The ratings dataset on disk: CSV load and save, id mappings, translation, backups.

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
  and the old one becomes dead until `compact` rewrites the files once.
* Ids are dense row numbers assigned in order of first appearance and never
  change, so `continue` keeps them stable.
"""
from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

import config
from errors import BadInputError, DatasetError
from names import (MAX_SLUG_LENGTH, SLUG_PATTERN, USERNAME_PATTERN, validate_slug,
                   validate_username)
from read_in_data import FilmTile
from safe_files import (TEMP_SUFFIX, append_durably, fsync_directory, remove_stray_temp_files,
                        truncate_to, write_atomically, write_durably)

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
LETTERBOXD_FILM_URL = "https://letterboxd.com/film/{slug}/"

RATINGS_HEADER = ("user_id", "film_id", "rating")
UNRATED_HEADER = ("user_id", "film_id")
USERS_HEADER = ("user_id", "username", "display_name")
FILMS_HEADER = ("film_id", "slug", "lid", "letterboxd_id", "title", "year", "genres")
UPDATES_HEADER = ("user_id", "username", "last_scraped", "status", "n_ratings", "n_unrated")
TRANSLATED_HEADER = ("username", "title", "year", "slug", "stars", "rating", "liked", "film_url")

HEADERS: dict[str, tuple[str, ...]] = {
    config.RATINGS_FILE: RATINGS_HEADER,
    config.UNRATED_FILE: UNRATED_HEADER,
    config.USER_MAPPINGS_FILE: USERS_HEADER,
    config.FILM_MAPPINGS_FILE: FILMS_HEADER,
    config.USER_UPDATES_FILE: UPDATES_HEADER,
    config.TRANSLATED_FILE: TRANSLATED_HEADER,
}
# Files rewritten by compaction, which drops dead blocks.
BLOCK_FILES = (config.RATINGS_FILE, config.UNRATED_FILE, config.TRANSLATED_FILE,
               config.USER_UPDATES_FILE)
COMPACT_SUFFIX = ".compact"
# A user whose scrapes failed this many times in a row is no longer retried.
MAX_FAILED_SCRAPES = 3
# A compaction killed after its commit point leaves these for the next open to move in;
# an archived dataset needs them as much as its state file.
_COMPACTED = tuple(name + COMPACT_SUFFIX for name in BLOCK_FILES)
# A new or imported dataset is written here whole, then moved in: until its state file
# is moved (last), the folder's previous content stays the dataset. No TEMP_SUFFIX: the
# stray-file sweep deletes files with it, and this is a folder.
STAGING_DIR = ".incoming"
# What `_backup_name` writes; a state file naming anything else was edited.
BACKUP_NAME = re.compile(r"raw_user_ratings_[0-9]{8}T[0-9]{6}Z_b[0-9]{6,}\.csv")
# Re-reads of a dataset that a builder rewrote (compacted, replaced) while it was read.
LOAD_ATTEMPTS = 5

# A leading character that makes a spreadsheet treat a cell as a formula.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class ScrapeStatus(str, Enum):
    OK = "ok"
    NOT_FOUND = "not_found"
    PRIVATE = "private"
    # A scrape that failed (an outage, a page over the size limit...); logged, retried by
    # the next runs up to MAX_FAILED_SCRAPES times in a row, changes no data.
    FAILED = "failed"

    @property
    def decisive(self) -> bool:
        return self is not ScrapeStatus.FAILED


@dataclass(frozen=True)
class UserScrapeRecord:
    """What one scrape of one user produced, ready to be saved."""

    username: str
    status: ScrapeStatus
    films: tuple[FilmTile, ...] = ()
    display_name: str = ""


@dataclass(frozen=True)
class UserState:
    user_id: int
    username: str
    last_scraped: datetime
    status: ScrapeStatus
    n_ratings: int


@dataclass(frozen=True)
class BatchSummary:
    users_added: int
    users_refreshed: int
    ratings_written: int
    films_added: int


def spreadsheet_safe(cell: str) -> str:
    """Neutralise a cell a spreadsheet would run as a formula (for human-facing CSVs only).

    Line breaks become spaces too: compaction copies the translated file line by line.
    """
    if cell.startswith(_FORMULA_PREFIXES):
        cell = "'" + cell
    return _LINE_BREAK.sub(" ", cell)


def _has_carriage_return(row: Sequence[object]) -> bool:
    return any(isinstance(cell, str) and "\r" in cell for cell in row)


def _csv_bytes(rows: Iterable[Sequence[object]], header: Sequence[str] | None = None) -> bytes:
    """CSV with "\n" line ends.

    With that line end the csv module leaves a lone "\r" unquoted, and readers would
    split the row there; a row holding one is written fully quoted instead.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    quoted = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    if header is not None:
        writer.writerow(header)
    for row in rows:
        (quoted if _has_carriage_return(row) else writer).writerow(row)
    return buffer.getvalue().encode("utf-8")


def _header_bytes(name: str) -> bytes:
    return _csv_bytes((), HEADERS[name])


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _format_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def _translated_row(username: str, film_title: str, year: int | None, slug: str,
                    rating: int, liked: bool) -> tuple[object, ...]:
    return (spreadsheet_safe(username), spreadsheet_safe(film_title),
            "" if year is None else year, slug, f"{rating / 2:g}", rating,
            "true" if liked else "false", LETTERBOXD_FILM_URL.format(slug=slug))


# --- reading small files --------------------------------------------------

def _check_header(path: Path, header: Sequence[str]) -> None:
    if not path.is_file():
        raise DatasetError(path, "file is missing")
    with open(path, "rb") as handle:
        first_line = handle.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    if first_line != ",".join(header):
        raise DatasetError(path, f"wrong header {first_line!r}, expected {','.join(header)!r}", 1)


def _holds_only_header(path: Path) -> bool:
    header = _header_bytes(path.name)
    return path.stat().st_size == len(header) and path.read_bytes() == header


def _line_at(path: Path, offset: int) -> int:
    """Line number (1-based) that byte `offset` of a file falls on."""
    with open(path, "rb") as handle:
        return handle.read(offset).count(b"\n") + 1


def _check_committed_file(path: Path, header: Sequence[str], committed: int) -> None:
    """The file exists, has the right header and still holds every committed byte."""
    _check_header(path, header)
    size = path.stat().st_size
    if size < committed:
        raise DatasetError(path, f"is {size:,} bytes but {committed:,} were committed: "
                           "file truncated", _line_at(path, size))


def _check_commit_point(path: Path, committed: int) -> None:
    """The committed bytes end with a whole line.

    Our appends always end a line, so a commit point inside a line means the
    file was edited since; cutting the rest off as an unfinished batch would
    corrupt it. Checked after the rows, whose own errors say more.
    """
    with open(path, "rb") as handle:
        handle.seek(committed - 1)
        if handle.read(1) == b"\n":
            return
    raise DatasetError(path, "changed since it was saved: its committed data no longer ends "
                       "with a whole line; restore it from backups/ or start over with `new`",
                       _line_at(path, committed))


def _committed_part(path: Path, committed: int | None) -> Path | io.BytesIO:
    """The file, or only its committed bytes: rows past them belong to an unfinished batch."""
    if committed is None:
        return path
    with open(path, "rb") as handle:
        return io.BytesIO(handle.read(committed))


def _read_table(path: Path, header: Sequence[str], nrows: int | None = None,
                committed: int | None = None) -> pd.DataFrame:
    """Read a CSV as strings after checking its header; errors name the file."""
    _check_header(path, header)
    try:
        frame = pd.read_csv(_committed_part(path, committed), dtype=str, keep_default_na=False,
                            na_filter=False, nrows=nrows, encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise DatasetError(path, f"not a valid CSV file ({error})") from None
    if nrows is not None and len(frame) < nrows:
        raise DatasetError(path, f"has {len(frame)} rows, {nrows} were committed: file truncated",
                           len(frame) + 2)
    return frame


def _first_bad_line(mask: np.ndarray) -> int:
    """File line number (header is line 1) of the first row flagged in `mask`."""
    return int(np.flatnonzero(mask)[0]) + 2


def _integer_column(path: Path, frame: pd.DataFrame, column: str, *,
                    high: int | None = None) -> np.ndarray:
    """A column of non-negative integers written as plain digits, as int64.

    "inf", "1e3" or "-1" are errors here, in the file that holds them, rather than
    odd numbers that surface later against another file. ASCII digits only (`\\d`
    would pass other scripts' digits), at most 18, so every value fits int64 exactly.
    """
    text = frame[column]
    digits = text.str.fullmatch(r"[0-9]{1,18}").to_numpy(dtype=bool)
    if not digits.all():
        line = _first_bad_line(~digits)
        raise DatasetError(path, f"{column} is not an integer (plain digits expected): "
                           f"{text.iloc[line - 2]!r}", line)
    numbers = pd.to_numeric(text).to_numpy(dtype=np.int64)
    if high is not None and (numbers > high).any():
        line = _first_bad_line(numbers > high)
        raise DatasetError(path, f"{column} {text.iloc[line - 2]!r} is out of range", line)
    return numbers


def _check_dense_ids(path: Path, ids: np.ndarray, column: str) -> None:
    wrong = ids != np.arange(len(ids))
    if wrong.any():
        line = _first_bad_line(wrong)
        raise DatasetError(path, f"{column} {ids[line - 2]} breaks the sequence 0, 1, 2, ...", line)


def _check_names(path: Path, names: pd.Series, pattern: str, what: str) -> None:
    invalid = ~names.str.fullmatch(pattern).to_numpy(dtype=bool)
    if what == "slug":
        invalid |= (names.str.len() > MAX_SLUG_LENGTH).to_numpy()
    if invalid.any():
        line = _first_bad_line(invalid)
        raise DatasetError(path, f"invalid {what} {names.iloc[line - 2]!r}", line)
    duplicated = names.duplicated().to_numpy()
    if duplicated.any():
        line = _first_bad_line(duplicated)
        raise DatasetError(path, f"duplicate {what} {names.iloc[line - 2]!r}", line)


def _read_user_mappings(data_dir: Path, committed: int | None = None) -> pd.DataFrame:
    path = data_dir / config.USER_MAPPINGS_FILE
    users = _read_table(path, USERS_HEADER, committed=committed)
    _check_dense_ids(path, _integer_column(path, users, "user_id"), "user_id")
    _check_names(path, users["username"], USERNAME_PATTERN, "username")
    return users


def _read_film_mappings(data_dir: Path, committed: int | None = None) -> pd.DataFrame:
    path = data_dir / config.FILM_MAPPINGS_FILE
    films = _read_table(path, FILMS_HEADER, committed=committed)
    _check_dense_ids(path, _integer_column(path, films, "film_id"), "film_id")
    _check_names(path, films["slug"], SLUG_PATTERN, "slug")
    return films


@dataclass
class _UpdateLog:
    """The update log, parsed: one entry per scrape, in block order."""

    user_ids: np.ndarray
    usernames: list[str]
    times: list[str]
    statuses: list[ScrapeStatus]
    n_ratings: np.ndarray
    n_unrated: np.ndarray

    def latest_decisive(self) -> dict[int, int]:
        """Row position of each user's latest decisive scrape."""
        latest: dict[int, int] = {}
        for position, (user_id, status) in enumerate(zip(self.user_ids.tolist(), self.statuses)):
            if status.decisive:
                latest[user_id] = position
        return latest

    def live_blocks(self) -> np.ndarray:
        """Boolean per log row: does its block hold a user's current data?"""
        live = np.zeros(len(self.statuses), dtype=bool)
        for position in self.latest_decisive().values():
            live[position] = self.statuses[position] is ScrapeStatus.OK
        return live


def _read_update_log(path: Path, usernames: Sequence[str],
                     committed: int | None = None) -> _UpdateLog:
    """The log, checked against the user mappings (`usernames`, by user id).

    A log row naming someone other than its user id's user is refused, not skipped:
    the log indexes the ratings blocks, so dropping a row would shift every later
    block onto the wrong user, and a refresh would send its name to the site.
    """
    frame = _read_table(path, UPDATES_HEADER, committed=committed)
    user_ids = _integer_column(path, frame, "user_id", high=max(len(usernames) - 1, 0))
    if not usernames and len(frame):
        raise DatasetError(path, "names a user that is not in the user mappings", 2)
    logged = frame["username"]
    invalid = ~logged.str.fullmatch(USERNAME_PATTERN).to_numpy(dtype=bool)
    if invalid.any():
        line = _first_bad_line(invalid)
        raise DatasetError(path, f"invalid username {logged.iloc[line - 2]!r}", line)
    mapped = np.asarray(usernames, dtype=object)[user_ids]
    mismatch = logged.to_numpy(dtype=object) != mapped
    if mismatch.any():
        line = _first_bad_line(mismatch)
        raise DatasetError(path, f"username {logged.iloc[line - 2]!r} is not user_id "
                           f"{user_ids[line - 2]}'s, {mapped[line - 2]!r} in "
                           f"{config.USER_MAPPINGS_FILE}", line)
    statuses = []
    for position, text in enumerate(frame["status"].tolist()):
        try:
            statuses.append(ScrapeStatus(text))
        except ValueError:
            raise DatasetError(path, f"unknown status {text!r}", position + 2) from None
    for position, text in enumerate(frame["last_scraped"].tolist()):
        try:
            _parse_time(text)
        except ValueError:
            raise DatasetError(path, f"last_scraped {text!r} is not YYYY-MM-DDTHH:MM:SSZ",
                               position + 2) from None
    return _UpdateLog(
        user_ids=user_ids,
        usernames=logged.tolist(),
        times=frame["last_scraped"].tolist(),
        statuses=statuses,
        n_ratings=_integer_column(path, frame, "n_ratings"),
        n_unrated=_integer_column(path, frame, "n_unrated"),
    )


# --- the store --------------------------------------------------------------

@dataclass
class _State:
    committed: dict[str, int]
    next_members_page: int = 1
    batches: int = 0
    pending_backup: str | None = None
    compacting: bool = False

    def to_bytes(self) -> bytes:
        return json.dumps({
            "format": FORMAT_VERSION,
            "committed_bytes": self.committed,
            "next_members_page": self.next_members_page,
            "batches": self.batches,
            "pending_backup": self.pending_backup,
            "compacting": self.compacting,
        }, indent=2, sort_keys=True).encode("utf-8")

    @classmethod
    def read(cls, path: Path) -> "_State":
        return cls.parse(path, path.read_bytes())

    @classmethod
    def parse(cls, path: Path, data: bytes) -> "_State":
        try:
            raw = json.loads(data)
            if raw.get("format") != FORMAT_VERSION:
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
                       compacting=bool(raw.get("compacting", False)))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise DatasetError(path, f"unreadable state file ({error})") from None


def _backup_name(now: datetime, batch: int) -> str:
    """Matches BACKUP_NAME; sorts by time, then batch number."""
    return f"raw_user_ratings_{now.strftime('%Y%m%dT%H%M%SZ')}_b{batch:06d}.csv"


def dataset_exists(data_dir: Path) -> bool:
    data_dir = Path(data_dir)
    return (data_dir / config.STATE_FILE).exists() or any(
        (data_dir / name).exists() for name in HEADERS) or _install_pending(data_dir)


@contextmanager
def exclusive_writer(data_dir: Path) -> Iterator[None]:
    """Hold the dataset's writer lock for a whole run, or refuse to start.

    Two builders on one dataset would hand out the same user ids and interleave their
    appends. Readers need no lock. The lock dies with its process, so a killed run
    never leaves the dataset locked.
    """
    data_dir = Path(data_dir)
    created = not data_dir.exists()
    data_dir.mkdir(parents=True, exist_ok=True)
    # The folder itself is locked: it stays while `new` archives every file in it.
    folder = os.open(data_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BadInputError(f"another builder is writing {data_dir}; let it finish "
                                "first") from None
        except OSError as error:  # some network filesystems have no locks
            logger.warning("cannot lock %s (%s): make sure no other builder writes to it",
                           data_dir, error.strerror or error)
        yield
    finally:
        os.close(folder)
        if created and not any(data_dir.iterdir()):  # a run that never started
            data_dir.rmdir()


def archive_dataset(data_dir: Path, now: datetime | None = None) -> Path | None:
    """Move an existing dataset (and its backups and model) aside; never delete it.

    An install cut short is finished first, so its dataset is archived whole
    rather than mixed with the files it was replacing.
    """
    data_dir = Path(data_dir)
    _finish_interrupted_install(data_dir)
    names = [config.STATE_FILE, *HEADERS, *_COMPACTED, config.BACKUP_DIR, config.MODEL_DIR]
    return _archive(data_dir, [name for name in names if (data_dir / name).exists()], now)


def _archive(data_dir: Path, names: Sequence[str], now: datetime | None) -> Path | None:
    """Move `names` into a new archive/<UTC time>/ folder."""
    if not names:
        return None
    stamp = (now or _utc_now()).strftime("%Y%m%dT%H%M%SZ")
    target = data_dir / config.ARCHIVE_DIR / stamp
    suffix = 1
    while target.exists():
        target = data_dir / config.ARCHIVE_DIR / f"{stamp}_{suffix}"
        suffix += 1
    target.mkdir(parents=True)
    for name in names:
        os.replace(data_dir / name, target / name)
    fsync_directory(target)
    fsync_directory(data_dir)
    logger.info("archived the previous dataset to %s", target)
    return target


# --- installing a dataset written whole (`new`, `import`) ----------------------

def _install_pending(data_dir: Path) -> bool:
    """A complete dataset waits in the staging folder: an install was cut short."""
    return (data_dir / STAGING_DIR / config.STATE_FILE).exists()


def _fresh_staging(data_dir: Path) -> Path:
    """An empty staging folder inside `data_dir`, so the moves in stay on one filesystem."""
    staging = data_dir / STAGING_DIR
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def _commit_staging(staging: Path, state: _State) -> None:
    """The staged dataset (its files written durably) is complete once its state file exists."""
    fsync_directory(staging)
    write_atomically(staging / config.STATE_FILE, state.to_bytes())


def _install(data_dir: Path, now: datetime | None = None) -> Path | None:
    """Archive what the staged dataset replaces, then move it in, state file last.

    Every step can be repeated after a kill: a name still in the staging folder has
    not been moved in yet, so a file of that name in `data_dir` is the old dataset's
    (a kill while archiving splits the old dataset over two archive folders, nothing
    more). Returns the archive folder, if there was anything to archive.
    """
    staging = data_dir / STAGING_DIR
    old = [name for name in (config.STATE_FILE, *HEADERS)
           if (data_dir / name).exists() and (staging / name).exists()]
    old += [name for name in (*_COMPACTED, config.BACKUP_DIR, config.MODEL_DIR)
            if (data_dir / name).exists()]
    archived = _archive(data_dir, old, now)
    for name in HEADERS:
        if (staging / name).exists():
            os.replace(staging / name, data_dir / name)
    fsync_directory(data_dir)
    # The commit point: from this rename on, the folder holds the new dataset.
    os.replace(staging / config.STATE_FILE, data_dir / config.STATE_FILE)
    fsync_directory(data_dir)
    shutil.rmtree(staging)
    return archived


def _finish_interrupted_install(data_dir: Path) -> None:
    """Complete an install a kill cut short, or drop a staged dataset never finished.

    An unfinished one (no state file yet) is only a copy being written: the source it
    came from is still there and the folder's dataset was not touched.
    """
    staging = Path(data_dir) / STAGING_DIR
    if not staging.is_dir():
        return
    if _install_pending(Path(data_dir)):
        logger.warning("finishing the installation of a new dataset that was interrupted")
        _install(Path(data_dir))
    else:
        shutil.rmtree(staging)
        logger.info("removed the partial copy of an interrupted `new` or `import`")


class DatasetStore:
    """An open dataset: the in-memory indexes the builder needs and crash-safe batch saves.

    Only one process may write a dataset at a time: the builder holds `exclusive_writer`.
    """

    def __init__(self, data_dir: Path, state: _State, users: dict[str, int],
                 films: dict[str, int], log: _UpdateLog) -> None:
        self.data_dir = data_dir
        self._state = state
        self._user_ids = users
        self._film_ids = films
        self._latest: dict[int, UserState] = {}
        self._rows_total = int(log.n_ratings.sum())
        self._rows_live = 0
        latest = log.latest_decisive()
        # Failed scrapes of users never scraped decisively: each run retries them, a few times.
        self._failures: dict[int, int] = {}
        for user_id, status in zip(log.user_ids.tolist(), log.statuses):
            if status is ScrapeStatus.FAILED and user_id not in latest:
                self._failures[user_id] = self._failures.get(user_id, 0) + 1
        for position in latest.values():
            self._remember(UserState(
                user_id=int(log.user_ids[position]), username=log.usernames[position],
                last_scraped=_parse_time(log.times[position]),
                status=log.statuses[position], n_ratings=int(log.n_ratings[position])))

    def _remember(self, state: UserState) -> None:
        previous = self._latest.get(state.user_id)
        if previous is not None and previous.status is ScrapeStatus.OK:
            self._rows_live -= previous.n_ratings
        if state.status is ScrapeStatus.OK:
            self._rows_live += state.n_ratings
        self._latest[state.user_id] = state

    # -- opening --------------------------------------------------------

    @classmethod
    def open(cls, data_dir: Path, *, create: bool = False) -> "DatasetStore":
        """Open (recovering from an interrupted run) or, with `create`, start a dataset."""
        data_dir = Path(data_dir)
        _finish_interrupted_install(data_dir)
        state_path = data_dir / config.STATE_FILE
        if not state_path.exists():
            present = [name for name in HEADERS if (data_dir / name).exists()]
            if present and all(_holds_only_header(data_dir / name) for name in present):
                raise DatasetError(data_dir, "holds only the empty files of an interrupted "
                                   "`new` (no dataset_state.json); run `new` again")
            if present:
                raise DatasetError(state_path, "is missing although dataset files exist; "
                                   "restore it from a backup or start over with `new`")
            if not create:
                raise DatasetError(data_dir, "holds no dataset; start one with `new`")
            cls._create(data_dir)
        state = _State.read(state_path)
        cls._recover(data_dir, state)
        # Validate the committed data before cutting or appending anything: a builder
        # must refuse a hand-edited dataset, not bury the damage under new batches.
        load_ratings_dataset(data_dir)
        cls._cut_uncommitted_tails(data_dir, state)
        return cls._load(data_dir, state)

    @staticmethod
    def _create(data_dir: Path) -> None:
        """Stage an empty dataset and move it in: a kill leaves all of it or none."""
        staging = _fresh_staging(data_dir)
        committed = {}
        for name in HEADERS:
            header = _header_bytes(name)
            write_durably(staging / name, header)
            committed[name] = len(header)
        _commit_staging(staging, _State(committed=committed))
        _install(data_dir)

    @staticmethod
    def _recover(data_dir: Path, state: _State) -> None:
        """Finish a committed compaction or backup; remove temporary files."""
        state_path = data_dir / config.STATE_FILE
        if state.compacting:
            for name in BLOCK_FILES:
                compacted = data_dir / (name + COMPACT_SUFFIX)
                if compacted.exists():
                    os.replace(compacted, data_dir / name)
            fsync_directory(data_dir)
            state.compacting = False
            write_atomically(state_path, state.to_bytes())
        for name in BLOCK_FILES:
            (data_dir / (name + COMPACT_SUFFIX)).unlink(missing_ok=True)
        backups = data_dir / config.BACKUP_DIR
        if state.pending_backup:
            pending = backups / f".{state.pending_backup}{TEMP_SUFFIX}"
            if pending.exists():
                os.replace(pending, backups / state.pending_backup)
                fsync_directory(backups)
        for stray in remove_stray_temp_files(backups) + remove_stray_temp_files(data_dir):
            logger.info("removed %s left by an interrupted run", stray.name)

    @staticmethod
    def _cut_uncommitted_tails(data_dir: Path, state: _State) -> None:
        """Drop the appends of a batch that was interrupted before its commit point.

        The files were validated just before: each exists and holds its committed bytes.
        """
        for name, committed in state.committed.items():
            path = data_dir / name
            size = path.stat().st_size
            if size > committed:
                logger.warning("%s: discarding %d bytes an interrupted run did not commit",
                               name, size - committed)
                truncate_to(path, committed)

    @classmethod
    def _load(cls, data_dir: Path, state: _State) -> "DatasetStore":
        usernames = _read_user_mappings(data_dir)["username"].tolist()
        films = _read_film_mappings(data_dir)
        log = _read_update_log(data_dir / config.USER_UPDATES_FILE, usernames)
        return cls(data_dir, state,
                   users={name: index for index, name in enumerate(usernames)},
                   films={slug: index for index, slug in enumerate(films["slug"].tolist())},
                   log=log)

    # -- what the builder asks ------------------------------------------

    @property
    def next_members_page(self) -> int:
        return self._state.next_members_page

    @property
    def user_count(self) -> int:
        return len(self._user_ids)

    @property
    def rated_user_count(self) -> int:
        """Users whose latest decisive scrape read their ratings (not private or gone)."""
        return sum(state.status is ScrapeStatus.OK for state in self._latest.values())

    @property
    def film_count(self) -> int:
        return len(self._film_ids)

    @property
    def rating_count(self) -> int:
        """Ratings that count (dead blocks of refreshed users excluded)."""
        return self._rows_live

    @property
    def dead_rating_rows(self) -> int:
        return self._rows_total - self._rows_live

    def user_state(self, username: str) -> UserState | None:
        user_id = self._user_ids.get(username.lower())
        return None if user_id is None else self._latest.get(user_id)

    def is_known(self, username: str) -> bool:
        """Scraped before with a decisive outcome (a passing failure does not count)."""
        return self.user_state(username) is not None

    def is_abandoned(self, username: str) -> bool:
        """Never read, after MAX_FAILED_SCRAPES failed scrapes: not to be queued again."""
        user_id = self._user_ids.get(username.lower())
        return (user_id is not None and user_id not in self._latest
                and self._failures.get(user_id, 0) >= MAX_FAILED_SCRAPES)

    def unfinished_users(self) -> list[str]:
        """Users whose every scrape failed, fewer than MAX_FAILED_SCRAPES times, in id order.

        Past that the failure is taken as lasting (a page always over the size limit,
        markup we cannot read): retrying it on every run would cost requests forever.
        """
        return [name for name, user_id in self._user_ids.items()
                if user_id not in self._latest
                and self._failures.get(user_id, 0) < MAX_FAILED_SCRAPES]

    @property
    def abandoned_user_count(self) -> int:
        """Users no longer retried: every one of their MAX_FAILED_SCRAPES scrapes failed."""
        return sum(1 for name in self._user_ids if self.is_abandoned(name))

    def stale_users(self, older_than: timedelta, now: datetime | None = None) -> list[str]:
        """Users whose latest scrape is older than `older_than`, oldest first."""
        cutoff = (now or _utc_now()) - older_than
        stale = [state for state in self._latest.values() if state.last_scraped <= cutoff]
        stale.sort(key=lambda state: (state.last_scraped, state.user_id))
        return [state.username for state in stale]

    # -- saving -----------------------------------------------------------

    def commit_batch(self, records: Sequence[UserScrapeRecord], *,
                     next_members_page: int | None = None,
                     now: datetime | None = None) -> BatchSummary:
        """Save users in the given order; all of the batch is committed or none of it."""
        now = now or _utc_now()
        stamp = _format_time(now)
        new_users: list[tuple[object, ...]] = []
        new_films: list[tuple[object, ...]] = []
        ratings: list[tuple[int, int, int]] = []
        unrated: list[tuple[int, int]] = []
        translated: list[tuple[object, ...]] = []
        updates: list[tuple[object, ...]] = []
        user_ids = dict(self._user_ids)
        film_ids = dict(self._film_ids)
        users_added = users_refreshed = 0
        new_states: list[UserState] = []
        failures = dict(self._failures)

        for record in records:
            username = validate_username(record.username)
            user_id = user_ids.get(username)
            if user_id is None:
                user_id = len(user_ids)
                user_ids[username] = user_id
                new_users.append((user_id, username, record.display_name))
            if record.status is ScrapeStatus.OK:
                if self._latest.get(user_id) is None:
                    users_added += 1
                else:
                    users_refreshed += 1
            user_ratings = user_unrated = 0
            if record.status is ScrapeStatus.OK:
                seen: set[str] = set()
                for tile in record.films:
                    slug = validate_slug(tile.slug)
                    if slug in seen:
                        continue
                    seen.add(slug)
                    film_id = film_ids.get(slug)
                    if film_id is None:
                        film_id = len(film_ids)
                        film_ids[slug] = film_id
                        new_films.append((
                            film_id, slug, tile.lid or "",
                            "" if tile.letterboxd_id is None else tile.letterboxd_id,
                            tile.title, "" if tile.year is None else tile.year,
                            ""))
                    if tile.rating is None:
                        unrated.append((user_id, film_id))
                        user_unrated += 1
                    else:
                        ratings.append((user_id, film_id, tile.rating))
                        translated.append(_translated_row(username, tile.title, tile.year,
                                                          slug, tile.rating, tile.liked))
                        user_ratings += 1
            updates.append((user_id, username, stamp, record.status.value,
                            user_ratings, user_unrated))
            if record.status.decisive:
                new_states.append(UserState(user_id, username, now, record.status, user_ratings))
            elif user_id not in self._latest:
                failures[user_id] = failures.get(user_id, 0) + 1

        self._write_batch(ratings, {
            config.USER_MAPPINGS_FILE: new_users,
            config.FILM_MAPPINGS_FILE: new_films,
            config.RATINGS_FILE: ratings,
            config.UNRATED_FILE: unrated,
            config.TRANSLATED_FILE: translated,
            config.USER_UPDATES_FILE: updates,
        }, next_members_page, now)

        self._user_ids = user_ids
        self._film_ids = film_ids
        self._failures = failures
        self._rows_total += len(ratings)
        for state in new_states:
            self._remember(state)
        return BatchSummary(users_added=users_added, users_refreshed=users_refreshed,
                            ratings_written=len(ratings), films_added=len(new_films))

    def _write_batch(self, batch_ratings: list[tuple[int, int, int]],
                     appends: dict[str, list[tuple[object, ...]]],
                     next_members_page: int | None, now: datetime) -> None:
        state = self._state
        committed = dict(state.committed)
        backups = self.data_dir / config.BACKUP_DIR
        backups.mkdir(exist_ok=True)
        backup_name = _backup_name(now, state.batches + 1)
        pending = backups / f".{backup_name}{TEMP_SUFFIX}"
        write_durably(pending, _csv_bytes(batch_ratings, RATINGS_HEADER))
        for name, rows in appends.items():
            if rows:
                committed[name] = append_durably(self.data_dir / name, _csv_bytes(rows))
        new_state = _State(
            committed=committed,
            next_members_page=next_members_page or state.next_members_page,
            batches=state.batches + 1,
            pending_backup=backup_name)
        # The commit point: before this rename the batch does not exist, after it, it does.
        write_atomically(self.data_dir / config.STATE_FILE, new_state.to_bytes())
        self._state = new_state
        os.replace(pending, backups / backup_name)
        fsync_directory(backups)

    # -- compaction ---------------------------------------------------------

    def compact(self) -> int:
        """Rewrite the block files without dead blocks; returns the rating rows dropped.

        Costs one pass over the dataset, so the builder runs it once at the end
        of a run that refreshed users, never per batch.
        """
        dead = self.dead_rating_rows
        log = _read_update_log(self.data_dir / config.USER_UPDATES_FILE, list(self._user_ids))
        latest = log.latest_decisive()
        keep_rows = np.zeros(len(log.statuses), dtype=bool)
        keep_rows[list(latest.values())] = True
        # The failures of users never read count towards MAX_FAILED_SCRAPES: keep them.
        keep_rows |= np.array([status is ScrapeStatus.FAILED and user_id not in latest
                               for user_id, status in zip(log.user_ids.tolist(), log.statuses)],
                              dtype=bool)
        live = log.live_blocks()
        if keep_rows.sum() == len(keep_rows) and dead == 0:
            return 0
        committed = dict(self._state.committed)
        for name, counts in ((config.RATINGS_FILE, log.n_ratings),
                             (config.TRANSLATED_FILE, log.n_ratings),
                             (config.UNRATED_FILE, log.n_unrated)):
            committed[name] = self._compact_block_file(name, counts, live)
        kept = np.flatnonzero(keep_rows).tolist()
        data = _csv_bytes(((int(log.user_ids[row]), log.usernames[row], log.times[row],
                            log.statuses[row].value, int(log.n_ratings[row]),
                            int(log.n_unrated[row])) for row in kept), UPDATES_HEADER)
        write_durably(self.data_dir / (config.USER_UPDATES_FILE + COMPACT_SUFFIX), data)
        committed[config.USER_UPDATES_FILE] = len(data)
        state = replace(self._state, committed=committed, compacting=True)
        write_atomically(self.data_dir / config.STATE_FILE, state.to_bytes())
        self._recover(self.data_dir, state)
        self._state = state
        self._rows_total = self._rows_live
        logger.info("compacted the dataset: dropped %d replaced rating rows", dead)
        return dead

    def _compact_block_file(self, name: str, counts: np.ndarray, live: np.ndarray) -> int:
        """Copy the live blocks of a block file to its `.compact` sibling, streaming."""
        source_path = self.data_dir / name
        target_path = self.data_dir / (name + COMPACT_SUFFIX)
        size = 0
        with open(source_path, "rb") as source, open(target_path, "wb") as target:
            header = source.readline()
            target.write(header)
            size += len(header)
            for count, keep in zip(counts.tolist(), live.tolist()):
                for _ in range(count):
                    line = source.readline()
                    if not line.endswith(b"\n"):
                        raise DatasetError(source_path, "ends before the update log says it does")
                    if keep:
                        target.write(line)
                        size += len(line)
            target.flush()
            os.fsync(target.fileno())
        return size


# --- loading for the model ------------------------------------------------------

@dataclass
class RatingsData:
    """A dataset's current ratings as arrays, with the id tables to translate them."""

    user_index: np.ndarray      # int32, user_id per rating
    film_index: np.ndarray      # int32, film_id per rating
    rating: np.ndarray          # int8, 1..10
    usernames: list[str]        # by user_id
    films: pd.DataFrame         # by film_id: slug, lid, letterboxd_id, title, year, genres
    unrated_user: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    unrated_film: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))

    @property
    def n_users(self) -> int:
        return len(self.usernames)

    @property
    def n_films(self) -> int:
        return len(self.films)


def dataset_fingerprint(data_dir: Path) -> str:
    """Changes whenever any dataset file changes; keys the cached model."""
    data_dir = Path(data_dir)
    digest = hashlib.sha256()
    for name in (config.STATE_FILE, *HEADERS):
        path = data_dir / name
        if path.exists():
            stat = path.stat()
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    state_path = data_dir / config.STATE_FILE
    if state_path.exists():
        digest.update(state_path.read_bytes())
    return digest.hexdigest()


def _read_block_file(path: Path, header: Sequence[str], nrows: int, n_users: int,
                     n_films: int) -> pd.DataFrame:
    """Read the committed rows of an integer block file, checking every value."""
    _check_header(path, header)
    try:
        frame = pd.read_csv(path, dtype=np.int64, nrows=nrows, engine="c")
    except (ValueError, pd.errors.ParserError):
        frame = _read_table(path, header, nrows)
        for column in header:
            _integer_column(path, frame, column)
        raise DatasetError(path, "is not a valid CSV file") from None
    if len(frame) < nrows:
        raise DatasetError(path, f"has {len(frame)} rows, {nrows} were committed: file truncated",
                           len(frame) + 2)
    checks = [("user_id", 0, n_users - 1), ("film_id", 0, n_films - 1)]
    if "rating" in frame:
        checks.append(("rating", 1, 10))
    for column, low, high in checks:
        values = frame[column].to_numpy()
        bad = (values < low) | (values > high)
        if bad.any():
            line = _first_bad_line(bad)
            what = "an unknown id" if column != "rating" else "out of range"
            raise DatasetError(path, f"{column} {values[line - 2]} is {what}", line)
    return frame


def load_film_table(data_dir: Path, committed: int | None = None, *,
                    validated_before: bool = False) -> pd.DataFrame:
    """The film mappings, validated, indexed by film id, with numeric year and Letterboxd id.

    `committed` (bytes) leaves out films a running builder has not committed yet.
    `validated_before` skips the row checks for a file known unchanged since it passed
    them (the model cache's fingerprint says so): the recommender's fast path.
    """
    if validated_before:
        path = Path(data_dir) / config.FILM_MAPPINGS_FILE
        _check_header(path, FILMS_HEADER)
        if committed is None:  # a running builder may be half-way through a row
            state = _State.read(Path(data_dir) / config.STATE_FILE)
            committed = state.committed[config.FILM_MAPPINGS_FILE]
        try:
            films = pd.read_csv(_committed_part(path, committed), keep_default_na=False,
                                na_values={"letterboxd_id": [""], "year": [""]},
                                dtype={"film_id": np.int64, "letterboxd_id": "Int64",
                                       "year": "Int64", "slug": str, "lid": str, "title": str,
                                       "genres": str})
        except (pd.errors.ParserError, ValueError) as error:
            raise DatasetError(path, f"not a valid film table ({error})") from None
        return films.drop(columns="film_id")
    films = _read_film_mappings(Path(data_dir), committed)
    films["letterboxd_id"] = pd.to_numeric(films["letterboxd_id"], errors="coerce").astype("Int64")
    films["year"] = pd.to_numeric(films["year"], errors="coerce").astype("Int64")
    return films.drop(columns="film_id")


def _file_identities(data_dir: Path) -> list[tuple[int, int] | None]:
    """Which file each dataset name is: appends keep it, compaction and installs replace it."""
    identities: list[tuple[int, int] | None] = []
    for name in HEADERS:
        try:
            stat = (data_dir / name).stat()
        except FileNotFoundError:
            identities.append(None)
        else:
            identities.append((stat.st_dev, stat.st_ino))
    return identities


def _state_bytes(state_path: Path) -> bytes | None:
    try:
        return state_path.read_bytes()
    except FileNotFoundError:
        return None


def load_ratings_dataset(data_dir: Path) -> RatingsData:
    """Every current rating of a dataset, validated; reads, never writes.

    Safe while a builder is running: only committed rows are read, and a read that
    a compaction (or a new dataset moving in) overtook is done again, so an error
    means the dataset was broken while its state file stood still. Batches committed
    meanwhile only append, so the rows read stay a consistent snapshot.
    """
    data_dir = Path(data_dir)
    state_path = data_dir / config.STATE_FILE
    for _ in range(LOAD_ATTEMPTS):
        identities = _file_identities(data_dir)  # first: a replacement after this shows
        state_bytes = _state_bytes(state_path)
        if state_bytes is None:
            if _install_pending(data_dir):
                raise DatasetError(data_dir, "a new dataset was being moved in when the run "
                                   "stopped; run `compile_training_data.py continue --users 0` "
                                   "to finish it")
            raise DatasetError(data_dir, "holds no dataset (no dataset_state.json); "
                               "build one with compile_training_data.py or import one")
        try:
            data = _load_committed(data_dir, _State.parse(state_path, state_bytes))
        except DatasetError:
            if _state_bytes(state_path) == state_bytes:
                raise
        else:
            if (_state_bytes(state_path) == state_bytes
                    or _file_identities(data_dir) == identities):
                return data
        logger.info("%s changed while it was read; reading it again", data_dir)
    raise DatasetError(data_dir, f"was rewritten each of the {LOAD_ATTEMPTS} times it was read "
                       "(a builder is compacting or replacing it); try again when it is done")


def _load_committed(data_dir: Path, state: _State) -> RatingsData:
    """The dataset as `state` commits it; errors if the files do not match it."""
    state_path = data_dir / config.STATE_FILE
    if state.compacting:
        raise DatasetError(state_path, "a compaction was interrupted; run "
                           "`compile_training_data.py continue --users 0` to finish it")
    for name, committed in state.committed.items():
        _check_committed_file(data_dir / name, HEADERS[name], committed)
    users = _read_user_mappings(data_dir, state.committed[config.USER_MAPPINGS_FILE])
    usernames = users["username"].tolist()
    films = load_film_table(data_dir, state.committed[config.FILM_MAPPINGS_FILE])
    log = _read_update_log(data_dir / config.USER_UPDATES_FILE, usernames,
                           committed=state.committed[config.USER_UPDATES_FILE])
    live = log.live_blocks()

    ratings = _read_block_file(data_dir / config.RATINGS_FILE, RATINGS_HEADER,
                               int(log.n_ratings.sum()), len(users), len(films))
    keep = np.repeat(live, log.n_ratings)
    block_users = np.repeat(log.user_ids, log.n_ratings)
    ratings_path = data_dir / config.RATINGS_FILE
    mismatch = ratings["user_id"].to_numpy() != block_users
    if mismatch.any():
        line = _first_bad_line(mismatch)
        raise DatasetError(ratings_path, "row does not belong to the user the update log "
                           "says this block is for", line)
    user_index = ratings["user_id"].to_numpy(np.int32)[keep]
    film_index = ratings["film_id"].to_numpy(np.int32)[keep]
    rating = ratings["rating"].to_numpy(np.int8)[keep]
    del ratings
    key = user_index.astype(np.int64) * max(len(films), 1) + film_index
    order = np.argsort(key, kind="stable")
    repeated = np.zeros(len(key), dtype=bool)
    repeated[order[1:]] = key[order[1:]] == key[order[:-1]]
    if repeated.any():
        line = int(np.flatnonzero(keep)[np.flatnonzero(repeated)[0]]) + 2
        raise DatasetError(ratings_path, "duplicate rating of the same film by the same user",
                           line)

    unrated = _read_block_file(data_dir / config.UNRATED_FILE, UNRATED_HEADER,
                               int(log.n_unrated.sum()), len(users), len(films))
    keep_unrated = np.repeat(live, log.n_unrated)
    for name, committed in state.committed.items():
        _check_commit_point(data_dir / name, committed)
    return RatingsData(
        user_index=user_index, film_index=film_index, rating=rating,
        usernames=usernames, films=films,
        unrated_user=unrated["user_id"].to_numpy(np.int32)[keep_unrated],
        unrated_film=unrated["film_id"].to_numpy(np.int32)[keep_unrated])


# --- importing a published dataset ----------------------------------------------

@dataclass(frozen=True)
class ImportSummary:
    ratings: int
    users: int
    films: int
    rows_dropped: int
    archived: Path | None = None  # where the dataset it replaced went


_STARS_TEXT = np.array([""] + [f"{value / 2:g}" for value in range(1, 11)], dtype=object)


def _read_source_csv(path: Path, required: Sequence[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (OSError, EOFError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise DatasetError(path, f"cannot be read as CSV ({error})") from None
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DatasetError(path, f"lacks the column(s) {', '.join(missing)}", 1)
    return frame


def _csv_quoting(table: pd.DataFrame) -> int:
    """Quote every cell of a table holding a lone "\r", which to_csv would leave bare."""
    text_columns = [table[column].astype(str) for column in table.columns
                    if not pd.api.types.is_numeric_dtype(table[column])]
    if any(column.str.contains("\r", regex=False).any() for column in text_columns):
        return csv.QUOTE_ALL
    return csv.QUOTE_MINIMAL


def import_published_dataset(ratings_path: Path, data_dir: Path, *,
                             movies_path: Path | None = None, users_path: Path | None = None,
                             now: datetime | None = None,
                             archive_existing: bool = False) -> ImportSummary:
    """Build a dataset from the Kaggle "letterboxd-movie-ratings-data" layout.

    `ratings_path` has `user_id` (username), `movie_id` (slug) and `rating_val`;
    `movies_path` (`movie_id`, `movie_title`, `year_released`, optional `genres`)
    and `users_path` (`username`, `display_name`) are optional. Invalid rows are
    dropped with a warning; a repeated (user, film) pair keeps its last rating.

    The new dataset is written aside and moved in only once it is complete, so a
    source that cannot be read, or a kill, leaves the folder's dataset as it was.
    A folder that holds a dataset is refused unless `archive_existing`, which
    archives it just before the move.
    """
    data_dir = Path(data_dir)
    _finish_interrupted_install(data_dir)
    if dataset_exists(data_dir) and not archive_existing:
        raise DatasetError(data_dir, "already holds a dataset; archive it first")
    now = now or _utc_now()
    source = _read_source_csv(Path(ratings_path), ("user_id", "movie_id", "rating_val"))
    usernames = source["user_id"].str.strip()
    slugs = source["movie_id"].str.strip()
    ratings = pd.to_numeric(source["rating_val"], errors="coerce")
    valid = (usernames.str.fullmatch(USERNAME_PATTERN) & slugs.str.fullmatch(SLUG_PATTERN)
             & ratings.between(1, 10) & (ratings == ratings.round()))
    valid &= slugs.str.len() <= MAX_SLUG_LENGTH
    frame = pd.DataFrame({"username": usernames.str.lower(), "slug": slugs,
                          "rating": ratings})[valid.to_numpy()]
    dropped = int(len(source) - len(frame))
    before = len(frame)
    frame = frame.drop_duplicates(["username", "slug"], keep="last")
    dropped += before - len(frame)
    if dropped:
        logger.warning("%s: dropped %d invalid or repeated rows", ratings_path, dropped)
    if frame.empty:
        raise DatasetError(ratings_path, "holds no valid rating")

    user_codes, user_names = pd.factorize(frame["username"], sort=False)
    order = np.argsort(user_codes, kind="stable")
    frame = frame.iloc[order]
    user_index = user_codes[order].astype(np.int64)
    film_index, film_slugs = pd.factorize(frame["slug"], sort=False)
    rating_values = frame["rating"].to_numpy(np.int64)

    films = pd.DataFrame({"slug": np.asarray(film_slugs, dtype=object)})
    films["title"] = films["slug"]
    films["year"] = ""
    films["genres"] = ""
    if movies_path is not None:
        movies = _read_source_csv(Path(movies_path), ("movie_id",)).drop_duplicates("movie_id")
        movies = movies.set_index("movie_id")
        matched = movies.reindex(films["slug"])
        if "movie_title" in movies:
            titles = matched["movie_title"].fillna("").to_numpy(dtype=object)
            films["title"] = np.where(titles != "", titles, films["slug"].to_numpy(dtype=object))
        if "year_released" in movies:
            years = pd.to_numeric(matched["year_released"], errors="coerce")
            films["year"] = years.map(lambda year: "" if pd.isna(year) else str(int(year))).to_numpy()
        if "genres" in movies:
            films["genres"] = matched["genres"].fillna("").to_numpy(dtype=object)
    display_names = pd.Series("", index=user_names, dtype=object)
    if users_path is not None:
        people = _read_source_csv(Path(users_path), ("username",))
        if "display_name" in people:
            names = people.assign(username=people["username"].str.lower()).drop_duplicates(
                "username").set_index("username")["display_name"]
            display_names = names.reindex(user_names).fillna("")

    n_per_user = np.bincount(user_index, minlength=len(user_names))
    safe_titles = films["title"].astype(str).map(spreadsheet_safe)  # once per film
    translated = pd.DataFrame({
        "username": np.asarray(user_names, dtype=object)[user_index],
        "title": safe_titles.to_numpy(dtype=object)[film_index],
        "year": films["year"].to_numpy(dtype=object)[film_index],
        "slug": films["slug"].to_numpy(dtype=object)[film_index],
        "stars": _STARS_TEXT[rating_values],
        "rating": rating_values,
        "liked": "",
    })
    translated["film_url"] = "https://letterboxd.com/film/" + translated["slug"] + "/"
    tables: dict[str, pd.DataFrame] = {
        config.RATINGS_FILE: pd.DataFrame({"user_id": user_index, "film_id": film_index,
                                           "rating": rating_values}),
        config.UNRATED_FILE: pd.DataFrame(columns=list(UNRATED_HEADER)),
        config.USER_MAPPINGS_FILE: pd.DataFrame({
            "user_id": np.arange(len(user_names)), "username": np.asarray(user_names, dtype=object),
            "display_name": display_names.astype(str).to_numpy()}),
        config.FILM_MAPPINGS_FILE: pd.DataFrame({
            "film_id": np.arange(len(films)), "slug": films["slug"], "lid": "",
            "letterboxd_id": "", "title": films["title"], "year": films["year"],
            "genres": films["genres"]}),
        config.USER_UPDATES_FILE: pd.DataFrame({
            "user_id": np.arange(len(user_names)), "username": np.asarray(user_names, dtype=object),
            "last_scraped": _format_time(now), "status": ScrapeStatus.OK.value,
            "n_ratings": n_per_user, "n_unrated": 0}),
        config.TRANSLATED_FILE: translated,
    }
    staging = _fresh_staging(data_dir)
    try:
        committed = {}
        for name, table in tables.items():
            path = staging / name
            with open(path, "w", encoding="utf-8", newline="") as handle:
                handle.write(_header_bytes(name).decode("utf-8"))  # never quoted: readers check
                table.to_csv(handle, index=False, header=False, lineterminator="\n",
                             columns=list(HEADERS[name]), quoting=_csv_quoting(table))
                handle.flush()
                os.fsync(handle.fileno())
            committed[name] = path.stat().st_size
        _commit_staging(staging, _State(committed=committed, batches=1))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    archived = _install(data_dir, now)
    return ImportSummary(ratings=len(rating_values), users=len(user_names), films=len(films),
                         rows_dropped=dropped, archived=archived)
