"""Who may write a dataset folder, and how a whole dataset moves in or out of it.

One builder at a time holds the folder's lock. A dataset written whole (`new`,
`import`) is staged in `.incoming/` and moved in state file last, so a kill at any
moment leaves either the old dataset or the new one; the old one is archived,
never deleted.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator, Sequence

from dataset.layout import (ARCHIVE_DIR, BACKUP_DIR, COMPACTED_FILES, HEADERS, MODEL_DIR,
                            STAGING_DIR, STATE_FILE, DatasetState, archive_stamp, utc_now)
from errors import BadInputError
from safe_files import check_regular_entries, fsync_directory, write_atomically

logger = logging.getLogger(__name__)


def dataset_exists(data_dir: Path) -> bool:
    data_dir = Path(data_dir)
    return (data_dir / STATE_FILE).exists() or any(
        (data_dir / name).exists() for name in HEADERS) or install_pending(data_dir)


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
        # Nothing is written through a symlink, or over a FIFO or a device.
        check_regular_entries(data_dir, files=(STATE_FILE, *HEADERS, *COMPACTED_FILES),
                              folders=(BACKUP_DIR, MODEL_DIR, STAGING_DIR, ARCHIVE_DIR))
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
    finish_interrupted_install(data_dir)
    names = [STATE_FILE, *HEADERS, *COMPACTED_FILES, BACKUP_DIR, MODEL_DIR]
    return _archive(data_dir, [name for name in names if (data_dir / name).exists()], now)


def _archive(data_dir: Path, names: Sequence[str], now: datetime | None) -> Path | None:
    """Move `names` into a new archive/<UTC time>/ folder."""
    if not names:
        return None
    stamp = archive_stamp(now or utc_now())
    target = data_dir / ARCHIVE_DIR / stamp
    suffix = 1
    while target.exists():
        target = data_dir / ARCHIVE_DIR / f"{stamp}_{suffix}"
        suffix += 1
    target.mkdir(parents=True)
    for name in names:
        os.replace(data_dir / name, target / name)
    fsync_directory(target)
    fsync_directory(data_dir)
    logger.debug("archived the previous dataset to %s", target)
    return target


# --- installing a dataset written whole (`new`, `import`) ----------------------

def install_pending(data_dir: Path) -> bool:
    """A complete dataset waits in the staging folder: an install was cut short."""
    return (data_dir / STAGING_DIR / STATE_FILE).exists()


def fresh_staging(data_dir: Path) -> Path:
    """An empty staging folder inside `data_dir`, so the moves in stay on one filesystem."""
    staging = data_dir / STAGING_DIR
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def commit_staging(staging: Path, state: DatasetState) -> None:
    """The staged dataset (its files written durably) is complete once its state file exists."""
    fsync_directory(staging)
    write_atomically(staging / STATE_FILE, state.to_bytes())


def install_staged(data_dir: Path, now: datetime | None = None) -> Path | None:
    """Archive what the staged dataset replaces, then move it in, state file last.

    Every step can be repeated after a kill: a name still in the staging folder has
    not been moved in yet, so a file of that name in `data_dir` is the old dataset's
    (a kill while archiving splits the old dataset over two archive folders, nothing
    more). Returns the archive folder, if there was anything to archive.
    """
    staging = data_dir / STAGING_DIR
    old = [name for name in (STATE_FILE, *HEADERS)
           if (data_dir / name).exists() and (staging / name).exists()]
    old += [name for name in (*COMPACTED_FILES, BACKUP_DIR, MODEL_DIR)
            if (data_dir / name).exists()]
    archived = _archive(data_dir, old, now)
    for name in HEADERS:
        if (staging / name).exists():
            os.replace(staging / name, data_dir / name)
    fsync_directory(data_dir)
    # The commit point: from this rename on, the folder holds the new dataset.
    os.replace(staging / STATE_FILE, data_dir / STATE_FILE)
    fsync_directory(data_dir)
    shutil.rmtree(staging)
    return archived


def finish_interrupted_install(data_dir: Path) -> None:
    """Complete an install a kill cut short, or drop a staged dataset never finished.

    An unfinished one (no state file yet) is only a copy being written: the source it
    came from is still there and the folder's dataset was not touched.
    """
    staging = Path(data_dir) / STAGING_DIR
    if not staging.is_dir():
        return
    if install_pending(Path(data_dir)):
        logger.warning("finishing the installation of a new dataset that was interrupted")
        install_staged(Path(data_dir))
    else:
        shutil.rmtree(staging)
        logger.info("removed the partial copy of an interrupted `new` or `import`")
