"""Reading dataset files back, refusing whatever a hand edit or a torn write broke.

Every reader checks the header first and names the file and line of the first bad
value, so a broken dataset gives one clear error instead of odd numbers later.
`committed` (bytes) limits a read to what the state file says was committed: rows
past it belong to a batch a running (or killed) builder has not committed.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from dataset.layout import (UPDATES_HEADER,
                            USER_MAPPINGS_FILE, USERS_HEADER, ScrapeStatus, header_bytes,
                            parse_time)
from errors import DatasetError
from names import MAX_SLUG_LENGTH, USERNAME_PATTERN


def check_header(path: Path, header: Sequence[str]) -> None:
    if not path.is_file():
        raise DatasetError(path, "file is missing")
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


def committed_part(path: Path, committed: int | None) -> Path | io.BytesIO:
    """The file, or only its committed bytes: rows past them belong to an unfinished batch."""
    if committed is None:
        return path
    with open(path, "rb") as handle:
        return io.BytesIO(handle.read(committed))


def read_table(path: Path, header: Sequence[str], nrows: int | None = None,
                committed: int | None = None) -> pd.DataFrame:
    """Read a CSV as strings after checking its header; errors name the file."""
    check_header(path, header)
    try:
        frame = pd.read_csv(committed_part(path, committed), dtype=str, keep_default_na=False,
                            na_filter=False, nrows=nrows, encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise DatasetError(path, f"not a valid CSV file ({error})") from None
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
    digits = text.str.fullmatch(r"[0-9]{1,18}").to_numpy(dtype=bool)
    if not digits.all():
        line = first_bad_line(~digits)
        raise DatasetError(path, f"{column} is not an integer (plain digits expected): "
                           f"{text.iloc[line - 2]!r}", line)
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
                    n_films: int) -> pd.DataFrame:
    """Read the committed rows of an integer block file, checking every value."""
    check_header(path, header)
    try:
        frame = pd.read_csv(path, dtype=np.int64, nrows=nrows, engine="c")
    except (ValueError, pd.errors.ParserError):
        frame = read_table(path, header, nrows)
        for column in header:
            integer_column(path, frame, column)
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
            line = first_bad_line(bad)
            what = "an unknown id" if column != "rating" else "out of range"
            raise DatasetError(path, f"{column} {values[line - 2]} is {what}", line)
    return frame
