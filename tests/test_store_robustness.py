"""The store under a concurrent builder, interrupted installs and hand-edited values."""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest

import safe_files
from compile_training_data import main
from dataset import checks, layout
from errors import BadInputError, DatasetError
from load_save_and_translate_data import (LOAD_ATTEMPTS, MAX_FAILED_SCRAPES, DatasetStore,
                                          ScrapeStatus, UserScrapeRecord, archive_dataset,
                                          dataset_exists, import_published_dataset,
                                          load_ratings_dataset)
from tests.helpers import (Killed, count_replaces, film, kill_at_replace, scraped, snapshot,
                           triples)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(days=40)


def archived_files(data_dir: Path) -> dict[str, bytes]:
    """Every archived file by its path inside its archive folder, whichever folder that is."""
    merged: dict[str, bytes] = {}
    for folder in sorted((data_dir / layout.ARCHIVE_DIR).glob("*")):
        for name, content in snapshot(folder).items():
            assert name not in merged, f"{name} archived twice"
            merged[name] = content
    return merged


@pytest.fixture
def store(tmp_path: Path) -> DatasetStore:
    return DatasetStore.open(tmp_path / "data", create=True)


@pytest.fixture
def refreshed(store: DatasetStore) -> DatasetStore:
    """A dataset with dead rows: compacting it replaces the block files."""
    store.commit_batch([scraped("alice", film("heat", 9), film("alien", 4), film("brazil", 5)),
                        scraped("bob", film("heat", 2))], now=NOW)
    store.commit_batch([scraped("alice", film("heat", 8))], now=LATER)
    return store


