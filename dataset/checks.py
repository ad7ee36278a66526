"""Reading dataset files back, refusing whatever a hand edit or a torn write broke.

Every reader checks the header first and names the file and line of the first bad
value, so a broken dataset gives one clear error instead of odd numbers later.
`committed` (bytes) limits a read to what the state file says was committed: rows
past it belong to a batch a running (or killed) builder has not committed.
"""
from __future__ import annotations

import io
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

import numpy as np
import pandas as pd

from dataset.layout import (MAX_INTEGER_DIGITS, TRANSLATED_HEADER, UPDATES_HEADER,
                            USER_MAPPINGS_FILE, USERS_HEADER, ScrapeStatus, header_bytes,
                            parse_time)
from errors import DatasetError
from films.metadata import LAST_YEAR
from films.titles import FIRST_FILM_YEAR
from names import MAX_SLUG_LENGTH, USERNAME_PATTERN
from safe_files import MAX_CELL_CHARS


def check_header(path: Path, header: Sequence[str]) -> None:
    if not path.is_file():  # a FIFO or a device is never opened: it could hang or never end
        exists = path.exists() or path.is_symlink()
        raise DatasetError(path, "is not a regular file" if exists else "file is missing")
    with open(path, "rb") as handle:
        first_line = handle.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    if first_line != ",".join(header):
        raise DatasetError(path, f"wrong header {first_line!r}, expected {','.join(header)!r}", 1)


def holds_only_header(path: Path) -> bool:
    header = header_bytes(path.name)
    return path.stat().st_size == len(header) and path.read_bytes() == header


def _line_at(path: Path, offset: int) -> int:
    """Line number (1-based) that byte `offset` of a file falls on."""
    with open(path, "rb") as handle:
        return handle.read(offset).count(b"\n") + 1


def check_committed_file(path: Path, header: Sequence[str], committed: int) -> None:
    """The file exists, has the right header and still holds every committed byte."""
    check_header(path, header)
    size = path.stat().st_size
    if size < committed:
        raise DatasetError(path, f"is {size:,} bytes but {committed:,} were committed: "
                           "file truncated", _line_at(path, size))


def check_commit_point(path: Path, committed: int) -> None:
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


def _committed_lines_end(handle: BinaryIO, committed: int) -> int:
    """Where the line holding the last committed byte ends.

    That is `committed` itself unless the file was edited since (check_commit_point says
    so, after the rows): reading whole lines lets a row's own error speak first.
    """
    if committed == 0:
        return 0
    handle.seek(committed - 1)
    end = committed - 1
    while chunk := handle.read(1 << 16):
        newline = chunk.find(b"\n")
        if newline >= 0:
            return end + newline + 1
        end += len(chunk)
    return end


def committed_part(path: Path, committed: int | None) -> Path | io.BytesIO:
    """The file, or only its committed lines: rows past them belong to an unfinished batch."""
    if committed is None:
        return path
    with open(path, "rb") as handle:
        end = _committed_lines_end(handle, committed)
        handle.seek(0)
        return io.BytesIO(handle.read(end))


@contextmanager
def committed_reader(path: Path, committed: int) -> Iterator[BinaryIO]:
    """The file's committed lines as a stream, without copying them."""
    with open(path, "rb") as handle:
        end = _committed_lines_end(handle, committed)
        handle.seek(0)
        yield io.BufferedReader(_Prefix(handle, end))


