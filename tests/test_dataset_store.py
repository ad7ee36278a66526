"""The dataset store: batch commits, refresh, recovery, validation, import."""
from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

import config
import load_save_and_translate_data as store_module
from errors import DatasetError
from load_save_and_translate_data import (DatasetStore, ScrapeStatus, UserScrapeRecord,
                                          archive_dataset, import_published_dataset,
                                          load_ratings_dataset)
from read_in_data import FilmTile

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def tile(slug: str, rating: int | None, *, liked: bool = False, title: str | None = None,
         year: int | None = 2001) -> FilmTile:
    return FilmTile(slug=slug, letterboxd_id=abs(hash(slug)) % 100000, lid=slug[:4].upper(),
                    title=title or slug.replace("-", " ").title(), year=year, rating=rating,
                    liked=liked)


def ok(username: str, *tiles: FilmTile) -> UserScrapeRecord:
    return UserScrapeRecord(username, ScrapeStatus.OK, tuple(tiles), display_name=username.title())


def as_triples(data_dir: Path) -> set[tuple[str, str, int]]:
    data = load_ratings_dataset(data_dir)
    slugs = data.films["slug"].to_numpy()
    return {(data.usernames[u], slugs[f], int(r))
            for u, f, r in zip(data.user_index, data.film_index, data.rating)}


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def store(tmp_path: Path) -> DatasetStore:
    return DatasetStore.open(tmp_path / "data", create=True)


def test_batches_append_and_ids_stay_stable_across_reopen(store: DatasetStore) -> None:
    store.commit_batch([ok("alice", tile("heat", 9), tile("alien", None)),
                        ok("bob", tile("alien", 6), tile("heat", 7, liked=True))], now=NOW)
    reopened = DatasetStore.open(store.data_dir)
    reopened.commit_batch([ok("carol", tile("heat", 10), tile("brazil", 3))], now=NOW)
    data_dir = store.data_dir
    assert read_rows(data_dir / config.FILM_MAPPINGS_FILE)[1:] == [
        ["0", "heat", "HEAT", str(abs(hash("heat")) % 100000), "Heat", "2001", ""],
        ["1", "alien", "ALIE", str(abs(hash("alien")) % 100000), "Alien", "2001", ""],
        ["2", "brazil", "BRAZ", str(abs(hash("brazil")) % 100000), "Brazil", "2001", ""],
    ]
    assert read_rows(data_dir / config.RATINGS_FILE) == [
        ["user_id", "film_id", "rating"], ["0", "0", "9"], ["1", "1", "6"], ["1", "0", "7"],
        ["2", "0", "10"], ["2", "2", "3"]]
    assert read_rows(data_dir / config.UNRATED_FILE)[1:] == [["0", "1"]]
    assert as_triples(data_dir) == {("alice", "heat", 9), ("bob", "alien", 6), ("bob", "heat", 7),
                                    ("carol", "heat", 10), ("carol", "brazil", 3)}
    translated = read_rows(data_dir / config.TRANSLATED_FILE)
    assert translated[0] == list(store_module.TRANSLATED_HEADER)
    assert translated[3] == ["bob", "Heat", "2001", "heat", "3.5", "7", "true",
                             "https://letterboxd.com/film/heat/"]
    backups = sorted((data_dir / config.BACKUP_DIR).glob("raw_user_ratings_*.csv"))
    assert len(backups) == 2
    assert read_rows(backups[1])[1:] == [["2", "0", "10"], ["2", "2", "3"]]
    data = load_ratings_dataset(data_dir)
    assert sorted(zip(data.unrated_user.tolist(), data.unrated_film.tolist())) == [(0, 1)]


def test_refresh_replaces_a_users_ratings_and_compaction_keeps_the_result(
        store: DatasetStore) -> None:
    store.commit_batch([ok("alice", tile("heat", 9), tile("alien", 4), tile("brazil", 5)),
                        ok("bob", tile("heat", 2))], now=NOW)
    later = NOW + timedelta(days=40)
    assert store.stale_users(timedelta(days=30), now=later) == ["alice", "bob"]
    # alice un-rated brazil, changed alien, rated a new film
    store.commit_batch([ok("alice", tile("heat", 9), tile("alien", 8), tile("brazil", None),
                           tile("ran", 10))], now=later)
    expected = {("alice", "heat", 9), ("alice", "alien", 8), ("alice", "ran", 10),
                ("bob", "heat", 2)}
    assert as_triples(store.data_dir) == expected
    assert store.dead_rating_rows == 3
    assert store.compact() == 3
    assert as_triples(store.data_dir) == expected
    assert len(read_rows(store.data_dir / config.RATINGS_FILE)) == 1 + 4
    assert len(read_rows(store.data_dir / config.TRANSLATED_FILE)) == 1 + 4
    reopened = DatasetStore.open(store.data_dir)
    assert reopened.dead_rating_rows == 0 and reopened.rating_count == 4
    assert as_triples(store.data_dir) == expected


