"""What the recommender needs of the dataset beside the model, as plain arrays on disk.

Each user's ratings and unrated films (CSR arrays by user), each film's number of
ratings and canonical id, and the sorted usernames and boxd.it ids that find a member
or an export's film (`films.name_lookup`). Every array is a plain `.npy`, memory-mapped
on load: a recommendation touches one user's rows and a few pages of each lookup, so
an index of 100M ratings opens in milliseconds. A small JSON, replaced last, names the
dataset fingerprint and the folder of arrays written together.
"""
from __future__ import annotations

import io
import json
import logging
import re
import secrets
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dataset.loading import RatingsData
from errors import DiskFullError, ModelFileError, UnusableFileError
from films.matching import FilmCatalogue
from films.name_lookup import NameLookup
from recommender.linalg import row_major
from safe_files import (check_regular_entries, parse_json_limited, read_regular_file,
                        write_atomically)

logger = logging.getLogger(__name__)

INDEX_META_FILE = "dataset_index.json"
# 4: film_canonical (one film under two slugs counts once); 5: the usernames leave the
# JSON for a sorted lookup, and the films' lids get one. 3 and 4 are upgraded in place.
INDEX_FORMAT = 5
_UPGRADABLE_FORMATS = (3, 4)
INDEX_FOLDER_PREFIX = "index-"
_INDEX_FOLDER_PATTERN = re.compile(r"index-[0-9a-f]{16}")
_INDEX_FOLDER_GRACE_SECONDS = 600
# A format-4 JSON lists every username: tens of bytes per user.
_MAX_INDEX_META_BYTES = 1 << 30
INDEX_ARRAYS = ("rating_indptr", "rating_films", "rating_values", "unrated_indptr",
                "unrated_films", "rating_counts", "film_canonical", "user_names", "user_ids",
                "lid_names", "lid_films")


def _csr(rows: np.ndarray, columns: np.ndarray, n_rows: int,
         values: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    order, indptr, sorted_columns = row_major(rows, columns, n_rows)
    if values is None:
        return indptr, sorted_columns
    return indptr, sorted_columns, values[order].astype(np.int8)


def _lookups(usernames: list[str], films: pd.DataFrame) -> dict[str, np.ndarray]:
    users = NameLookup.of(usernames)
    lids = NameLookup.of(films["lid"].fillna(""))
    return {"user_names": users.names, "user_ids": users.ids,
            "lid_names": lids.names, "lid_films": lids.ids}


def build_index(data: RatingsData, canonical: np.ndarray) -> dict[str, np.ndarray]:
    """The index of the dataset (INDEX_ARRAYS), its ratings and unrated films in
    `canonical` film ids as `cache.by_film_identity` gives them."""
    rating_indptr, rating_films, rating_values = _csr(data.user_index, data.film_index,
                                                      data.n_users, data.rating)
    unrated_indptr, unrated_films = _csr(data.unrated_user, data.unrated_film, data.n_users)
    return {"rating_indptr": rating_indptr, "rating_films": rating_films,
            "rating_values": rating_values, "unrated_indptr": unrated_indptr,
            "unrated_films": unrated_films,
            "rating_counts": np.bincount(data.film_index, minlength=data.n_films),
            "film_canonical": canonical.astype(np.int64),
            **_lookups(data.usernames, data.films)}


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _meta(fingerprint: str, folder: str, lengths: dict[str, int]) -> bytes:
    return json.dumps({"format": INDEX_FORMAT, "fingerprint": fingerprint, "folder": folder,
                       "lengths": lengths}).encode("utf-8")


def _lengths(arrays: dict[str, np.ndarray]) -> dict[str, int]:
    return {name: len(array) for name, array in arrays.items()}


def save_index(directory: Path, arrays: dict[str, np.ndarray], fingerprint: str) -> None:
    """Write the arrays into a folder of their own, then point the JSON at it.

    Two runs refitting at once (on different data) each fill their own folder, so the
    JSON, replaced last and atomically, always names arrays written together.
    """
    folder = directory / f"{INDEX_FOLDER_PREFIX}{secrets.token_hex(8)}"
    folder.mkdir(parents=True)
    for name, array in arrays.items():
        write_atomically(folder / f"{name}.npy", _npy_bytes(array))
    write_atomically(directory / INDEX_META_FILE,
                     _meta(fingerprint, folder.name, _lengths(arrays)))
    _remove_old_index_folders(directory, keep=folder.name)


def _remove_old_index_folders(directory: Path, keep: str) -> None:
    """Best effort; a folder younger than a few minutes may be another run's, still filling."""
    cutoff = time.time() - _INDEX_FOLDER_GRACE_SECONDS
    for folder in directory.glob(f"{INDEX_FOLDER_PREFIX}*"):
        try:
            if folder.name != keep and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder)
        except OSError as error:
            logger.debug("could not remove the old index %s: %s", folder, error)


