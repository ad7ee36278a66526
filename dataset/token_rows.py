"""CSV rows glued from pre-rendered cells: tens of millions of rows without a Python loop.

A big file of ratings repeats a few hundred thousand distinct cells (ids, usernames,
a film's title, year and slug, a rating) millions of times. Each distinct cell is
rendered once, with its separator (`,` or the line end) attached, by whoever knows
how it must be quoted; a chunk of rows is then one numpy gather of those byte strings
and one `bytes.join`, with no Python code per row. The dataset's generator and the
streaming import write their big CSVs so.
"""
from __future__ import annotations

from typing import BinaryIO, Sequence

import numpy as np

# Rows glued per join: bounds the list of references one join holds.
ROWS_PER_JOIN = 100_000


class Tokens:
    """Rendered cells as UTF-8 byte strings, addressed by token number."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.encoded = np.empty(len(texts), dtype=object)
        self.encoded[:] = [text.encode("utf-8") for text in texts]

    def __len__(self) -> int:
        return len(self.encoded)


class TokenRowWriter:
    """Appends rows whose cell j is token `ids[j][i]` of `columns[j]`, chunk by chunk."""

    def __init__(self, handle: BinaryIO, columns: Sequence[Tokens]) -> None:
        self._handle = handle
        self._columns = columns

    def write(self, ids: Sequence[np.ndarray]) -> int:
        """Append one row per position of the id arrays; returns the bytes written."""
        written = 0
        for start in range(0, len(ids[0]), ROWS_PER_JOIN):
            stop = start + ROWS_PER_JOIN
            cells = np.empty((len(ids[0][start:stop]), len(self._columns)), dtype=object)
            for column, (tokens, chosen) in enumerate(zip(self._columns, ids)):
                cells[:, column] = tokens.encoded[chosen[start:stop]]
            written += self._handle.write(b"".join(cells.ravel().tolist()))
        return written
