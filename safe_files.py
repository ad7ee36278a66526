"""Safe files: crash-safe replacement and appends, and cells a spreadsheet will not run.

A file is either replaced whole (written to a temporary sibling, fsynced, then
renamed over the target) or grown by appends that are fsynced before the
dataset's state file records their new length. Anything past a recorded length
is the torn tail of an interrupted run and is cut off on the next open.
"""
from __future__ import annotations

import os
import re
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

TEMP_SUFFIX = ".tmp"
# Read once, at import (setting and restoring it is not thread-safe): mkstemp creates
# files 0600, and a replaced file should get the permissions `open` would have given.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in `directory` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data`; a reader sees the old file or the new one, never half."""
    path = Path(path)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        try:  # a replacement keeps the file's mode; a new file gets what `open` gives
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_UMASK
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A handle whose content replaces `path` when the block ends without an error (as
    `write_atomically`, for files too large to hold in memory); on an error the
    temporary file is removed and `path` is left as it was."""
    path = Path(path)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def write_durably(path: Path, data: bytes) -> None:
    """Create or overwrite `path` and fsync it (for files renamed into place later)."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def append_durably(path: Path, data: bytes) -> int:
    """Append `data`, fsync, and return the file's new size."""
    with open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
        return handle.tell()


def truncate_to(path: Path, size: int) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(size)
        handle.flush()
        os.fsync(handle.fileno())


def remove_stray_temp_files(directory: Path) -> list[Path]:
    """Delete temporary files an interrupted writer left behind."""
    removed = []
    if directory.is_dir():
        for path in directory.glob(f".*{TEMP_SUFFIX}"):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


# A leading character that makes a spreadsheet treat a cell as a formula.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def spreadsheet_safe(cell: str) -> str:
    """Neutralise a cell a spreadsheet would run as a formula (for human-facing CSVs only).

    Line breaks become spaces too: compaction copies the translated file line by line.
    """
    if cell.startswith(_FORMULA_PREFIXES):
        cell = "'" + cell
    return _LINE_BREAK.sub(" ", cell)
