"""What the model reads: a dataset's current ratings as arrays, validated, never written.

Safe beside a running builder: only committed rows are read, and a read that a
compaction or an install overtook is done again.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dataset import checks, film_table
from dataset.install import install_pending
from dataset.layout import (FILM_MAPPINGS_FILE, HEADERS, RATINGS_FILE,
                            RATINGS_HEADER, STATE_FILE, UNRATED_FILE, UNRATED_HEADER,
                            USER_MAPPINGS_FILE, USER_UPDATES_FILE, DatasetState)
from errors import DatasetError

logger = logging.getLogger(__name__)

# Re-reads of a dataset that a builder rewrote (compacted, replaced) while it was read.
LOAD_ATTEMPTS = 5


@dataclass
class RatingsData:
    """A dataset's current ratings as arrays, with the id tables to translate them."""

    user_index: np.ndarray      # int32, user_id per rating
    film_index: np.ndarray      # int32, film_id per rating
    rating: np.ndarray          # int8, 1..10
    usernames: list[str]        # by user_id
    films: pd.DataFrame         # by film_id: slug, lid, letterboxd_id, title, year, genres
    unrated_user: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    unrated_film: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))

    @property
    def n_users(self) -> int:
        return len(self.usernames)

    @property
    def n_films(self) -> int:
        return len(self.films)


def dataset_fingerprint(data_dir: Path) -> str:
    """Changes whenever any dataset file changes; keys the cached model."""
    data_dir = Path(data_dir)
    digest = hashlib.sha256()
    for name in (STATE_FILE, *HEADERS):
        path = data_dir / name
        if path.exists():
            stat = path.stat()
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    state_path = data_dir / STATE_FILE
    if state_path.exists():
        digest.update(state_path.read_bytes())
    return digest.hexdigest()


def load_film_table(data_dir: Path, committed: int | None = None, *,
                    validated_before: bool = False) -> pd.DataFrame:
    """The film mappings, checked and typed, indexed by film id (see dataset/film_table.py).

    `committed` (bytes) leaves out films a running builder has not committed yet.
    `validated_before` skips the row checks for a file known unchanged since it passed
    them (the model cache's fingerprint says so): the recommender's fast path.
    """
    if validated_before:
        if committed is None:  # a running builder may be half-way through a row
            state = DatasetState.read(Path(data_dir) / STATE_FILE)
            committed = state.committed[FILM_MAPPINGS_FILE]
        return film_table.read_checked_before(Path(data_dir), committed)
    return film_table.typed(film_table.read_film_mappings(Path(data_dir), committed))


def _file_identities(data_dir: Path) -> list[tuple[int, int] | None]:
    """Which file each dataset name is: appends keep it, compaction and installs replace it."""
    identities: list[tuple[int, int] | None] = []
    for name in HEADERS:
        try:
            stat = (data_dir / name).stat()
        except FileNotFoundError:
            identities.append(None)
        else:
            identities.append((stat.st_dev, stat.st_ino))
    return identities


def _state_bytes(state_path: Path) -> bytes | None:
    try:
        return state_path.read_bytes()
    except FileNotFoundError:
        return None


def load_ratings_dataset(data_dir: Path) -> RatingsData:
    """Every current rating of a dataset, validated; reads, never writes.

    Safe while a builder is running: only committed rows are read, and a read that
    a compaction (or a new dataset moving in) overtook is done again, so an error
    means the dataset was broken while its state file stood still. Batches committed
    meanwhile only append, so the rows read stay a consistent snapshot.
    """
    data_dir = Path(data_dir)
    state_path = data_dir / STATE_FILE
    for _ in range(LOAD_ATTEMPTS):
        identities = _file_identities(data_dir)  # first: a replacement after this shows
        state_bytes = _state_bytes(state_path)
        if state_bytes is None:
            if install_pending(data_dir):
                raise DatasetError(data_dir, "a new dataset was being moved in when the run "
                                   "stopped; run `compile_training_data.py continue --users 0` "
                                   "to finish it")
            raise DatasetError(data_dir, "holds no dataset (no dataset_state.json); "
                               "build one with compile_training_data.py or import one")
        try:
            data = _load_committed(data_dir, DatasetState.parse(state_path, state_bytes))
        except DatasetError:
            if _state_bytes(state_path) == state_bytes:
                raise
        else:
            if (_state_bytes(state_path) == state_bytes
                    or _file_identities(data_dir) == identities):
                return data
        logger.info("%s changed while it was read; reading it again", data_dir)
    raise DatasetError(data_dir, f"was rewritten each of the {LOAD_ATTEMPTS} times it was read "
                       "(a builder is compacting or replacing it); try again when it is done")


def _load_committed(data_dir: Path, state: DatasetState) -> RatingsData:
    """The dataset as `state` commits it; errors if the files do not match it."""
    state_path = data_dir / STATE_FILE
    if state.compacting:
        raise DatasetError(state_path, "a compaction was interrupted; run "
                           "`compile_training_data.py continue --users 0` to finish it")
    for name, committed in state.committed.items():
        checks.check_committed_file(data_dir / name, state.headers[name], committed)
    users = checks.read_user_mappings(data_dir, state.committed[USER_MAPPINGS_FILE])
    usernames = users["username"].tolist()
    films = load_film_table(data_dir, state.committed[FILM_MAPPINGS_FILE])
    log = checks.read_update_log(data_dir / USER_UPDATES_FILE, usernames,
                                 committed=state.committed[USER_UPDATES_FILE])
    live = log.live_blocks()

    ratings = checks.read_block_file(data_dir / RATINGS_FILE, RATINGS_HEADER,
                                     int(log.n_ratings.sum()), len(users), len(films))
    keep = np.repeat(live, log.n_ratings)
    block_users = np.repeat(log.user_ids, log.n_ratings)
    ratings_path = data_dir / RATINGS_FILE
    mismatch = ratings["user_id"].to_numpy() != block_users
    if mismatch.any():
        line = checks.first_bad_line(mismatch)
        raise DatasetError(ratings_path, "row does not belong to the user the update log "
                           "says this block is for", line)
    user_index = ratings["user_id"].to_numpy(np.int32)[keep]
    film_index = ratings["film_id"].to_numpy(np.int32)[keep]
    rating = ratings["rating"].to_numpy(np.int8)[keep]
    del ratings
    key = user_index.astype(np.int64) * max(len(films), 1) + film_index
    order = np.argsort(key, kind="stable")
    repeated = np.zeros(len(key), dtype=bool)
    repeated[order[1:]] = key[order[1:]] == key[order[:-1]]
    if repeated.any():
        line = int(np.flatnonzero(keep)[np.flatnonzero(repeated)[0]]) + 2
        raise DatasetError(ratings_path, "duplicate rating of the same film by the same user",
                           line)

    unrated = checks.read_block_file(data_dir / UNRATED_FILE, UNRATED_HEADER,
                                     int(log.n_unrated.sum()), len(users), len(films))
    keep_unrated = np.repeat(live, log.n_unrated)
    for name, committed in state.committed.items():
        checks.check_commit_point(data_dir / name, committed)
    return RatingsData(
        user_index=user_index, film_index=film_index, rating=rating,
        usernames=usernames, films=films,
        unrated_user=unrated["user_id"].to_numpy(np.int32)[keep_unrated],
        unrated_film=unrated["film_id"].to_numpy(np.int32)[keep_unrated])