def run_before_the_first_file_check(monkeypatch: pytest.MonkeyPatch,
                                    action: Callable[[], None]) -> list[int]:
    """Run `action` once, when a reader has read the state file and is about to check the
    files it commits: the moment a builder running beside it could change them.

    Returns a list that counts the file checks.
    """
    original = checks.check_committed_file
    calls: list[int] = []

    def hooked(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            action()
        return original(*args, **kwargs)

    monkeypatch.setattr(checks, "check_committed_file", hooked)
    return calls


# --- 1. a reader overtaken by a compaction ----------------------------------------

@pytest.mark.parametrize("batch_after", [False, True], ids=["compaction", "compaction+batch"])
def test_a_compaction_between_state_read_and_file_reads_is_read_again_not_called_corrupt(
        refreshed: DatasetStore, monkeypatch: pytest.MonkeyPatch, batch_after: bool) -> None:
    expected = {("alice", "heat", 8), ("bob", "heat", 2)}

    def compact() -> None:
        assert refreshed.compact() == 3
        if batch_after:  # the files grow past the old commit points again
            refreshed.commit_batch([scraped("carol", film("ran", 7), film("heat", 6),
                                       film("alien", 5), film("brazil", 4))], now=LATER)
            expected.update({("carol", "ran", 7), ("carol", "heat", 6), ("carol", "alien", 5),
                             ("carol", "brazil", 4)})

    run_before_the_first_file_check(monkeypatch, compact)
    assert triples(load_ratings_dataset(refreshed.data_dir)) == expected


def test_a_batch_committed_during_a_read_keeps_the_snapshot_without_reading_again(
        refreshed: DatasetStore, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = run_before_the_first_file_check(monkeypatch, lambda: refreshed.commit_batch(
        [scraped("carol", film("ran", 7))], now=LATER))
    data = load_ratings_dataset(refreshed.data_dir)
    assert "carol" not in data.usernames  # the state read first did not have her yet
    assert triples(data) == {("alice", "heat", 8), ("bob", "heat", 2)}
    assert len(calls) == len(layout.HEADERS)  # one pass over the files
    assert "carol" in load_ratings_dataset(refreshed.data_dir).usernames


def test_a_dataset_that_keeps_changing_is_read_a_bounded_number_of_times(
        store: DatasetStore, monkeypatch: pytest.MonkeyPatch) -> None:
    state_path = store.data_dir / layout.STATE_FILE
    reads: list[int] = []

    def rewritten_while_read(path: Path, header, committed: int) -> None:
        reads.append(1)
        state = json.loads(state_path.read_bytes())
        state["batches"] += 1
        state_path.write_text(json.dumps(state))
        raise DatasetError(path, "file truncated")

    monkeypatch.setattr(checks, "check_committed_file", rewritten_while_read)
    with pytest.raises(DatasetError, match="rewritten each of the 5 times") as caught:
        load_ratings_dataset(store.data_dir)
    assert len(reads) == LOAD_ATTEMPTS == 5
    assert "restore" not in str(caught.value)


# --- 2. import and new: all or nothing ------------------------------------------

@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "ratings_export.csv"
    path.write_text("user_id,movie_id,rating_val\nzoe,heat,9\nzoe,ran,4\nyan,heat,7\n")
    return path


@pytest.mark.parametrize("content", [
    "username,film,stars\nzoe,heat,9\n",          # wrong columns
    "user_id,movie_id,rating_val\nzoe,heat,11\n",  # no valid rating
    "user_id,movie_id,rating_val\n\"zoe,heat\n",   # not CSV
])
def test_an_import_that_fails_leaves_the_previous_dataset_exactly_as_it_was(
        refreshed: DatasetStore, tmp_path: Path, content: str) -> None:
    bad = tmp_path / "typo.csv"
    bad.write_text(content)
    before = snapshot(refreshed.data_dir)
    with pytest.raises(DatasetError):
        main(["import", str(bad), "--output-dir", str(refreshed.data_dir), "-q"])
    assert snapshot(refreshed.data_dir) == before
    assert sorted(path.name for path in refreshed.data_dir.iterdir()) == sorted(
        [*layout.HEADERS, layout.STATE_FILE, layout.BACKUP_DIR])


def test_an_import_archives_the_previous_dataset_whole_after_it_succeeds(
        refreshed: DatasetStore, source: Path) -> None:
    before = snapshot(refreshed.data_dir)
    assert main(["import", str(source), "--output-dir", str(refreshed.data_dir), "-q"]) == 0
    assert archived_files(refreshed.data_dir) == before
    assert triples(load_ratings_dataset(refreshed.data_dir)) == {
        ("zoe", "heat", 9), ("zoe", "ran", 4), ("yan", "heat", 7)}
    assert not (refreshed.data_dir / layout.STAGING_DIR).exists()


def import_over(data_dir: Path, source: Path) -> None:
    import_published_dataset(source, data_dir, archive_existing=True, now=NOW)


def test_an_import_killed_at_any_rename_is_finished_by_continue_and_loses_nothing(
        tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def previous_dataset(data_dir: Path) -> DatasetStore:
        store = DatasetStore.open(data_dir, create=True)
        store.commit_batch([scraped("alice", film("heat", 9))], now=NOW)
        return store

    probe = previous_dataset(tmp_path / "probe").data_dir
    renames = count_replaces(lambda: import_over(probe, source), monkeypatch)
    # staged state; archived state, files and backups/; files moved in; state
    assert renames == 1 + (len(layout.HEADERS) + 2) + len(layout.HEADERS) + 1
    imported = {("zoe", "heat", 9), ("zoe", "ran", 4), ("yan", "heat", 7)}
    for number in range(renames):
        data_dir = tmp_path / f"killed_{number}"
        before = snapshot(previous_dataset(data_dir).data_dir)
        with monkeypatch.context() as patch:
            kill_at_replace(patch, number)
            with pytest.raises(Killed):
                import_over(data_dir, source)
        assert dataset_exists(data_dir)
        store = DatasetStore.open(data_dir)  # what `continue` does first
        after = triples(load_ratings_dataset(data_dir))
        if (data_dir / layout.ARCHIVE_DIR).exists():  # the import had been staged whole
            assert after == imported, number
            assert archived_files(data_dir) == before, number
        else:
            assert after == {("alice", "heat", 9)} and snapshot(data_dir) == before, number
        assert not (data_dir / layout.STAGING_DIR).exists()
        store.commit_batch([scraped("carol", film("heat", 5))], now=LATER)


def test_new_killed_at_any_rename_leaves_an_empty_dataset_or_a_clear_message(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    renames = count_replaces(lambda: DatasetStore.open(tmp_path / "probe", create=True),
                             monkeypatch)
    assert renames == len(layout.HEADERS) + 2  # staged state, files, state
    for number in range(renames):
        data_dir = tmp_path / f"killed_{number}"
        with monkeypatch.context() as patch:
            kill_at_replace(patch, number)
            with pytest.raises(Killed):
                DatasetStore.open(data_dir, create=True)
        if number == 0:  # the staged copy was never complete: nothing to continue
            assert not dataset_exists(data_dir)
            with pytest.raises(BadInputError, match="start one with `new`"):
                main(["continue", "--output-dir", str(data_dir), "-q"])
            with pytest.raises(DatasetError, match="start one with `new`"):
                DatasetStore.open(data_dir)
            continue
        store = DatasetStore.open(data_dir)
        assert store.user_count == 0
        store.commit_batch([scraped("alice", film("heat", 9))], now=NOW)
        assert triples(load_ratings_dataset(data_dir)) == {("alice", "heat", 9)}


def test_a_partial_copy_left_by_a_kill_is_removed_and_the_dataset_untouched(
        refreshed: DatasetStore) -> None:
    before = snapshot(refreshed.data_dir)
    partial = refreshed.data_dir / layout.STAGING_DIR
    partial.mkdir()
    (partial / layout.RATINGS_FILE).write_text("user_id,film_id,rating\n0,0,")
    DatasetStore.open(refreshed.data_dir)
    assert snapshot(refreshed.data_dir) == before


def test_header_only_files_without_a_state_file_say_to_run_new(store: DatasetStore) -> None:
    # What an older version left when killed between the header files and the state file.
    (store.data_dir / layout.STATE_FILE).unlink()
    (store.data_dir / layout.RATINGS_FILE).unlink()
    with pytest.raises(DatasetError, match="interrupted `new`.*run `new` again") as caught:
        DatasetStore.open(store.data_dir)
    assert "\n" not in str(caught.value)


def test_new_over_an_interrupted_import_archives_both_datasets_whole(
        refreshed: DatasetStore, source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = refreshed.data_dir
    before = snapshot(data_dir)
    import_over(data_dir.parent / "alone", source)
    imported = snapshot(data_dir.parent / "alone")
    with monkeypatch.context() as patch:  # everything moved in but the state file
        kill_at_replace(patch, target_is=data_dir / layout.STATE_FILE)
        with pytest.raises(Killed):
            import_over(data_dir, source)
    # `new` = archive_dataset, then create.
    archive_dataset(data_dir, now=LATER)
    DatasetStore.open(data_dir, create=True)
    folders = sorted((data_dir / layout.ARCHIVE_DIR).iterdir())
    assert [snapshot(folder) for folder in folders] == [before, imported]
    assert load_ratings_dataset(data_dir).n_users == 0


# --- 3-5. values a hand edit can break -----------------------------------------------

def hand_edit(store: DatasetStore, name: str, old: str, new: str) -> Path:
    """Edit a committed file and record its new size, as a careful hand edit would."""
    path = store.data_dir / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    state_path = store.data_dir / layout.STATE_FILE
    state = json.loads(state_path.read_text())
    state["committed_bytes"][name] = path.stat().st_size
    state_path.write_text(json.dumps(state))
    return path


@pytest.mark.parametrize("value", ["inf", "1e3", "-1", "1.0", "+2", " 1", "١"])
def test_a_count_in_the_update_log_must_be_plain_digits_and_is_reported_there(
        store: DatasetStore, value: str) -> None:
    store.commit_batch([scraped("alice", film("heat", 9))], now=NOW)
    path = hand_edit(store, layout.USER_UPDATES_FILE, ",ok,1,0", f",ok,{value},0")
    with pytest.raises(DatasetError, match="n_ratings is not an integer") as caught:
        load_ratings_dataset(store.data_dir)
    assert Path(caught.value.path) == path and caught.value.line == 2


@pytest.mark.parametrize("pending", ["../../outside.csv", "raw_user_ratings_x.csv", 7, ""])
def test_a_pending_backup_name_the_store_never_writes_is_refused(
        store: DatasetStore, pending: object) -> None:
    store.commit_batch([scraped("alice", film("heat", 9))], now=NOW)
    state_path = store.data_dir / layout.STATE_FILE
    state = json.loads(state_path.read_text())
    assert re.fullmatch(r"raw_user_ratings_\d{8}T\d{6}Z_b000001\.csv", state["pending_backup"])
    state["pending_backup"] = pending
    state_path.write_text(json.dumps(state))
    before = snapshot(store.data_dir)
    with pytest.raises(DatasetError, match="pending_backup") as caught:
        DatasetStore.open(store.data_dir)
    assert Path(caught.value.path) == state_path
    assert snapshot(store.data_dir) == before


@pytest.mark.parametrize("logged, message", [("../bob", "invalid username"),
                                             ("mallory", "is not user_id 1's")])
def test_a_username_in_the_update_log_must_be_its_users(
        store: DatasetStore, logged: str, message: str) -> None:
    # Otherwise a refresh would send it to the site, and the batch holding it would fail.
    store.commit_batch([scraped("alice", film("heat", 9)), scraped("bob", film("heat", 3))],
                       now=NOW)
    path = hand_edit(store, layout.USER_UPDATES_FILE, "1,bob,", f"1,{logged},")
    with pytest.raises(DatasetError, match=message) as caught:
        DatasetStore.open(store.data_dir)
    assert Path(caught.value.path) == path and caught.value.line == 3


# --- 6. recovery renames are made durable ---------------------------------------------

def record_renames_and_folder_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Path]]:
    """("rename", target) for each os.replace, ("fsync", folder) for each fsync of a folder."""
    events: list[tuple[str, Path]] = []
    folders: dict[int, Path] = {}
    original_replace, original_open = os.replace, os.open
    original_fsync, original_close = os.fsync, os.close

    def replace(source, target) -> None:
        events.append(("rename", Path(target)))
        original_replace(source, target)

    def open_folder(path, flags, *args, **kwargs) -> int:
        fd = original_open(path, flags, *args, **kwargs)
        if os.path.isdir(path):
            folders[fd] = Path(path)
        return fd

    def fsync(fd: int) -> None:
        if fd in folders:
            events.append(("fsync", folders[fd]))
        original_fsync(fd)

    def close(fd: int) -> None:
        folders.pop(fd, None)
        original_close(fd)

    for name, function in (("replace", replace), ("open", open_folder), ("fsync", fsync),
                           ("close", close)):
        monkeypatch.setattr(os, name, function)
    return events


def kill_after_the_compactions_commit_point(store: DatasetStore,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Compact, killed just before the first compacted file is moved in."""
    with monkeypatch.context() as patch:
        kill_at_replace(patch, source_suffix=layout.COMPACT_SUFFIX)
        with pytest.raises(Killed):
            store.compact()
    assert json.loads((store.data_dir / layout.STATE_FILE).read_text())["compacting"]


def test_recovery_fsyncs_each_folder_after_renaming_into_it(
        refreshed: DatasetStore, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = refreshed.data_dir
    kill_after_the_compactions_commit_point(refreshed, monkeypatch)
    backups = data_dir / layout.BACKUP_DIR
    latest = sorted(backups.iterdir())[-1]
    os.rename(latest, backups / f".{latest.name}{safe_files.TEMP_SUFFIX}")  # backup pending
    events = record_renames_and_folder_fsyncs(monkeypatch)
    DatasetStore.open(data_dir)
    assert latest.exists()
    assert not list(data_dir.glob("*" + layout.COMPACT_SUFFIX))
    state_written = events.index(("rename", data_dir / layout.STATE_FILE))
    compacted = [index for index, (kind, path) in enumerate(events[:state_written])
                 if kind == "rename" and path.parent == data_dir]
    assert len(compacted) == len(layout.BLOCK_FILES)
    assert ("fsync", data_dir) in events[compacted[-1]:state_written]
    backup_renamed = events.index(("rename", latest))
    assert ("fsync", backups) in events[backup_renamed:]


def test_replaced_files_get_the_permissions_a_plain_open_gives(tmp_path: Path) -> None:
    """mkstemp makes 0600 files: a state file another account cannot read."""
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    replaced = tmp_path / "replaced"
    safe_files.write_atomically(replaced, b"y")
    assert stat.S_IMODE(replaced.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    replaced.chmod(0o600)  # the owner's choice survives the next replacement
    safe_files.write_atomically(replaced, b"z")
    assert stat.S_IMODE(replaced.stat().st_mode) == 0o600


def test_archiving_a_dataset_killed_mid_compaction_keeps_it_whole(
        refreshed: DatasetStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Its state file counts the compacted files' bytes, so they must travel with it."""
    data_dir = refreshed.data_dir
    clean = tmp_path / "clean"
    shutil.copytree(data_dir, clean)
    DatasetStore.open(clean).compact()
    kill_after_the_compactions_commit_point(refreshed, monkeypatch)
    assert list(data_dir.glob("*" + layout.COMPACT_SUFFIX))
    archived = archive_dataset(data_dir)
    assert not list(data_dir.glob("*" + layout.COMPACT_SUFFIX))
    DatasetStore.open(archived)  # finishes the compaction there
    for name in layout.HEADERS:
        assert (archived / name).read_bytes() == (clean / name).read_bytes(), name


def test_a_compaction_keeps_the_failures_that_stop_the_retries(store: DatasetStore) -> None:
    """The failed scrapes of a user never read are what keeps them from being retried on
    every run; compaction drops replaced rows, not those."""
    store.commit_batch([scraped("alice", film("heat", 9))], now=NOW)
    for attempt in range(MAX_FAILED_SCRAPES):
        assert store.unfinished_users() == (["bob"] if attempt else [])
        store.commit_batch([UserScrapeRecord("bob", ScrapeStatus.FAILED, ())], now=NOW)
    assert store.unfinished_users() == [] and store.is_abandoned("bob")
    store.commit_batch([scraped("alice", film("heat", 7))], now=LATER)  # a refresh
    assert store.compact() == 1
    reopened = DatasetStore.open(store.data_dir)
    assert reopened.unfinished_users() == [] and reopened.is_abandoned("bob")
    assert reopened.abandoned_user_count == 1 and not reopened.is_abandoned("alice")
