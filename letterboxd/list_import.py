"""The CSV Letterboxd's list import accepts (https://letterboxd.com/list/new/).

`LetterboxdURI` is the film's boxd.it link when known, else its film page; `Title`
and `Year` let Letterboxd match a film whose link it no longer knows; `Review`
fills the list's notes.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Sequence

from safe_files import spreadsheet_safe

LIST_IMPORT_HEADER = ("LetterboxdURI", "Title", "Year", "Review")


@dataclass(frozen=True)
class ListEntry:
    uri: str
    title: str
    year: int | None
    review: str


def list_import_csv(entries: Sequence[ListEntry]) -> str:
    """CSV text Letterboxd's list importer accepts, safe to open in a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LIST_IMPORT_HEADER)
    for entry in entries:
        writer.writerow((entry.uri, spreadsheet_safe(entry.title),
                         "" if entry.year is None else entry.year,
                         spreadsheet_safe(entry.review)))
    return buffer.getvalue()
