"""The published ratings file (Kaggle "letterboxd-movie-ratings-data" layout), read in chunks.

A published file holds tens of millions of rows but only thousands of distinct
usernames, slugs and rating texts per chunk. So each chunk (pyarrow's streaming CSV
reader) is dictionary-encoded in C, only the distinct values are checked in Python,
and every row becomes three small numbers: a user code, a film code and twice its
rating. Memory is the names, one chunk, and 9 bytes per row; nothing is written.

The rating scale is decided from the whole file: Letterboxd's half stars 1-10 (the
Kaggle layout), or the 0.5-5 stars of an export (halves present, nothing above 5),
doubled to half stars. A file with both, or with a number on neither scale, is
refused naming a line, before anything is installed.
"""
from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from errors import DatasetError
from names import MAX_SLUG_LENGTH, SLUG_PATTERN, USERNAME_PATTERN
from safe_files import MAX_CELL_CHARS

# The ratings file's columns: username, film slug, rating.
PUBLISHED_RATINGS_COLUMNS = ("user_id", "movie_id", "rating_val")
# Bytes of the file parsed per chunk (pyarrow's block size): about 400k rows.
CHUNK_BYTES = 16 << 20
# Compression by file name, as pandas infers it for the same files.
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}


class Scale(str, enum.Enum):
    """How a file's ratings are written."""

    TEN = "ten"      # half stars as whole numbers 1..10 (7 = 3.5 stars)
    STARS = "stars"  # stars 0.5..5 in halves (3.5), doubled on import


# A rating, doubled, is one of: a half star below 5 (stars only), a whole star up to 5
# (both scales), 6..10 (the ten scale only), or anything else (neither).
# A rating cell that holds no number at all makes its row invalid, not the scale.
_HALVES, _LOW, _HIGH, _NEITHER, _NO_NUMBER = range(5)
_ON_A_SCALE = (_HALVES, _LOW, _HIGH)


def _kind_of_doubled(doubled: float) -> int:
    if not (math.isfinite(doubled) and doubled == round(doubled) and 1 <= doubled <= 20):
        return _NEITHER
    if doubled <= 10:
        return _HALVES if doubled % 2 else _LOW
    return _HIGH if doubled % 2 == 0 else _NEITHER


@dataclass
class RatingRows:
    """Every valid row of a ratings file, in file order, as codes into name lists.

    Codes follow first appearance among valid rows; repeats of a (user, film) pair
    are all here (`last_of_each_pair` says which one counts).
    """

    users: np.ndarray            # int32, into usernames
    films: np.ndarray            # int32, into slugs
    ratings: np.ndarray          # int8, half stars 1..10 on the file's scale
    usernames: list[str]         # lower-case, valid
    slugs: list[str]             # valid
    rows_invalid: int            # rows dropped: a name or slug that cannot be, no number
    scale: Scale
    scale_detected: bool         # False when the caller said which scale
    rows_read: int = field(default=0)

    def last_of_each_pair(self) -> np.ndarray:
        """Row numbers (ascending) of the rating each (user, film) pair keeps: its last."""
        key = self.users.astype(np.int64) * max(len(self.slugs), 1) + self.films
        order = np.argsort(key, kind="stable")
        sorted_keys = key[order]
        superseded = np.zeros(len(key), dtype=bool)
        superseded[order[:-1][sorted_keys[1:] == sorted_keys[:-1]]] = True
        return np.flatnonzero(~superseded)


