"""CSV rows glued from pre-rendered cells: tens of millions of rows without a Python loop.

A big file of ratings repeats a few thousand distinct cells (ids, usernames, a film's
title, year and slug, a rating) millions of times. Each distinct cell is rendered
once, with its separator (`,` or the line end) attached, by whoever knows how it must
be quoted; a row is then only bytes glued together, and gluing a chunk of rows is one
numpy gather. The dataset's generator and the streaming import write their CSVs so.
"""
from __future__ import annotations

from typing import BinaryIO, Sequence

import numpy as np

# Rows glued per gather: its index array holds 8 bytes per byte written.
ROWS_PER_GATHER = 100_000


class Tokens:
    """Byte strings packed in one array, addressed by token number."""

    def __init__(self, texts: Sequence[str]) -> None:
        encoded = [text.encode("utf-8") for text in texts]
        self.lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
        self.offsets = np.zeros(len(encoded), np.int64)
        np.cumsum(self.lengths[:-1], out=self.offsets[1:])
        self.data = np.frombuffer(b"".join(encoded), np.uint8)

    def __len__(self) -> int:
        return len(self.lengths)


class TokenRowWriter:
    """Appends rows whose cell j is token `ids[j][i]` of `columns[j]`, chunk by chunk."""

    def __init__(self, handle: BinaryIO, columns: Sequence[Tokens]) -> None:
        self._handle = handle
        self._data = np.concatenate([tokens.data for tokens in columns])
        data_base = np.cumsum([0] + [len(tokens.data) for tokens in columns])[:-1]
        self._offsets = np.concatenate([tokens.offsets + base
                                        for tokens, base in zip(columns, data_base)])
        self._lengths = np.concatenate([tokens.lengths for tokens in columns])
        self._id_base = np.cumsum([0] + [len(tokens) for tokens in columns])[:-1]

    def write(self, ids: Sequence[np.ndarray]) -> int:
        """Append one row per position of the id arrays; returns the bytes written."""
        written = 0
        for start in range(0, len(ids[0]), ROWS_PER_GATHER):
            stop = start + ROWS_PER_GATHER
            token_ids = np.stack([np.asarray(column[start:stop], np.int64) + base
                                  for column, base in zip(ids, self._id_base)], axis=1).ravel()
            lengths = self._lengths[token_ids]
            ends = np.cumsum(lengths)
            shift = np.repeat(self._offsets[token_ids] - (ends - lengths), lengths)
            shift += np.arange(ends[-1])
            written += self._handle.write(self._data[shift].tobytes())
        return written
