"""Bringing a dataset written by an older release to this format, in place and atomically.

Format 1 had no film metadata: its film mappings gain the metadata columns, empty,
and nothing else changes (rows keep their bytes, ids stay). The rewrite goes through
the state file's commit (dataset/rewrite.py), so a kill leaves either format whole.
Readers read an old format as it is; the first writer that opens it upgrades it.
"""
from __future__ import annotations

import logging
from pathlib import Path

from dataset import film_table
from dataset.layout import FILM_MAPPINGS_FILE, FILMS_HEADER, FORMAT_VERSION, DatasetState, csv_bytes
from dataset.rewrite import commit_rewrite

logger = logging.getLogger(__name__)


def upgrade(data_dir: Path, state: DatasetState) -> DatasetState:
    """The state after upgrading the dataset to FORMAT_VERSION (the same one if current).

    The caller holds the writer lock and has recovered the dataset: no rewrite is
    pending and no uncommitted tail is left.
    """
    if state.format == FORMAT_VERSION:
        return state
    films = film_table.read_film_mappings(data_dir, state.committed[FILM_MAPPINGS_FILE])
    data = csv_bytes(films[list(FILMS_HEADER)].itertuples(index=False, name=None), FILMS_HEADER)
    new_state = commit_rewrite(data_dir, state, {FILM_MAPPINGS_FILE: data},
                               format=FORMAT_VERSION)
    logger.info("upgraded %s to dataset format %d: the film mappings now have metadata "
                "columns", data_dir, FORMAT_VERSION)
    return new_state