class _Codes:
    """Names to codes in order of first appearance, over the whole file; each distinct
    text is normalised and checked once, however many chunks hold it."""

    def __init__(self, normalise: Callable[[str], str], pattern: str,
                 max_length: int | None) -> None:
        self._normalise = normalise
        self._pattern = re.compile(pattern)
        self._max_length = max_length
        self._of_text: dict[str, int] = {}   # raw text -> code, -1 when invalid
        self._of_name: dict[str, int] = {}   # normalised name -> code
        self.names: list[str] = []

    def _new(self, text: str) -> int:
        name = self._normalise(text)
        if not self._pattern.fullmatch(name) or (self._max_length is not None
                                                 and len(name) > self._max_length):
            code = -1
        else:
            code = self._of_name.get(name, -1)
            if code < 0:
                code = self._of_name[name] = len(self.names)
                self.names.append(name)
        self._of_text[text] = code
        return code

    def encode(self, column) -> np.ndarray:  # a pyarrow string array
        """Per row, the code of its normalised name, or -1 where the name cannot be one."""
        encoded = column.dictionary_encode()
        known = self._of_text
        mapping = np.array([known[text] if text in known else self._new(text)
                            for text in encoded.dictionary.to_pylist()], dtype=np.int64)
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        return mapping[indices] if len(mapping) else np.full(len(indices), -1, np.int64)


@dataclass
class _ScaleEvidence:
    """The first line holding each kind of rating, over the whole file."""

    first_line: dict[int, tuple[int, str]] = field(default_factory=dict)

    def see(self, kind: int, line: int, text: str) -> None:
        if kind not in self.first_line or line < self.first_line[kind][0]:
            self.first_line[kind] = (line, text)

    def decide(self, path: Path, wanted: Scale | None) -> Scale:
        seen = self.first_line
        if _NEITHER in seen:
            line, text = seen[_NEITHER]
            raise DatasetError(path, f"rating {text!r} is on no rating scale (half stars 1-10, "
                               "or stars 0.5-5)", line)
        if wanted is Scale.TEN and _HALVES in seen:
            line, text = seen[_HALVES]
            raise DatasetError(path, f"rating {text!r} is not a whole number of half stars "
                               "1-10 (--scale ten)", line)
        if wanted is Scale.STARS and _HIGH in seen:
            line, text = seen[_HIGH]
            raise DatasetError(path, f"rating {text!r} is above 5 stars (--scale stars)", line)
        if wanted is None and _HALVES in seen and _HIGH in seen:
            (half_line, half), (high_line, high) = seen[_HALVES], seen[_HIGH]
            raise DatasetError(path, f"mixes rating scales: {half!r} (stars 0.5-5) and "
                               f"{high!r} on line {high_line} (half stars 1-10); say which "
                               "with --scale", half_line)
        if wanted is not None:
            return wanted
        return Scale.STARS if _HALVES in seen else Scale.TEN


def _open_batches(path: Path):  # -> (pyarrow reader, raw file), pyarrow imported lazily
    import pyarrow as pa
    import pyarrow.csv as pv

    raw = pa.OSFile(str(path))
    compression = _COMPRESSION.get(path.suffix.lower())
    stream = pa.CompressedInputStream(raw, compression) if compression else raw
    reader = pv.open_csv(
        stream, read_options=pv.ReadOptions(block_size=CHUNK_BYTES),
        convert_options=pv.ConvertOptions(
            include_columns=list(PUBLISHED_RATINGS_COLUMNS),
            column_types={name: pa.string() for name in PUBLISHED_RATINGS_COLUMNS},
            strings_can_be_null=False, quoted_strings_can_be_null=False))
    return reader, raw


def _header(path: Path) -> list[str]:
    import pyarrow as pa
    import pyarrow.csv as pv

    with pa.OSFile(str(path)) as raw:
        compression = _COMPRESSION.get(path.suffix.lower())
        stream = pa.CompressedInputStream(raw, compression) if compression else raw
        return pv.open_csv(stream, read_options=pv.ReadOptions(block_size=1 << 16)
                           ).schema.names


