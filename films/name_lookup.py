"""Exact lookups of short names (boxd.it ids, usernames) in a sorted array of bytes.

A dict or a hashed index of 400,000 names costs a tenth of a second and more to build,
on every run that needs one name. Sorted once and stored as fixed-width bytes (plain
`.npy` arrays beside the model), the names are found by binary search in a
memory-mapped array: a lookup reads a few pages, whatever the size of the dataset.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np


@dataclass(frozen=True)
class NameLookup:
    """Names, sorted and each once, as fixed-width UTF-8 bytes, with the id each stands for."""

    names: np.ndarray  # dtype S<width>, strictly increasing
    ids: np.ndarray    # integer, aligned with names

    @classmethod
    def of(cls, names: Iterable[str]) -> NameLookup:
        """Each non-empty name of `names` once, standing for its first position there."""
        encoded = [name.encode("utf-8") for name in names]
        width = max((len(name) for name in encoded), default=0) or 1
        array = np.array(encoded, dtype=f"S{width}")
        order = np.argsort(array, kind="stable")
        sorted_names = array[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = sorted_names[1:] != sorted_names[:-1]
        first &= sorted_names != b""
        return cls(sorted_names[first], order[first].astype(np.int32))

    def is_consistent(self, n_ids: int) -> bool:
        """Whether these arrays can be a lookup of ids below `n_ids`: one bytes array,
        sorted with no name twice, and ids in range (a check of every entry: for arrays
        read back from a file)."""
        names, ids = self.names, self.ids
        return (names.ndim == 1 and names.dtype.kind == "S" and ids.shape == names.shape
                and ids.dtype.kind == "i" and bool(np.all(names[1:] > names[:-1]))
                and (not len(ids) or (int(ids.min()) >= 0 and int(ids.max()) < n_ids)))

    def find(self, names: Iterable[str]) -> np.ndarray:
        """The id of each name, -1 where it is not here."""
        encoded = [name.encode("utf-8") for name in names]
        found = np.full(len(encoded), -1, dtype=np.int64)
        width = self.names.dtype.itemsize
        # Bytes arrays cut a longer name to their width and drop trailing NULs: such a
        # name could meet another. "" is never here.
        fits = np.array([0 < len(name) <= width and b"\0" not in name for name in encoded],
                        dtype=bool)
        if not len(self.names) or not fits.any():
            return found
        keys = np.array([name for name, ok in zip(encoded, fits) if ok], dtype=self.names.dtype)
        at = np.minimum(np.searchsorted(self.names, keys), len(self.names) - 1)
        hit = self.names[at] == keys
        found[np.flatnonzero(fits)[hit]] = self.ids[at[hit]]
        return found
