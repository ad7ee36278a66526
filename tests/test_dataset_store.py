"""The dataset store: batch commits, refresh, recovery, validation, import."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from dataset import layout
from errors import DatasetError
from load_save_and_translate_data import (DatasetStore, ScrapedFilm, ScrapeStatus,
                                          UserScrapeRecord, archive_dataset,
                                          import_published_dataset, load_film_table,
                                          load_ratings_dataset,
                                          read_published_ratings)
from tests.helpers import (FIXTURE_DATASET, Killed, copy_fixture_dataset, dataset_triples, film,
                           kill_at_replace, read_rows, scraped, snapshot)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
NO_METADATA = [""] * len(layout.FILM_METADATA_COLUMNS)


@pytest.fixture
def store(tmp_path: Path) -> DatasetStore:
    return DatasetStore.open(tmp_path / "data", create=True)


def test_batches_append_and_ids_stay_stable_across_reopen(store: DatasetStore) -> None:
    store.commit_batch([scraped("alice", film("heat", 9), film("alien", None)),
                        scraped("bob", film("alien", 6), film("heat", 7, liked=True))], now=NOW)
    reopened = DatasetStore.open(store.data_dir)
    reopened.commit_batch([scraped("carol", film("heat", 10), film("brazil", 3))], now=NOW)
    data_dir = store.data_dir
    assert read_rows(data_dir / layout.FILM_MAPPINGS_FILE)[1:] == [
        ["0", "heat", "HEAT", "4", "Heat", "2001", *NO_METADATA],
        ["1", "alien", "ALIE", "5", "Alien", "2001", *NO_METADATA],
        ["2", "brazil", "BRAZ", "6", "Brazil", "2001", *NO_METADATA],
    ]
    assert read_rows(data_dir / layout.RATINGS_FILE) == [
        ["user_id", "film_id", "rating"], ["0", "0", "9"], ["1", "1", "6"], ["1", "0", "7"],
        ["2", "0", "10"], ["2", "2", "3"]]
    assert read_rows(data_dir / layout.UNRATED_FILE)[1:] == [["0", "1"]]
    assert dataset_triples(data_dir) == {("alice", "heat", 9), ("bob", "alien", 6),
                                         ("bob", "heat", 7), ("carol", "heat", 10),
                                         ("carol", "brazil", 3)}
    translated = read_rows(data_dir / layout.TRANSLATED_FILE)
    assert translated[0] == list(layout.TRANSLATED_HEADER)
    assert translated[3] == ["bob", "Heat", "2001", "heat", "3.5", "7", "true",
                             "https://letterboxd.com/film/heat/"]
    backups = sorted((data_dir / layout.BACKUP_DIR).glob("raw_user_ratings_*.csv"))
    assert len(backups) == 2
    assert read_rows(backups[1])[1:] == [["2", "0", "10"], ["2", "2", "3"]]
    data = load_ratings_dataset(data_dir)
    assert sorted(zip(data.unrated_user.tolist(), data.unrated_film.tolist())) == [(0, 1)]


def test_refresh_replaces_a_users_ratings_and_compaction_keeps_the_result(
        store: DatasetStore) -> None:
    store.commit_batch([scraped("alice", film("heat", 9), film("alien", 4), film("brazil", 5)),
                        scraped("bob", film("heat", 2))], now=NOW)
    later = NOW + timedelta(days=40)
    assert store.stale_users(timedelta(days=30), now=later) == ["alice", "bob"]
    # alice un-rated brazil, changed alien, rated a new film
    store.commit_batch([scraped("alice", film("heat", 9), film("alien", 8), film("brazil", None),
                           film("ran", 10))], now=later)
    expected = {("alice", "heat", 9), ("alice", "alien", 8), ("alice", "ran", 10),
                ("bob", "heat", 2)}
    assert dataset_triples(store.data_dir) == expected
    assert store.dead_rating_rows == 3
    assert store.compact() == 3
    assert dataset_triples(store.data_dir) == expected
    assert len(read_rows(store.data_dir / layout.RATINGS_FILE)) == 1 + 4
    assert len(read_rows(store.data_dir / layout.TRANSLATED_FILE)) == 1 + 4
    reopened = DatasetStore.open(store.data_dir)
    assert reopened.dead_rating_rows == 0 and reopened.rating_count == 4
    assert dataset_triples(store.data_dir) == expected


def test_a_user_found_gone_on_refresh_loses_their_ratings_but_a_failure_changes_nothing(
        store: DatasetStore) -> None:
    store.commit_batch([scraped("alice", film("heat", 9)), scraped("bob", film("heat", 2))],
                       now=NOW)
    store.commit_batch([UserScrapeRecord("bob", ScrapeStatus.FAILED),
                        UserScrapeRecord("alice", ScrapeStatus.NOT_FOUND)], now=NOW)
    assert dataset_triples(store.data_dir) == {("bob", "heat", 2)}
    assert store.is_known("alice") and store.user_state("alice").status is ScrapeStatus.NOT_FOUND


def test_torn_tail_of_an_interrupted_append_is_cut_off(store: DatasetStore) -> None:
    store.commit_batch([scraped("alice", film("heat", 9))], now=NOW)
    with open(store.data_dir / layout.RATINGS_FILE, "ab") as handle:
        handle.write(b"0,5,1\n0,7")
    with open(store.data_dir / layout.USER_UPDATES_FILE, "ab") as handle:
        handle.write(b"0,alice,2026-11-0")
    reopened = DatasetStore.open(store.data_dir)
    assert dataset_triples(store.data_dir) == {("alice", "heat", 9)}
    reopened.commit_batch([scraped("bob", film("heat", 3))], now=NOW)
    assert dataset_triples(store.data_dir) == {("alice", "heat", 9), ("bob", "heat", 3)}


def test_a_batch_interrupted_before_its_commit_point_leaves_no_trace(
        store: DatasetStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.commit_batch([scraped("alice", film("heat", 9))], now=NOW)
    clean_dir = store.data_dir.parent / "clean"
    clean = DatasetStore.open(clean_dir, create=True)
    clean.commit_batch([scraped("alice", film("heat", 9))], now=NOW)
    clean.commit_batch([scraped("bob", film("alien", 3), film("heat", 4))], now=NOW)

    with monkeypatch.context() as patch:  # killed just before the state file is replaced
        kill_at_replace(patch, target_is=store.data_dir / layout.STATE_FILE)
        with pytest.raises(Killed):
            store.commit_batch([scraped("bob", film("alien", 3), film("heat", 4))], now=NOW)
    reopened = DatasetStore.open(store.data_dir)
    assert not reopened.is_known("bob")
    assert not list((store.data_dir / layout.BACKUP_DIR).glob(".*"))
    reopened.commit_batch([scraped("bob", film("alien", 3), film("heat", 4))], now=NOW)
    for name in (layout.RATINGS_FILE, layout.USER_MAPPINGS_FILE, layout.FILM_MAPPINGS_FILE,
                 layout.TRANSLATED_FILE, layout.UNRATED_FILE, layout.USER_UPDATES_FILE):
        assert (store.data_dir / name).read_bytes() == (clean_dir / name).read_bytes(), name


def test_translated_ratings_are_safe_in_a_spreadsheet_but_mappings_keep_the_title(
        store: DatasetStore) -> None:
    store.commit_batch([scraped("alice", film("sum", 8, title="=SUM(A1:A9)"),
                           film("minus", 6, title="-1"))], now=NOW)
    translated = read_rows(store.data_dir / layout.TRANSLATED_FILE)
    assert [row[1] for row in translated[1:]] == ["'=SUM(A1:A9)", "'-1"]
    films = read_rows(store.data_dir / layout.FILM_MAPPINGS_FILE)
    assert [row[4] for row in films[1:]] == ["=SUM(A1:A9)", "-1"]


@pytest.mark.parametrize("name, edit, message, line", [
    (layout.RATINGS_FILE, lambda text: text.replace("user_id,film_id,rating", "user,film,rating"),
     "wrong header", 1),
    (layout.RATINGS_FILE, lambda text: text.replace("1,1,6", "1,1,6.5"), "not an integer", 3),
    (layout.RATINGS_FILE, lambda text: text.replace("1,1,6", "1,1,11"), "out of range", 3),
    (layout.RATINGS_FILE, lambda text: text.replace("1,1,6", "1,9,6"), "unknown id", 3),
    (layout.RATINGS_FILE, lambda text: text.replace("1,1,6", "1,0,6"), "duplicate", 4),
    (layout.USER_MAPPINGS_FILE, lambda text: text.replace("1,bob", "1,../bob"),
     "invalid username", 3),
    (layout.USER_UPDATES_FILE, lambda text: text.replace(",ok,", ",great,", 1),
     "unknown status", 2),
])
def test_hand_edited_files_give_one_clear_error_naming_file_and_line(
        store: DatasetStore, name: str, edit, message: str, line: int) -> None:
    store.commit_batch([scraped("alice", film("heat", 9)),
                        scraped("bob", film("alien", 6), film("heat", 7))], now=NOW)
    path = store.data_dir / name
    path.write_text(edit(path.read_text()))
    with pytest.raises(DatasetError) as caught:
        load_ratings_dataset(store.data_dir)
        DatasetStore.open(store.data_dir)
    assert message in str(caught.value)
    assert caught.value.line == line and Path(caught.value.path) == path


def test_a_truncated_file_is_an_error_not_silently_accepted(store: DatasetStore) -> None:
    store.commit_batch([scraped("alice", film("heat", 9), film("alien", 7))], now=NOW)
    path = store.data_dir / layout.RATINGS_FILE
    before = path.read_bytes()
    path.write_bytes(before[:-6])
    with pytest.raises(DatasetError, match="truncated"):
        DatasetStore.open(store.data_dir)
    assert path.read_bytes() == before[:-6]


def test_a_missing_dataset_or_state_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no dataset"):
        DatasetStore.open(tmp_path / "nothing")
    store = DatasetStore.open(tmp_path / "data", create=True)
    (store.data_dir / layout.STATE_FILE).unlink()
    with pytest.raises(DatasetError, match="dataset_state.json"):
        DatasetStore.open(store.data_dir)


def test_archive_moves_the_old_dataset_aside_and_keeps_every_file(store: DatasetStore) -> None:
    store.commit_batch([scraped("alice", film("heat", 9))], now=NOW)
    before = {name: (store.data_dir / name).read_bytes() for name in layout.HEADERS}
    archived = archive_dataset(store.data_dir, now=NOW)
    assert archived is not None and archived.parent.name == layout.ARCHIVE_DIR
    for name, content in before.items():
        assert (archived / name).read_bytes() == content
        assert not (store.data_dir / name).exists()
    assert list((archived / layout.BACKUP_DIR).glob("raw_user_ratings_*.csv"))
    assert archive_dataset(store.data_dir) is None


def test_import_of_a_published_ratings_file(tmp_path: Path) -> None:
    ratings = tmp_path / "ratings_export.csv"
    ratings.write_text("user_id,movie_id,rating_val\n"
                       "Alice,heat,9\nalice,alien,4\nbob,heat,7\n"
                       "bob,../etc,5\ncarol,heat,\nbob,heat,8\n")
    movies = tmp_path / "movie_data.csv"
    movies.write_text("movie_id,movie_title,year_released,genres\n"
                      "heat,Heat,1995.0,Crime|Drama\nalien,=Alien,1979,Horror\n")
    summary = import_published_dataset(ratings, tmp_path / "data", movies_path=movies, now=NOW)
    assert (summary.ratings, summary.users, summary.films, summary.rows_dropped) == (3, 2, 2, 3)
    assert dataset_triples(tmp_path / "data") == {("alice", "heat", 9), ("alice", "alien", 4),
                                             ("bob", "heat", 8)}
    films = read_rows(tmp_path / "data" / layout.FILM_MAPPINGS_FILE)
    assert films[1:] == [["0", "heat", "", "", "Heat", "1995", "Crime|Drama", *NO_METADATA[1:]],
                         ["1", "alien", "", "", "=Alien", "1979", "Horror", *NO_METADATA[1:]]]
    translated = read_rows(tmp_path / "data" / layout.TRANSLATED_FILE)
    assert translated[2][:6] == ["alice", "'=Alien", "1979", "alien", "2", "4"]
    store = DatasetStore.open(tmp_path / "data")
    store.commit_batch([scraped("dave", film("heat", 10))], now=NOW)
    assert ("dave", "heat", 10) in dataset_triples(tmp_path / "data")


def test_import_of_the_shared_500k_sample(tmp_path: Path, shared_dataset_dir: Path) -> None:
    summary = import_published_dataset(shared_dataset_dir / "ratings.csv.gz", tmp_path / "data",
                                       movies_path=shared_dataset_dir / "movies.csv.gz", now=NOW)
    assert (summary.ratings, summary.users, summary.films) == (509_463, 2_187, 4_974)
    data = load_ratings_dataset(tmp_path / "data")
    assert len(data.rating) == 509_463 and data.n_users == 2_187 and data.n_films == 4_974
    assert np.isclose(data.rating.mean(), 7.07, atol=0.01)
    state = json.loads((tmp_path / "data" / layout.STATE_FILE).read_text())
    assert state["committed_bytes"][layout.RATINGS_FILE] == (
        tmp_path / "data" / layout.RATINGS_FILE).stat().st_size


# --- one definition of the translated row and of CSV quoting ----------------------------------

def test_an_import_writes_the_translated_rows_and_quoting_the_store_writes(tmp_path: Path) -> None:
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("user_id,movie_id,rating_val\nann,heat,9\nann,ran,4\nbo,heat,7\n")
    movies = tmp_path / "movies.csv"
    movies.write_bytes(b'movie_id,movie_title,year_released\nheat,"=He\ratt",1995\n'
                       b'ran,"Ran, again",\n')
    import_published_dataset(ratings, tmp_path / "data", movies_path=movies, now=NOW)
    data_dir = tmp_path / "data"
    films = {row[1]: row for row in read_rows(data_dir / layout.FILM_MAPPINGS_FILE)[1:]}
    expected = [layout.translated_row(user, films[slug][4], films[slug][5], slug, rating, None)
                for user, slug, rating in (("ann", "heat", 9), ("ann", "ran", 4),
                                           ("bo", "heat", 7))]
    assert layout.csv_bytes(expected, layout.TRANSLATED_HEADER) == (
        data_dir / layout.TRANSLATED_FILE).read_bytes()
    # Only the row holding a lone "\r" is quoted whole, as the store writes it.
    assert (data_dir / layout.FILM_MAPPINGS_FILE).read_bytes() == (
        ",".join(layout.FILMS_HEADER).encode() + b"\n"
        + b'"0","heat","","","=He\ratt","1995"' + b',""' * 8 + b"\n"
        + b'1,ran,,,"Ran, again",' + b"," * 8 + b"\n")
    assert layout.csv_bytes([(0, "=He\ratt", 1995), (1, "Ran, again", "")]) == (
        b'"0","=He\ratt","1995"\n1,"Ran, again",\n')


def test_the_published_ratings_reader_validates_and_keeps_the_last_repeat(tmp_path: Path) -> None:
    source = tmp_path / "ratings.csv"
    source.write_text("user_id,movie_id,rating_val\nAlice,heat,9\n bob ,ran ,4\nbob,../x,5\n"
                      "carl,heat,none\ncarl,heat,\nalice,heat,7\ndan,ran,6.0\n")
    published = read_published_ratings(source)
    assert list(zip(published.usernames, published.slugs, published.ratings.tolist())) == [
        ("bob", "ran", 4), ("alice", "heat", 7), ("dan", "ran", 6)]
    assert published.rows_dropped == 4
    source.write_text("user_id,movie_id,rating_val\nbob,heat,-\n")
    with pytest.raises(DatasetError, match="holds no valid rating"):
        read_published_ratings(source)


# --- a dataset written before the `dataset` package -----------------------------------------------
# tests/fixtures/dataset_v1 was written by the store as it was before this package: three
# batches (a refresh of alice left two dead rows; carol gone, dave failed, erin private;
# a formula title and a title with a lone "\r"). FIXTURE_BATCHES replays them.

def _fixture_film(slug: str, rating: int | None, title: str, year: int | None, liked: bool,
                  lid: str, letterboxd_id: int) -> ScrapedFilm:
    return ScrapedFilm(slug=slug, lid=lid, letterboxd_id=letterboxd_id, title=title, year=year,
                       rating=rating, liked=liked)


def _fixture_batches() -> list[tuple[list[UserScrapeRecord], datetime, int | None]]:
    heat = ("heat-1995", "Heat", 1995)
    alien = ("alien", "Alien", 1979)
    ran = ("ran", "Ran", 1985)

    def seen(known: tuple[str, str, int], rating: int | None, liked: bool) -> ScrapedFilm:
        ids = {"heat-1995": ("2bJe", 51627), "alien": ("2b8o", 51714), "ran": ("29kK", 44466)}
        return _fixture_film(known[0], rating, known[1], known[2], liked, *ids[known[0]])

    return [
        ([UserScrapeRecord("alice", ScrapeStatus.OK, (
            seen(heat, 9, True), seen(alien, None, False),
            _fixture_film("sum-of-all", 6, "=SUM(A1:A9)", None, False, "x1", 9001)), "Alice"),
          UserScrapeRecord("bob", ScrapeStatus.OK, (
              seen(alien, 8, False), seen(heat, 7, False),
              _fixture_film("lone-return", 5, "Carriage\rReturn", 2020, True, "x2", 9002)),
              "Bob, B."),
          UserScrapeRecord("carol", ScrapeStatus.NOT_FOUND),
          UserScrapeRecord("dave", ScrapeStatus.FAILED)], NOW, 2),
        ([UserScrapeRecord("erin", ScrapeStatus.PRIVATE, (), "Erin"),
          UserScrapeRecord("frank", ScrapeStatus.OK, (seen(heat, 10, True), seen(ran, 9, False)),
                           "Frank")], NOW + timedelta(hours=1), 3),
        ([UserScrapeRecord("alice", ScrapeStatus.OK, (seen(heat, 8, True), seen(ran, 7, False)),
                           "Alice")], NOW + timedelta(days=40), None),
    ]


FIXTURE_TRIPLES = {("alice", "heat-1995", 8), ("alice", "ran", 7), ("bob", "alien", 8),
                   ("bob", "heat-1995", 7), ("bob", "lone-return", 5),
                   ("frank", "heat-1995", 10), ("frank", "ran", 9)}


def test_the_store_writes_the_fixture_as_it_was_but_for_the_film_metadata_columns(
        tmp_path: Path) -> None:
    """Format 2 differs from the fixture's format 1 only where the format says: the film
    mappings' extra (empty) metadata columns, their size and the format in the state."""
    store = DatasetStore.open(tmp_path / "data", create=True)
    for records, now, page in _fixture_batches():
        store.commit_batch(records, now=now, next_members_page=page)
    written, fixture = snapshot(tmp_path / "data"), snapshot(FIXTURE_DATASET)
    films, state = layout.FILM_MAPPINGS_FILE, layout.STATE_FILE
    assert {name: data for name, data in written.items() if name not in (films, state)} == {
        name: data for name, data in fixture.items() if name not in (films, state)}
    old_rows, new_rows = read_rows(FIXTURE_DATASET / films), read_rows(tmp_path / "data" / films)
    assert new_rows[0] == list(layout.FILMS_HEADER)
    assert [row[:7] for row in new_rows[1:]] == old_rows[1:]
    assert all(set(row[7:]) == {""} for row in new_rows[1:])
    old_state, new_state = json.loads(fixture[state]), json.loads(written[state])
    assert (old_state["format"], new_state["format"]) == (1, 2)
    assert new_state["committed_bytes"][films] == len(written[films])