def test_a_user_found_gone_on_refresh_loses_their_ratings_but_a_failure_changes_nothing(
        store: DatasetStore) -> None:
    store.commit_batch([ok("alice", tile("heat", 9)), ok("bob", tile("heat", 2))], now=NOW)
    store.commit_batch([UserScrapeRecord("bob", ScrapeStatus.FAILED),
                        UserScrapeRecord("alice", ScrapeStatus.NOT_FOUND)], now=NOW)
    assert as_triples(store.data_dir) == {("bob", "heat", 2)}
    assert store.is_known("alice") and store.user_state("alice").status is ScrapeStatus.NOT_FOUND


def test_torn_tail_of_an_interrupted_append_is_cut_off(store: DatasetStore) -> None:
    store.commit_batch([ok("alice", tile("heat", 9))], now=NOW)
    with open(store.data_dir / config.RATINGS_FILE, "ab") as handle:
        handle.write(b"0,5,1\n0,7")
    with open(store.data_dir / config.USER_UPDATES_FILE, "ab") as handle:
        handle.write(b"0,alice,2026-11-0")
    reopened = DatasetStore.open(store.data_dir)
    assert as_triples(store.data_dir) == {("alice", "heat", 9)}
    reopened.commit_batch([ok("bob", tile("heat", 3))], now=NOW)
    assert as_triples(store.data_dir) == {("alice", "heat", 9), ("bob", "heat", 3)}


