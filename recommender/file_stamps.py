"""Large cache files checked in full once, then trusted while they stay the same file.

Hashing the model of 100M ratings (447 MB) costs 0.3 s of CPU, and checking that
every value is finite 0.1 s more: on every run, more than the rest of a cached
recommendation. So a file is stamped when it is saved, or when a run has hashed it and
checked its content: a stamp beside it records what the file system says of it
(device, inode, size, and the modification and change times in nanoseconds) with the
hash of its content. A later run that finds the file as stamped skips the hash and the
content checks; any other answer means the full check.

What a stamp catches, and what it does not: every write through the file system
moves the change time (ctime), which no program can set back, and a replacement or a
copy is another inode; so truncation, a copy over the file, an edit, a crash between
two writes and a refit are all seen. A stamp does not see bytes that change beneath
the file system (a failing disk, a write to the raw device), a program writing through
a memory map it opened before the stamp, or a write in the same tick of the file
system's clock as the save itself (a few milliseconds; none on file systems with
fine-grained change times). Deleting the stamp brings back the full check on the next
run. A run that checked a file stamps it only when the file last changed
`SETTLED_SECONDS` before: a later write within the same tick could keep its times.
"""
from __future__ import annotations

import hashlib
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
    hashed to `sha256` and has not changed since; without such a stamp, it is hashed now.
    ModelFileError if it cannot be mapped or hashes to anything else."""
    try:
        with open_regular_file(path) as file:
            identity = FileIdentity.of(os.fstat(file.fileno()))
            payload = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    # ValueError: an empty file cannot be mapped.
    except (OSError, ValueError, UnusableFileError) as error:
        raise ModelFileError(f"cannot read {path} ({getattr(error, 'strerror', None) or error})"
                             ) from None
    stamped = _stamp_matches(path, identity, sha256)
    if not stamped and hashlib.sha256(payload).hexdigest() != sha256:
        raise ModelFileError(f"{path} is truncated, damaged or from another save")
    return MappedFile(payload, identity, stamped)


def _stamp_matches(path: Path, identity: FileIdentity, sha256: str) -> bool:
    try:
        stamp = parse_json_limited(read_regular_file(stamp_path(path), _MAX_STAMP_BYTES),
                                   max_depth=2)
    except (OSError, ValueError, UnusableFileError):
        return False
    return (isinstance(stamp, dict) and stamp.get("sha256") == sha256
            and stamp.get("identity") == list(identity))


def _write_stamp(path: Path, identity: FileIdentity, sha256: str) -> None:
    """Best effort: a folder that cannot hold the stamp only means the full check."""
    stamp = {"sha256": sha256, "identity": list(identity)}
    try:
        write_atomically(stamp_path(path), json.dumps(stamp).encode("utf-8"))
    except (OSError, UnusableFileError, DiskFullError) as error:
        logger.debug("could not stamp %s as checked (%s)", path, error)


def stamp_saved(path: Path, sha256: str) -> None:
    """Stamp a file this process has just written whole (atomically), whose content
    hashes to `sha256`."""
    try:
        identity = FileIdentity.of(os.stat(path, follow_symlinks=False))
    except OSError as error:
        logger.debug("could not stamp %s (%s)", path, error)
        return
    _write_stamp(path, identity, sha256)


def remember_checked(path: Path, identity: FileIdentity, sha256: str) -> None:
    """Stamp a file that hashed to `sha256` and passed every check of its content, unless
    it changed too recently to be told apart by its times."""
    if time.time_ns() - max(identity.mtime_ns, identity.ctime_ns) >= SETTLED_SECONDS * 1e9:
        _write_stamp(path, identity, sha256)
