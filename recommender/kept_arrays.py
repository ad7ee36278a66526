"""Figures derived from a fitted model, kept beside it in `model/` so that a later run
reads them instead of computing them again (the community's figures, the taste
match's calibration).

Each file is a plain .npz (read with allow_pickle=False) holding the fingerprint of
the dataset the model was fitted on: a file of another dataset, or one that cannot be
read, gives None and is computed again, never trusted. Whether the arrays fit the
model is for the caller to check. Keeping them is a convenience: a file that cannot be
written is a warning, not an error.
"""
from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path

import numpy as np

from errors import DiskFullError, UnusableFileError
from safe_files import write_atomically

logger = logging.getLogger(__name__)


def read_kept_arrays(path: Path, fingerprint: str, what: str) -> dict[str, np.ndarray] | None:
    """The arrays kept in `path` for the dataset `fingerprint`, None when there are none
    (missing, another dataset's, unreadable). `what` names them in the log."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["fingerprint"]) != fingerprint:
                return None
            return {name: stored[name] for name in stored.files if name != "fingerprint"}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        logger.info("computing %s again: %s is unreadable (%s)", what, path, error)
        return None


def keep_arrays(path: Path, fingerprint: str, arrays: dict[str, np.ndarray],
                what: str) -> None:
    """Replace `path` atomically with `arrays` and the dataset's fingerprint."""
    buffer = io.BytesIO()
    np.savez(buffer, fingerprint=np.array(fingerprint), **arrays)
    try:
        write_atomically(path, buffer.getvalue())
    except (OSError, UnusableFileError, DiskFullError) as error:
        logger.warning("could not keep %s in %s (%s): the next run computes them again",
                       what, path.parent, error)