def _upgrade(directory: Path, meta: dict, films: pd.DataFrame) -> dict[str, np.ndarray]:
    """The arrays a format-3 or -4 index lacks, saved beside its others when the folder
    allows: the usernames its JSON lists and the films' lids as lookups, and for format 3
    (from before one film under two slugs counted once) the canonical ids, where every
    film is its own (else its model counted such a film twice, and only a refit helps)."""
    usernames = meta.get("usernames")
    if not isinstance(usernames, list) or not all(isinstance(name, str) for name in usernames):
        raise ModelFileError("the dataset index holds no list of usernames")
    added = _lookups(usernames, films)
    if meta["format"] == 3:
        canonical = FilmCatalogue(films).canonical
        if not np.array_equal(canonical, np.arange(len(films))):
            raise ModelFileError("the model was fitted before one film under two slugs "
                                 "counted once")
        added["film_canonical"] = canonical
    folder = directory / meta["folder"]
    try:
        for name, array in added.items():
            write_atomically(folder / f"{name}.npy", _npy_bytes(array))
        write_atomically(directory / INDEX_META_FILE, _meta(
            meta["fingerprint"], meta["folder"], {**meta["lengths"], **_lengths(added)}))
        logger.info("upgraded the dataset index in %s to format %d", directory, INDEX_FORMAT)
    except (OSError, UnusableFileError, DiskFullError) as error:
        logger.debug("could not upgrade the dataset index in %s (%s)", directory, error)
    return added


def load_index(directory: Path, fingerprint: str, films: pd.DataFrame) -> dict[str, np.ndarray]:
    """The stored index (memory-mapped), or ModelFileError if it cannot be trusted."""
    n_films = len(films)
    try:
        meta = parse_json_limited(read_regular_file(directory / INDEX_META_FILE,
                                                    _MAX_INDEX_META_BYTES), max_depth=2)
        if (not isinstance(meta, dict)
                or meta.get("format") not in (INDEX_FORMAT, *_UPGRADABLE_FORMATS)
                or meta.get("fingerprint") != fingerprint):
            raise ModelFileError("the dataset index was built from other data")
        folder = meta["folder"]
        if not isinstance(folder, str) or not _INDEX_FOLDER_PATTERN.fullmatch(folder):
            raise ModelFileError("the dataset index names no valid folder")
        added = _upgrade(directory, meta, films) if meta["format"] != INDEX_FORMAT else {}
        stored = [name for name in INDEX_ARRAYS if name not in added]
        files = [f"{name}.npy" for name in stored]
        check_regular_entries(directory / folder, files=files)  # np.load would wait on a FIFO
        arrays = {name: np.load(directory / folder / file, mmap_mode="r", allow_pickle=False)
                  for name, file in zip(stored, files)}
        lengths = meta["lengths"]
    except ModelFileError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, AttributeError,
            UnusableFileError) as error:
        raise ModelFileError(f"unreadable dataset index ({error})") from None
    if any(arrays[name].ndim != 1 or len(arrays[name]) != lengths.get(name) for name in stored):
        raise ModelFileError("the dataset index is truncated or inconsistent")
    arrays.update(added)
    n_users = len(arrays["rating_indptr"]) - 1
    for prefix, values in (("rating", "rating_films"), ("unrated", "unrated_films")):
        indptr = np.asarray(arrays[f"{prefix}_indptr"])
        if (indptr.shape != (n_users + 1,) or indptr[0] != 0 or np.any(np.diff(indptr) < 0)
                or indptr[-1] != len(arrays[values])):
            raise ModelFileError("the dataset index is inconsistent")
    canonical = np.asarray(arrays["film_canonical"])
    if (len(arrays["rating_values"]) != len(arrays["rating_films"])
            or len(arrays["rating_counts"]) != n_films or len(canonical) != n_films
            or (n_films and (canonical.min() < 0 or np.any(canonical > np.arange(n_films))))):
        raise ModelFileError("the dataset index is inconsistent")
    users = NameLookup(arrays["user_names"], arrays["user_ids"])
    lids = NameLookup(arrays["lid_names"], arrays["lid_films"])
    if (not users.is_consistent(n_users) or len(users.names) != n_users
            or np.bincount(users.ids, minlength=n_users).max(initial=0) > 1
            or not lids.is_consistent(n_films)):
        raise ModelFileError("the dataset index's lookups are inconsistent")
    return arrays