def test_a_format_1_dataset_is_upgraded_in_place_by_the_first_writer(tmp_path: Path) -> None:
    data_dir = copy_fixture_dataset(tmp_path / "data")
    before = snapshot(data_dir)
    assert load_film_table(data_dir)["runtime"].isna().all()  # readers read format 1 as is
    assert snapshot(data_dir) == before
    DatasetStore.open(data_dir)
    after = snapshot(data_dir)
    films = layout.FILM_MAPPINGS_FILE
    assert {name for name in after if after[name] != before.get(name)} == {
        films, layout.STATE_FILE}
    assert read_rows(data_dir / films)[0] == list(layout.FILMS_HEADER)
    assert [row[:7] for row in read_rows(data_dir / films)] == read_rows(FIXTURE_DATASET / films)
    assert json.loads(after[layout.STATE_FILE])["format"] == layout.FORMAT_VERSION
    assert dataset_triples(data_dir) == FIXTURE_TRIPLES


@pytest.mark.parametrize("killed_at", [0, 1, 2])
def test_an_upgrade_killed_at_any_rename_ends_whole(tmp_path: Path, monkeypatch,
                                                    killed_at: int) -> None:
    data_dir = copy_fixture_dataset(tmp_path / "data")
    kill_at_replace(monkeypatch, killed_at)
    with pytest.raises(Killed):
        DatasetStore.open(data_dir)
    monkeypatch.undo()
    DatasetStore.open(data_dir)
    assert read_rows(data_dir / layout.FILM_MAPPINGS_FILE)[0] == list(layout.FILMS_HEADER)
    assert dataset_triples(data_dir) == FIXTURE_TRIPLES


