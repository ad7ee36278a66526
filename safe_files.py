"""Safe files: crash-safe replacement and appends, files a person may have edited read
within limits, and cells a spreadsheet will not run.

A file is either replaced whole (written to a temporary sibling, fsynced, then
renamed over the target) or grown by appends that are fsynced before the
dataset's state file records their new length. Anything past a recorded length
is the torn tail of an interrupted run and is cut off on the next open.

Only regular files are written: a path that is a symlink, a device, a FIFO or a
folder is refused (UnusableFileError), never written through or renamed over. A
full disk is reported as DiskFullError naming the file, which the commit points
above make harmless.
"""
from __future__ import annotations

import errno
import json
import os
import re
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

from errors import DiskFullError, UnusableFileError

TEMP_SUFFIX = ".tmp"
# Read once, at import (setting and restoring it is not thread-safe): mkstemp creates
# files 0600, and a replaced file should get the permissions `open` would have given.
_UMASK = os.umask(0o022)
os.umask(_UMASK)

# The longest CSV cell any reader accepts: the csv module's own default limit, applied to
# what pandas reads too, so that a hand-made cell of megabytes is an error, not a load.
MAX_CELL_CHARS = 128 * 1024
# Out of space, out of quota, or over the process's file size limit: the same remedy.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# Never wait on a FIFO, never follow a symlink in the last component.
_SAFE_OPEN_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS


@contextmanager
def reporting_disk_full(path: Path) -> Iterator[None]:
    """Turn running out of space while writing `path` into DiskFullError naming it."""
    try:
        yield
    except OSError as error:
        if is_disk_full(error):
            raise DiskFullError(path) from error
        raise


def _kind(mode: int) -> str | None:
    """What a file that is not a regular one is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_output_target(path: Path) -> None:
    """Refuse a path that exists and is not a regular file (it is never replaced), or
    whose folder does not exist."""
    try:
        kind = _kind(os.lstat(path).st_mode)
    except FileNotFoundError:
        if not Path(path).parent.is_dir():
            raise UnusableFileError(path, f"cannot be written: the folder {Path(path).parent} "
                                    "does not exist") from None
        return
    if kind is not None:
        raise UnusableFileError(path, f"is {kind}, not a regular file: refusing to write "
                                "over it")


def check_regular_entries(folder: Path, files: Sequence[str] = (),
                          folders: Sequence[str] = ()) -> None:
    """The named entries of `folder` that exist are regular files, or real folders."""
    for names, wanted, expected in ((files, stat.S_ISREG, "file"),
                                    (folders, stat.S_ISDIR, "folder")):
        for name in names:
            try:
                mode = os.lstat(folder / name).st_mode
            except FileNotFoundError:
                continue
            if not wanted(mode) or stat.S_ISLNK(mode):
                raise UnusableFileError(folder / name, f"is {_kind(mode) or 'a file'}, where "
                                        f"the dataset keeps a {expected}; move it away")


def _open_regular(path: Path, flags: int, mode: int = 0o666, *,
                  follow_symlinks: bool = False) -> int:
    """A descriptor of the regular file at `path`, opened without following a symlink
    (unless asked) or waiting on a FIFO; anything else is refused before a byte is read
    or written."""
    safe = _SAFE_OPEN_FLAGS & ~os.O_NOFOLLOW if follow_symlinks else _SAFE_OPEN_FLAGS
    try:
        fd = os.open(path, flags | safe, mode)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.ENODEV):
            try:
                kind = _kind(os.lstat(path).st_mode) or "not a regular file"
            except OSError:
                kind = "not a regular file"
            raise UnusableFileError(path, f"is {kind}; only regular files are read "
                                    "or written") from None
        raise
    kind = _kind(os.fstat(fd).st_mode)
    if kind is not None:
        os.close(fd)
        raise UnusableFileError(path, f"is {kind}; only regular files are read or written")
    os.set_blocking(fd, True)
    return fd


def open_regular_file(path: Path, *, follow_symlinks: bool = False) -> BinaryIO:
    """`path` opened for reading if it is a regular file; a symlink (unless followed), a
    FIFO, a device or a folder is UnusableFileError (a FIFO is refused without waiting).

    Follow a symlink only for a path the person named themselves, never for one found
    inside something they handed over."""
    return os.fdopen(_open_regular(path, os.O_RDONLY, follow_symlinks=follow_symlinks), "rb")


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes` (see open_regular_file)."""
    with open_regular_file(path) as handle:
        if os.fstat(handle.fileno()).st_size > max_bytes:
            raise UnusableFileError(path, f"is larger than the {max_bytes:,} bytes it may hold")
        data = handle.read(max_bytes + 1)  # it may have grown since
    if len(data) > max_bytes:
        raise UnusableFileError(path, f"is larger than the {max_bytes:,} bytes it may hold")
    return data


def parse_json_limited(data: bytes, max_depth: int) -> object:
    """JSON from a file a person may edit: ValueError (with its reason) for text that is
    not UTF-8 JSON, NaN or Infinity, or containers nested deeper than `max_depth`."""
    def refuse_constant(name: str) -> object:
        raise ValueError(f"{name} is not a number this file may hold")

    try:
        value = json.loads(data.decode("utf-8"), parse_constant=refuse_constant)
    except RecursionError:
        raise ValueError(f"nested more than {max_depth} levels deep") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 ({error.reason})") from None
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = (item.values() if isinstance(item, dict)
                    else item if isinstance(item, list) else ())
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= max_depth:
                    raise ValueError(f"nested more than {max_depth} levels deep")
                pending.append((child, depth + 1))
    return value


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in `directory` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_for_writing(path: Path) -> BinaryIO:
    """`path` created or emptied, for a writer that streams: never through a symlink or
    into a device or a FIFO. Wrap the writing in `reporting_disk_full`."""
    return os.fdopen(_open_regular(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb")


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A handle whose content replaces `path` when the block ends without an error; on an
    error the temporary file is removed and `path` is left as it was.

    A path that is not a regular file is refused, checked first and again just before
    the rename. The rename itself never follows a symlink: it replaces the name. So
    the only race left is someone who may already create names in that folder putting
    a special file there between that last check and the rename: we would replace
    their name, never write into a device or through a link.
    """
    path = Path(path)
    check_output_target(path)
    with reporting_disk_full(path):
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX,
                                         dir=path.parent)
        try:
            try:  # a replacement keeps the file's mode; a new file gets what `open` gives
                mode = stat.S_IMODE(os.lstat(path).st_mode)
            except FileNotFoundError:
                mode = 0o666 & ~_UMASK
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            check_output_target(path)
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        fsync_directory(path.parent)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data`; a reader sees the old file or the new one, never half."""
    with atomic_writer(path) as handle:
        handle.write(data)


def write_durably(path: Path, data: bytes) -> None:
    """Create or overwrite `path` and fsync it (for files renamed into place later)."""
    with reporting_disk_full(path):
        with open_for_writing(path) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def append_durably(path: Path, data: bytes) -> int:
    """Append `data`, fsync, and return the file's new size."""
    with reporting_disk_full(path):
        with os.fdopen(_open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT),
                       "ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            return handle.tell()


def truncate_to(path: Path, size: int) -> None:
    with reporting_disk_full(path):
        with os.fdopen(_open_regular(path, os.O_RDWR), "r+b") as handle:
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