class _Prefix(io.RawIOBase):
    """The first bytes of an open file, read in place."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._handle = handle
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._handle.readinto(memoryview(buffer).cast("B")[:self._left])
        self._left -= count
        return count


def check_cell_sizes(path: Path, frame: pd.DataFrame) -> None:
    """No cell of a table read as text is longer than MAX_CELL_CHARS (the csv module's
    own limit, which pandas does not apply): a hand-made cell of megabytes is refused."""
    for column in frame.columns:
        if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
            long = (frame[column].str.len() > MAX_CELL_CHARS).to_numpy(dtype=bool)
            if long.any():
                raise DatasetError(path, f"a {column} cell is longer than {MAX_CELL_CHARS:,} "
                                   "characters", first_bad_line(long))


def read_table(path: Path, header: Sequence[str], nrows: int | None = None,
                committed: int | None = None) -> pd.DataFrame:
    """Read a CSV as strings after checking its header; errors name the file."""
    check_header(path, header)
    try:
        frame = pd.read_csv(committed_part(path, committed), dtype=str, keep_default_na=False,
                            na_filter=False, nrows=nrows, encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise DatasetError(path, f"not a valid CSV file ({error})") from None
    check_cell_sizes(path, frame)
    if nrows is not None and len(frame) < nrows:
        raise DatasetError(path, f"has {len(frame)} rows, {nrows} were committed: file truncated",
                           len(frame) + 2)
    return frame


def first_bad_line(mask: np.ndarray) -> int:
    """File line number (header is line 1) of the first row flagged in `mask`."""
    return int(np.flatnonzero(mask)[0]) + 2


def integer_column(path: Path, frame: pd.DataFrame, column: str, *,
                    high: int | None = None) -> np.ndarray:
    """A column of non-negative integers written as plain digits, as int64.

    "inf", "1e3" or "-1" are errors here, in the file that holds them, rather than
    odd numbers that surface later against another file. ASCII digits only (`\\d`
    would pass other scripts' digits), at most 18, so every value fits int64 exactly.
    """
    text = frame[column]
    digits = text.str.fullmatch(rf"[0-9]{{1,{MAX_INTEGER_DIGITS}}}").to_numpy(dtype=bool)
    if not digits.all():
        line = first_bad_line(~digits)
        shown = text.iloc[line - 2]
        if shown.isdigit() and shown.isascii():
            raise DatasetError(path, f"{column} {shown[:40]} is out of range (at most "
                               f"{MAX_INTEGER_DIGITS} digits)", line)
        raise DatasetError(path, f"{column} is not an integer (plain digits expected): "
                           f"{shown[:40]!r}", line)
    numbers = pd.to_numeric(text).to_numpy(dtype=np.int64)
    if high is not None and (numbers > high).any():
        line = first_bad_line(numbers > high)
        raise DatasetError(path, f"{column} {text.iloc[line - 2]!r} is out of range", line)
    return numbers


def check_dense_ids(path: Path, ids: np.ndarray, column: str) -> None:
    wrong = ids != np.arange(len(ids))
    if wrong.any():
        line = first_bad_line(wrong)
        raise DatasetError(path, f"{column} {ids[line - 2]} breaks the sequence 0, 1, 2, ...", line)


def check_names(path: Path, names: pd.Series, pattern: str, what: str) -> None:
    invalid = ~names.str.fullmatch(pattern).to_numpy(dtype=bool)
    if what == "slug":
        invalid |= (names.str.len() > MAX_SLUG_LENGTH).to_numpy()
    if invalid.any():
        line = first_bad_line(invalid)
        raise DatasetError(path, f"invalid {what} {names.iloc[line - 2]!r}", line)
    duplicated = names.duplicated().to_numpy()
    if duplicated.any():
        line = first_bad_line(duplicated)
        raise DatasetError(path, f"duplicate {what} {names.iloc[line - 2]!r}", line)


def read_user_mappings(data_dir: Path, committed: int | None = None) -> pd.DataFrame:
    path = data_dir / USER_MAPPINGS_FILE
    users = read_table(path, USERS_HEADER, committed=committed)
    check_dense_ids(path, integer_column(path, users, "user_id"), "user_id")
    check_names(path, users["username"], USERNAME_PATTERN, "username")
    return users


def film_year(year: int | None) -> int | None:
    """The year, or None where it cannot be a film's (a page or a source got it wrong):
    the builder writes no year the film table's checks would refuse."""
    return year if year is not None and FIRST_FILM_YEAR <= year <= LAST_YEAR else None


@dataclass
class UpdateLog:
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


def read_update_log(path: Path, usernames: Sequence[str],
                    committed: int | None = None) -> UpdateLog:
    """The log, checked against the user mappings (`usernames`, by user id).

    A log row naming someone other than its user id's user is refused, not skipped:
    the log indexes the ratings blocks, so dropping a row would shift every later
    block onto the wrong user, and a refresh would send its name to the site.
    """
    frame = read_table(path, UPDATES_HEADER, committed=committed)
    user_ids = integer_column(path, frame, "user_id", high=max(len(usernames) - 1, 0))
    if not usernames and len(frame):
        raise DatasetError(path, "names a user that is not in the user mappings", 2)
    logged = frame["username"]
    invalid = ~logged.str.fullmatch(USERNAME_PATTERN).to_numpy(dtype=bool)
    if invalid.any():
        line = first_bad_line(invalid)
        raise DatasetError(path, f"invalid username {logged.iloc[line - 2]!r}", line)
    mapped = np.asarray(usernames, dtype=object)[user_ids]
    mismatch = logged.to_numpy(dtype=object) != mapped
    if mismatch.any():
        line = first_bad_line(mismatch)
        raise DatasetError(path, f"username {logged.iloc[line - 2]!r} is not user_id "
                           f"{user_ids[line - 2]}'s, {mapped[line - 2]!r} in "
                           f"{USER_MAPPINGS_FILE}", line)
    statuses = []
    for position, text in enumerate(frame["status"].tolist()):
        try:
            statuses.append(ScrapeStatus(text))
        except ValueError:
            raise DatasetError(path, f"unknown status {text!r}", position + 2) from None
    for position, text in enumerate(frame["last_scraped"].tolist()):
        try:
            parse_time(text)
        except ValueError:
            raise DatasetError(path, f"last_scraped {text!r} is not YYYY-MM-DDTHH:MM:SSZ",
                               position + 2) from None
    return UpdateLog(
        user_ids=user_ids,
        usernames=logged.tolist(),
        times=frame["last_scraped"].tolist(),
        statuses=statuses,
        n_ratings=integer_column(path, frame, "n_ratings"),
        n_unrated=integer_column(path, frame, "n_unrated"),
    )


def read_block_file(path: Path, header: Sequence[str], nrows: int, n_users: int,
                    n_films: int, *, committed: int) -> pd.DataFrame:
    """Read the committed rows of an integer block file, checking every value.

    The update log says how many rows its blocks hold (`nrows`), and the state file how
    many bytes are committed: both must agree. Rows past the last block but inside the
    committed bytes were added by hand (with the state edited to match); keeping them
    would shift every block appended later onto the wrong user.
    """
    check_header(path, header)
    try:
        with committed_reader(path, committed) as source:
            frame = pd.read_csv(source, dtype=np.int64, nrows=nrows + 1, engine="c")
    except (ValueError, OverflowError, pd.errors.ParserError):
        frame = read_table(path, header, committed=committed).iloc[:nrows + 1]
        for column in header:
            integer_column(path, frame, column)
        raise DatasetError(path, "is not a valid CSV file") from None
    if len(frame) < nrows:
        raise DatasetError(path, f"has {len(frame)} rows, {nrows} were committed: file truncated",
                           len(frame) + 2)
    if len(frame) > nrows:
        raise DatasetError(path, "holds rows after the last block the update log records "
                           "(added by hand?); restore it from backups/ or start over with `new`",
                           nrows + 2)
    checks = [("user_id", 0, n_users - 1), ("film_id", 0, n_films - 1)]
    if "rating" in frame:
        checks.append(("rating", 1, 10))
    for column, low, high in checks:
        values = frame[column].to_numpy()
        bad = (values < low) | (values > high)
        if bad.any():
            line = first_bad_line(bad)
            what = "an unknown id" if column != "rating" else "out of range"
            raise DatasetError(path, f"{column} {values[line - 2]} is {what}", line)
    return frame


def check_line_count(path: Path, committed: int, rows: int) -> None:
    """The committed bytes of a file written one line per row hold exactly `rows` rows
    after the header (the translated file, which no reader parses)."""
    lines = 0
    with committed_reader(path, committed) as source:
        while chunk := source.read(1 << 20):
            lines += chunk.count(b"\n")
    if lines - 1 != rows:
        raise DatasetError(path, f"holds {lines - 1:,} rows where the update log records "
                           f"{rows:,}: edited by hand? restore it from backups/ or start over "
                           "with `new`", min(lines, rows + 1) + 1)


def read_translated_likes(path: Path, slugs: np.ndarray) -> pd.arrays.BooleanArray:
    """The `liked` cell of the translated file's first len(`slugs`) rows, which must name
    those films row for row (the raw ratings file's, which it is written beside).

    A like nobody recorded (an imported dataset) is missing, not False.
    """
    check_header(path, TRANSLATED_HEADER)
    try:
        frame = pd.read_csv(path, usecols=["slug", "liked"], dtype=str, keep_default_na=False,
                            na_filter=False, nrows=len(slugs), encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise DatasetError(path, f"not a valid CSV file ({error})") from None
    if len(frame) < len(slugs):
        raise DatasetError(path, f"has {len(frame)} rows, {len(slugs)} were committed: file "
                           "truncated", len(frame) + 2)
    mismatch = frame["slug"].to_numpy(dtype=object) != slugs
    if mismatch.any():
        line = first_bad_line(mismatch)
        raise DatasetError(path, f"slug {frame['slug'].iloc[line - 2]!r} is not the film of the "
                           "same row of the raw ratings file", line)
    liked = frame["liked"].to_numpy(dtype=object)
    true, false = liked == "true", liked == "false"
    invalid = ~(true | false | (liked == ""))
    if invalid.any():
        line = first_bad_line(invalid)
        raise DatasetError(path, f"liked {liked[line - 2]!r} is not true, false or empty", line)
    return pd.arrays.BooleanArray(true, ~(true | false))
