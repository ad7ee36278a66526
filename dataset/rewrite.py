"""Replacing whole dataset files under the state file's commit, so a kill at any moment
leaves either every old file or every new one.

The new files are written beside the old ones (name + `.compact`) and fsynced; the
state file is then replaced with their sizes and `compacting: true`, which is the
commit point; after it the copies are moved in and the flag cleared. An open that
finds the flag set finishes the move (`finish_rewrite`); one that finds copies without
it deletes them. Compaction, film metadata updates and format upgrades all go this way.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Mapping

from dataset.layout import COMPACT_SUFFIX, REWRITTEN_FILES, STATE_FILE, DatasetState
from safe_files import fsync_directory, write_atomically, write_durably


def commit_rewrite(data_dir: Path, state: DatasetState, contents: Mapping[str, bytes], *,
                   written: Mapping[str, int] | None = None, **changes: object
                   ) -> DatasetState:
    """Replace the files in `contents` (name -> new bytes) and return the new state.

    `written` names files whose `.compact` copy the caller already wrote (by streaming),
    with their sizes. `changes` are further fields of the new state (e.g. `format`).
    """
    committed = dict(state.committed)
    for name, data in contents.items():
        if name not in REWRITTEN_FILES:
            raise ValueError(f"{name} is not a file that is rewritten whole")
        write_durably(data_dir / (name + COMPACT_SUFFIX), data)
        committed[name] = len(data)
    committed.update(written or {})
    new_state = replace(state, committed=committed, compacting=True, **changes)
    write_atomically(data_dir / STATE_FILE, new_state.to_bytes())
    return finish_rewrite(data_dir, new_state)


def finish_rewrite(data_dir: Path, state: DatasetState) -> DatasetState:
    """Move committed copies in (a rewrite's second half); drop uncommitted ones."""
    if state.compacting:
        for name in REWRITTEN_FILES:
            copy = data_dir / (name + COMPACT_SUFFIX)
            if copy.exists():
                os.replace(copy, data_dir / name)
        fsync_directory(data_dir)
        state = replace(state, compacting=False)
        write_atomically(data_dir / STATE_FILE, state.to_bytes())
    for name in REWRITTEN_FILES:
        (data_dir / (name + COMPACT_SUFFIX)).unlink(missing_ok=True)
    return state