def test_a_batch_interrupted_before_its_commit_point_leaves_no_trace(
        store: DatasetStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.commit_batch([ok("alice", tile("heat", 9))], now=NOW)
    clean_dir = store.data_dir.parent / "clean"
    clean = DatasetStore.open(clean_dir, create=True)
    clean.commit_batch([ok("alice", tile("heat", 9))], now=NOW)
    clean.commit_batch([ok("bob", tile("alien", 3), tile("heat", 4))], now=NOW)

    def crash(path: Path, data: bytes) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(store_module, "write_atomically", crash)
    with pytest.raises(KeyboardInterrupt):
        store.commit_batch([ok("bob", tile("alien", 3), tile("heat", 4))], now=NOW)
    monkeypatch.undo()
    reopened = DatasetStore.open(store.data_dir)
    assert not reopened.is_known("bob")
    assert not list((store.data_dir / config.BACKUP_DIR).glob(".*"))
    reopened.commit_batch([ok("bob", tile("alien", 3), tile("heat", 4))], now=NOW)
    for name in (config.RATINGS_FILE, config.USER_MAPPINGS_FILE, config.FILM_MAPPINGS_FILE,
                 config.TRANSLATED_FILE, config.UNRATED_FILE, config.USER_UPDATES_FILE):
        assert (store.data_dir / name).read_bytes() == (clean_dir / name).read_bytes(), name


def test_translated_ratings_are_safe_in_a_spreadsheet_but_mappings_keep_the_title(
        store: DatasetStore) -> None:
    store.commit_batch([ok("alice", tile("sum", 8, title="=SUM(A1:A9)"),
                           tile("minus", 6, title="-1"))], now=NOW)
    translated = read_rows(store.data_dir / config.TRANSLATED_FILE)
    assert [row[1] for row in translated[1:]] == ["'=SUM(A1:A9)", "'-1"]
    films = read_rows(store.data_dir / config.FILM_MAPPINGS_FILE)
    assert [row[4] for row in films[1:]] == ["=SUM(A1:A9)", "-1"]


@pytest.mark.parametrize("name, edit, message, line", [
    (config.RATINGS_FILE, lambda text: text.replace("user_id,film_id,rating", "user,film,rating"),
     "wrong header", 1),
    (config.RATINGS_FILE, lambda text: text.replace("1,1,6", "1,1,6.5"), "not an integer", 3),
    (config.RATINGS_FILE, lambda text: text.replace("1,1,6", "1,1,11"), "out of range", 3),
    (config.RATINGS_FILE, lambda text: text.replace("1,1,6", "1,9,6"), "unknown id", 3),
    (config.RATINGS_FILE, lambda text: text.replace("1,1,6", "1,0,6"), "duplicate", 4),
    (config.USER_MAPPINGS_FILE, lambda text: text.replace("1,bob", "1,../bob"), "invalid username", 3),
    (config.USER_UPDATES_FILE, lambda text: text.replace(",ok,", ",great,", 1), "unknown status", 2),
])
def test_hand_edited_files_give_one_clear_error_naming_file_and_line(
        store: DatasetStore, name: str, edit, message: str, line: int) -> None:
    store.commit_batch([ok("alice", tile("heat", 9)),
                        ok("bob", tile("alien", 6), tile("heat", 7))], now=NOW)
    path = store.data_dir / name
    path.write_text(edit(path.read_text()))
    with pytest.raises(DatasetError) as caught:
        load_ratings_dataset(store.data_dir)
        DatasetStore.open(store.data_dir)
    assert message in str(caught.value)
    assert caught.value.line == line and Path(caught.value.path) == path


def test_a_truncated_file_is_an_error_not_silently_accepted(store: DatasetStore) -> None:
    store.commit_batch([ok("alice", tile("heat", 9), tile("alien", 7))], now=NOW)
    path = store.data_dir / config.RATINGS_FILE
    before = path.read_bytes()
    path.write_bytes(before[:-6])
    with pytest.raises(DatasetError, match="truncated"):
        DatasetStore.open(store.data_dir)
    assert path.read_bytes() == before[:-6]


def test_a_missing_dataset_or_state_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no dataset"):
        DatasetStore.open(tmp_path / "nothing")
    store = DatasetStore.open(tmp_path / "data", create=True)
    (store.data_dir / config.STATE_FILE).unlink()
    with pytest.raises(DatasetError, match="dataset_state.json"):
        DatasetStore.open(store.data_dir)


def test_archive_moves_the_old_dataset_aside_and_keeps_every_file(store: DatasetStore) -> None:
    store.commit_batch([ok("alice", tile("heat", 9))], now=NOW)
    before = {name: (store.data_dir / name).read_bytes() for name in store_module.HEADERS}
    archived = archive_dataset(store.data_dir, now=NOW)
    assert archived is not None and archived.parent.name == config.ARCHIVE_DIR
    for name, content in before.items():
        assert (archived / name).read_bytes() == content
        assert not (store.data_dir / name).exists()
    assert list((archived / config.BACKUP_DIR).glob("raw_user_ratings_*.csv"))
    assert archive_dataset(store.data_dir) is None


def test_import_of_a_published_ratings_file(tmp_path: Path) -> None:
    ratings = tmp_path / "ratings_export.csv"
    ratings.write_text("user_id,movie_id,rating_val\n"
                       "Alice,heat,9\nalice,alien,4\nbob,heat,7\n"
                       "bob,../etc,5\ncarol,heat,11\nbob,heat,8\n")
    movies = tmp_path / "movie_data.csv"
    movies.write_text("movie_id,movie_title,year_released,genres\n"
                      "heat,Heat,1995.0,Crime|Drama\nalien,=Alien,1979,Horror\n")
    summary = import_published_dataset(ratings, tmp_path / "data", movies_path=movies, now=NOW)
    assert (summary.ratings, summary.users, summary.films, summary.rows_dropped) == (3, 2, 2, 3)
    assert as_triples(tmp_path / "data") == {("alice", "heat", 9), ("alice", "alien", 4),
                                             ("bob", "heat", 8)}
    films = read_rows(tmp_path / "data" / config.FILM_MAPPINGS_FILE)
    assert films[1:] == [["0", "heat", "", "", "Heat", "1995", "Crime|Drama"],
                         ["1", "alien", "", "", "=Alien", "1979", "Horror"]]
    translated = read_rows(tmp_path / "data" / config.TRANSLATED_FILE)
    assert translated[2][:6] == ["alice", "'=Alien", "1979", "alien", "2", "4"]
    store = DatasetStore.open(tmp_path / "data")
    store.commit_batch([ok("dave", tile("heat", 10))], now=NOW)
    assert ("dave", "heat", 10) in as_triples(tmp_path / "data")


def test_import_of_the_shared_500k_sample(tmp_path: Path, shared_dataset_dir: Path) -> None:
    summary = import_published_dataset(shared_dataset_dir / "ratings.csv.gz", tmp_path / "data",
                                       movies_path=shared_dataset_dir / "movies.csv.gz", now=NOW)
    assert (summary.ratings, summary.users, summary.films) == (509_463, 2_187, 4_974)
    data = load_ratings_dataset(tmp_path / "data")
    assert len(data.rating) == 509_463 and data.n_users == 2_187 and data.n_films == 4_974
    assert np.isclose(data.rating.mean(), 7.07, atol=0.01)
    state = json.loads((tmp_path / "data" / config.STATE_FILE).read_text())
    assert state["committed_bytes"][config.RATINGS_FILE] == (
        tmp_path / "data" / config.RATINGS_FILE).stat().st_size