def test_a_dataset_written_before_the_package_loads_opens_and_continues(tmp_path: Path) -> None:
    data_dir = copy_fixture_dataset(tmp_path / "data")
    data = load_ratings_dataset(data_dir)
    assert dataset_triples(data_dir) == FIXTURE_TRIPLES
    assert data.usernames == ["alice", "bob", "carol", "dave", "erin", "frank"]
    assert data.films["title"].tolist() == ["Heat", "Alien", "=SUM(A1:A9)", "Carriage\rReturn",
                                            "Ran"]
    assert data.unrated_user.tolist() == []  # alice's watched-unrated alien was refreshed away

    store = DatasetStore.open(data_dir)
    assert (store.rating_count, store.dead_rating_rows, store.next_members_page) == (7, 2, 3)
    assert store.unfinished_users() == ["dave"] and store.user_state("carol").status is (
        ScrapeStatus.NOT_FOUND)
    store.commit_batch([scraped("dave", film("heat-1995", 6), film("ran", None))],
                       now=NOW + timedelta(days=41), next_members_page=4)
    assert store.compact() == 2
    assert dataset_triples(data_dir) == FIXTURE_TRIPLES | {("dave", "heat-1995", 6)}
    reopened = DatasetStore.open(data_dir)
    assert (reopened.rating_count, reopened.dead_rating_rows, reopened.unfinished_users()) == (
        8, 0, [])
    assert read_rows(data_dir / layout.RATINGS_FILE)[1:] == [
        ["1", "1", "8"], ["1", "0", "7"], ["1", "3", "5"], ["5", "0", "10"], ["5", "4", "9"],
        ["0", "0", "8"], ["0", "4", "7"], ["3", "0", "6"]]
    assert load_ratings_dataset(data_dir).unrated_user.tolist() == [3]