def read_rating_rows(path: Path, scale: Scale | None = None,
                     progress: Callable[[int], None] | None = None) -> RatingRows:
    """Every valid row of a ratings file in the Kaggle layout, the scale decided.

    Names are stripped and usernames lower-cased; a row whose username or slug could
    not be Letterboxd's, or whose rating is no number, is dropped. `scale` None detects
    it (see the module docstring). `progress` is called with the bytes of the file read
    so far. DatasetError (one line, naming the file) for a file that cannot be read;
    its line numbers count one line per row, as files without line breaks in cells have.
    """
    import pyarrow as pa

    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "no such file" if not path.exists() else "not a regular file")
    try:
        missing = [name for name in PUBLISHED_RATINGS_COLUMNS if name not in _header(path)]
        if missing:
            raise DatasetError(path, f"lacks the column(s) {', '.join(missing)}", 1)
        users = _Codes(lambda text: text.strip().lower(), USERNAME_PATTERN, None)
        slugs = _Codes(str.strip, SLUG_PATTERN, MAX_SLUG_LENGTH)
        rating_codes: dict[str, tuple[int, int]] = {}  # text -> (kind, doubled)
        evidence = _ScaleEvidence()
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        rows_read = rows_invalid = 0
        reader, raw = _open_batches(path)
        with raw:
            for batch in reader:
                _check_cell_sizes(path, batch, rows_read)
                user_part = users.encode(batch.column(0))
                film_part = slugs.encode(batch.column(1))
                doubled, kinds = _ratings(batch.column(2), rating_codes)
                valid = (user_part >= 0) & (film_part >= 0) & (kinds != _NO_NUMBER)
                for kind in (_HALVES, _HIGH, _NEITHER):
                    at = np.flatnonzero(valid & (kinds == kind))
                    if len(at):
                        text = batch.column(2)[int(at[0])].as_py()
                        evidence.see(kind, rows_read + int(at[0]) + 2, text)
                parts.append((user_part[valid].astype(np.int32),
                              film_part[valid].astype(np.int32), doubled[valid]))
                rows_read += batch.num_rows
                rows_invalid += int(batch.num_rows - valid.sum())
                if progress is not None:
                    progress(raw.tell())
    except (pa.ArrowInvalid, OSError, EOFError, UnicodeDecodeError) as error:
        raise DatasetError(path, f"cannot be read as CSV ({error})") from None
    decided = evidence.decide(path, scale)
    users_column, films_column, doubled_column = (
        np.concatenate([part[column] for part in parts]) if parts else np.zeros(0, dtype)
        for column, dtype in ((0, np.int32), (1, np.int32), (2, np.int8)))
    del parts
    ratings = doubled_column if decided is Scale.STARS else doubled_column // 2
    return RatingRows(users=users_column, films=films_column, ratings=ratings.astype(np.int8),
                      usernames=users.names, slugs=slugs.names, rows_invalid=rows_invalid,
                      scale=decided, scale_detected=scale is None, rows_read=rows_read)


def _check_cell_sizes(path: Path, batch, rows_before: int) -> None:
    """No cell longer than MAX_CELL_CHARS, as for every other CSV we read (pyarrow, like
    pandas, reads cells of any length): a hand-made cell of megabytes is refused."""
    import pyarrow.compute as pc

    for name, column in zip(batch.schema.names, batch.columns):
        lengths = pc.utf8_length(column)
        if (pc.max(lengths).as_py() or 0) > MAX_CELL_CHARS:
            first = int(np.flatnonzero(lengths.to_numpy(zero_copy_only=False)
                                       > MAX_CELL_CHARS)[0])
            raise DatasetError(path, f"a {name} cell is longer than {MAX_CELL_CHARS:,} "
                               "characters", rows_before + first + 2)


def _ratings(column, known: dict[str, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, twice the rating and its kind on the scales (_NO_NUMBER for text)."""
    encoded = column.dictionary_encode()
    texts = encoded.dictionary.to_pylist()
    new = [text for text in texts if text not in known]
    if new:
        numbers = pd.to_numeric(pd.Series(new, dtype=object), errors="coerce")
        for text, number in zip(new, numbers.tolist()):
            kind = _NO_NUMBER if number != number else _kind_of_doubled(2 * number)
            known[text] = (kind, int(2 * number) if kind in _ON_A_SCALE else 0)
    table = np.array([known[text] for text in texts], dtype=np.int64).reshape(-1, 2)
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    return table[indices, 1].astype(np.int8), table[indices, 0]
