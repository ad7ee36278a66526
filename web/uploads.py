"""An uploaded export ZIP, kept only in a private temporary folder while it is read.

The request's size is capped before this runs (Flask's MAX_CONTENT_LENGTH); the file is
then written, counted again, into a folder of its own that only this user can open,
read by the CLI's own export reader (letterboxd/export_reader.py, with its limits on
sizes, entries and paths) and removed with its folder once read.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from errors import BadInputError, DiskFullError
from safe_files import is_disk_full

DEFAULT_NAME = "export.zip"
MAX_NAME_LENGTH = 120
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SavedUpload:
    folder: Path  # made for this upload alone, removed by `remove`
    path: Path

    def shown(self, text: str) -> str:
        """A message about the upload without the temporary folder's path: the person
        knows the file by its name."""
        return text.replace(f"{self.folder}{os.sep}", "")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def megabytes(size: int) -> str:
    return f"{size / (1 << 20):.0f} MB" if size >= 1 << 20 else f"{size / 1024:.0f} KB"


def save_upload(upload: FileStorage, max_bytes: int) -> SavedUpload:
    """Write the upload into a new private temporary folder, at most `max_bytes`."""
    name = (secure_filename(upload.filename or "") or DEFAULT_NAME)[-MAX_NAME_LENGTH:]
    folder = Path(tempfile.mkdtemp(prefix="letterboxd-upload-"))  # mode 0700
    saved = SavedUpload(folder, folder / name)
    try:
        written = 0
        with open(saved.path, "xb") as target:  # a new file: never through a link
            while chunk := upload.stream.read(_CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise BadInputError(f"{name} is larger than {megabytes(max_bytes)}; a "
                                        "Letterboxd export ZIP is a few MB")
                target.write(chunk)
    except BaseException as error:
        saved.remove()
        if isinstance(error, OSError) and is_disk_full(error):
            raise DiskFullError(f"{name} in the temporary folder {folder.parent}",
                                then="send the file again") from None
        raise
    return saved
