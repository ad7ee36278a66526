"""Large cache files hashed in full once, then trusted while they stay the same file.

Hashing the model of 100M ratings (447 MB) costs 0.3 s of CPU, and checking that
every value is finite 0.1 s more: on every run, more than the rest of a cached
recommendation. So once a file has been hashed and its content checked, a stamp
beside it records what the file system says of it (device, inode, size, and the
modification and change times in nanoseconds) with the hash it matched. A later run
that finds the file as stamped skips the hash; any other answer means the full check.

What a stamp catches, and what it does not: every write through the file system
moves the change time (ctime), which no program can set back, and a replacement or a
copy is another inode; so truncation, a copy over the file, an edit, a crash between
two writes and a refit are all seen. A stamp does not see bytes that change beneath
the file system: a failing disk, a write to the raw device, or a program writing
through a memory map it opened before the check. Deleting the stamp (or the model
folder) brings back the full check on the next run. A file changed less than
`SETTLED_SECONDS` before it was checked is not stamped: a write within the same tick
of the file system's clock could keep its times.
"""
from __future__ import annotations

import json
import logging
import mmap
import os
import time
from pathlib import Path
from typing import NamedTuple

from errors import DiskFullError, ModelFileError, UnusableFileError
from safe_files import open_regular_file, parse_json_limited, read_regular_file, write_atomically

logger = logging.getLogger(__name__)

STAMP_SUFFIX = ".checked.json"
SETTLED_SECONDS = 2.0
_MAX_STAMP_BYTES = 4096


class FileIdentity(NamedTuple):
    """What the file system says of a file; any write or replacement changes it."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, stat: os.stat_result) -> FileIdentity:
        return cls(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class MappedFile(NamedTuple):
    """A regular file mapped read-only, and whether its stamp vouches for its content."""

    payload: mmap.mmap
    identity: FileIdentity
    stamped: bool


def stamp_path(path: Path) -> Path:
    return path.with_name(path.name + STAMP_SUFFIX)


def map_file(path: Path, sha256: str) -> MappedFile:
    """`path` mapped read-only, with whether a stamp says it was checked whole when it
    hashed to `sha256` and has not changed since. ModelFileError if it cannot be mapped."""
    try:
        with open_regular_file(path) as file:
            identity = FileIdentity.of(os.fstat(file.fileno()))
            payload = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    # ValueError: an empty file cannot be mapped.
    except (OSError, ValueError, UnusableFileError) as error:
        raise ModelFileError(f"cannot read {path} ({getattr(error, 'strerror', None) or error})"
                             ) from None
    return MappedFile(payload, identity, _stamp_matches(path, identity, sha256))


def _stamp_matches(path: Path, identity: FileIdentity, sha256: str) -> bool:
    try:
        stamp = parse_json_limited(read_regular_file(stamp_path(path), _MAX_STAMP_BYTES),
                                   max_depth=2)
    except (OSError, ValueError, UnusableFileError):
        return False
    return (isinstance(stamp, dict) and stamp.get("sha256") == sha256
            and stamp.get("identity") == list(identity))


def remember_checked(path: Path, identity: FileIdentity, sha256: str) -> None:
    """Stamp a file that hashed to `sha256` and passed every check of its content, unless
    it changed too recently to be told apart by its times. Best effort: a folder that
    cannot hold the stamp only means the full check again next time."""
    if time.time_ns() - max(identity.mtime_ns, identity.ctime_ns) < SETTLED_SECONDS * 1e9:
        return
    stamp = {"sha256": sha256, "identity": list(identity)}
    try:
        write_atomically(stamp_path(path), json.dumps(stamp).encode("utf-8"))
    except (OSError, UnusableFileError, DiskFullError) as error:
        logger.debug("could not stamp %s as checked (%s)", path, error)
