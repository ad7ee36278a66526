"""The cache beside a dataset, part by part: the film table's binary copy, the stamps that
spare a second hash of a checked file, and the index's lookups with its upgrade from
older formats. Each stale, damaged or tampered part is rebuilt or refused, never trusted."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataset import layout
from dataset.loading import dataset_fingerprint, load_film_table
from errors import ModelFileError
from films.matching import FilmCatalogue
from films.name_lookup import NameLookup
from load_save_and_translate_data import DatasetStore, ScrapeStatus, UserScrapeRecord
from read_in_data import FilmTile
from recommender import cache, file_stamps, model_file
from recommender.dataset_index import INDEX_META_FILE
from recommender.film_copy import COPY_FILE, COPY_META_FILE, load_film_copy, save_film_copy
from recommender.model_file import ARRAYS_FILE, load_model, save_model
from recommending.filters import FilmFilter, allowed_films
from recommending.picks import recommend
from recommending.taste import taste_from_dataset
from tests.helpers import FIXTURE_DATASET

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
N_FILMS = 60
# Film 0 is also stored under an older slug with the same boxd.it id: one film, two slugs.
ALIAS = FilmTile(slug="film-0-old", letterboxd_id=1000, lid="L000", title="Film 0",
                 year=1950, rating=9, liked=False)


def film(index: int, rating: int | None) -> FilmTile:
    return FilmTile(slug=f"film-{index}", letterboxd_id=1000 + index, lid=f"L{index:03d}",
                    title=f"Film {index}", year=1950 + index % 60, rating=rating, liked=False)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 users in two tastes, the model fitted and cached."""
    rng = np.random.default_rng(5)
    data_dir = tmp_path_factory.mktemp("dataset")
    records = []
    for user in range(60):
        chosen = rng.choice(N_FILMS, size=25, replace=False)
        tiles = [film(int(index), 9 if index % 2 == user % 2 else 3) for index in chosen]
        records.append(UserScrapeRecord(f"user{user}", ScrapeStatus.OK, tuple(tiles)))
    DatasetStore.open(data_dir, create=True).commit_batch(records, now=NOW)
    cache.load_or_fit(data_dir)
    return data_dir


@pytest.fixture
def copy(fitted: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fitted, tmp_path / "copy"))


def picks_of(data_dir: Path, username: str = "user0") -> list[str]:
    data = cache.load_or_fit(data_dir)
    taste = taste_from_dataset(data, username)
    chosen, _ = recommend(data, taste, allowed_films(data, FilmFilter()), top=10)
    return [pick.slug for pick in chosen]


def no_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    def fit(*args, **kwargs):
        raise AssertionError("refitted")

    monkeypatch.setattr(cache, "fit_model", fit)


def count_csv_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    reads: list[Path] = []

    def reading(data_dir, *args, **kwargs):
        reads.append(data_dir)
        return load_film_table(data_dir, *args, **kwargs)

    monkeypatch.setattr(cache, "load_film_table", reading)
    return reads


# --- the film table's copy ----------------------------------------------------------------

FULL_TABLE = (
    "film_id,slug,lid,letterboxd_id,title,year,genres,runtime,language,countries,"
    "content_type,average_rating,rating_count,details_fetched\n"
    "0,seven-samurai,2bfK,51800,Seven Samurai,1954,Action|Drama,207,ja,JP,film,4.62,"
    "412345,2026-11-01T10:00:00Z\n"
    "1,spider-man-no-way-home,,,,,,,,,,,,\n"
    "2,twin-peaks,2b9e,,\"Twin Peaks, \"\"the\"\" series\",1990,Drama,47,en,US|GB,tv,4.1,12,\n"
    "3,amelie,2aQy,42000,Amélie,2001,Comedy,122,fr,FR,,,,\n")


def _full_table(tmp_path: Path) -> Path:
    (tmp_path / layout.FILM_MAPPINGS_FILE).write_text(FULL_TABLE, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("source", ["every column", "format 1", "scraped"])
def test_the_copy_reads_back_as_the_csv_does(source: str, tmp_path: Path, fitted: Path) -> None:
    data_dir = {"every column": lambda: _full_table(tmp_path), "format 1": lambda: FIXTURE_DATASET,
                "scraped": lambda: fitted}[source]()
    films = load_film_table(data_dir)
    save_film_copy(tmp_path, films, "fingerprint")
    read = load_film_copy(tmp_path, "fingerprint")
    pd.testing.assert_frame_equal(read, films)
    size = (data_dir / layout.FILM_MAPPINGS_FILE).stat().st_size
    pd.testing.assert_frame_equal(read, load_film_table(data_dir, size, validated_before=True))


def test_a_cached_run_reads_the_copy_not_the_csv(copy: Path, monkeypatch) -> None:
    before = picks_of(copy)
    reads = count_csv_reads(monkeypatch)
    no_fit(monkeypatch)
    assert picks_of(copy) == before
    assert reads == []


def _flip_byte(path: Path) -> None:
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 1
    path.write_bytes(bytes(payload))


def _other_columns(model_dir: Path) -> None:
    """A copy whose JSON vouches for it, with the year as text: the types are checked."""
    films = load_film_copy(model_dir, json.loads((model_dir / COPY_META_FILE).read_text())[
        "fingerprint"])
    table = pa.Table.from_pandas(films.astype({"year": str}), preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    (model_dir / COPY_FILE).write_bytes(sink.getvalue().to_pybytes())
    meta = json.loads((model_dir / COPY_META_FILE).read_text())
    meta["sha256"] = hashlib.sha256((model_dir / COPY_FILE).read_bytes()).hexdigest()
    (model_dir / COPY_META_FILE).write_text(json.dumps(meta))


COPY_DAMAGES = {
    "copy missing": lambda d: (d / COPY_FILE).unlink(),
    "copy truncated": lambda d: (d / COPY_FILE).write_bytes((d / COPY_FILE).read_bytes()[:999]),
    "a flipped byte": lambda d: _flip_byte(d / COPY_FILE),
    "JSON not JSON": lambda d: (d / COPY_META_FILE).write_text("{"),
    "JSON of other data": lambda d: (d / COPY_META_FILE).write_text(json.dumps(
        {**json.loads((d / COPY_META_FILE).read_text()), "fingerprint": "other"})),
    "copy a FIFO": lambda d: ((d / COPY_FILE).unlink(), os.mkfifo(d / COPY_FILE)),
    "copy a symlink": lambda d: ((d / COPY_FILE).rename(d / "aside"),
                                 (d / COPY_FILE).symlink_to(d / "aside")),
    "a column of another type, vouched for": _other_columns,
}


@pytest.mark.parametrize("damage", COPY_DAMAGES.values(), ids=COPY_DAMAGES.keys())
def test_a_damaged_copy_is_read_from_the_csv_and_written_again(copy: Path, monkeypatch,
                                                              damage) -> None:
    before = picks_of(copy)
    model_dir = copy / layout.MODEL_DIR
    damage(model_dir)
    reads = count_csv_reads(monkeypatch)
    no_fit(monkeypatch)
    assert picks_of(copy) == before
    assert reads == [copy]
    if (model_dir / COPY_FILE).is_fifo() or (model_dir / COPY_FILE).is_symlink():
        return  # not a regular file: never written over, so the CSV is read each time
    pd.testing.assert_frame_equal(load_film_copy(model_dir, dataset_fingerprint(copy)),
                                  load_film_table(copy))


def test_a_stale_copy_is_replaced_with_the_refit(copy: Path) -> None:
    store = DatasetStore.open(copy)
    store.commit_batch([UserScrapeRecord("newcomer", ScrapeStatus.OK,
                                         (film(1, 9), film(3, 8), ALIAS))], now=NOW)
    data = cache.load_or_fit(copy)
    assert data.model.n_films == N_FILMS + 1
    pd.testing.assert_frame_equal(
        load_film_copy(copy / layout.MODEL_DIR, dataset_fingerprint(copy)), load_film_table(copy))


# --- stamps: a checked file is not hashed again until it changes --------------------------

def _model_folder(fitted: Path, tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "model"
    fingerprint = dataset_fingerprint(fitted)
    save_model(load_model(fitted / layout.MODEL_DIR, fingerprint), folder, fingerprint)
    return folder, fingerprint


def _hashing_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def sha256(*args):
        raise AssertionError("hashed again")

    monkeypatch.setattr(model_file.hashlib, "sha256", sha256)


def test_a_saved_file_loads_without_a_second_hash(fitted: Path, tmp_path: Path, monkeypatch
                                                  ) -> None:
    folder, fingerprint = _model_folder(fitted, tmp_path)
    assert file_stamps.stamp_path(folder / ARRAYS_FILE).exists()
    _hashing_forbidden(monkeypatch)
    loaded = load_model(folder, fingerprint)
    for name, array in load_model(fitted / layout.MODEL_DIR, fingerprint).arrays.items():
        np.testing.assert_array_equal(loaded.arrays[name], array)


def test_a_run_stamps_a_file_it_checked_once_the_file_has_settled(
        fitted: Path, tmp_path: Path, monkeypatch) -> None:
    folder, fingerprint = _model_folder(fitted, tmp_path)
    stamp = file_stamps.stamp_path(folder / ARRAYS_FILE)
    stamp.unlink()
    load_model(folder, fingerprint)
    assert not stamp.exists()  # written a moment ago: a write in the same tick could hide
    monkeypatch.setattr(file_stamps, "SETTLED_SECONDS", 0.0)
    time.sleep(0.05)
    load_model(folder, fingerprint)
    assert stamp.exists()
    _hashing_forbidden(monkeypatch)
    load_model(folder, fingerprint)


def _same_bytes_other_times(path: Path) -> None:
    """A byte flipped in place, the file's size and modification time put back."""
    stat = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(stat.st_size // 2)
        byte = handle.read(1)
        handle.seek(stat.st_size // 2)
        handle.write(bytes([byte[0] ^ 1]))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_ctime_ns != stat.st_ctime_ns  # what gives it away


def _replaced_by_a_copy(path: Path) -> None:
    shutil.copy2(path, path.with_name("copy"))  # the same bytes and times, another inode
    os.replace(path.with_name("copy"), path)


STAMP_CHANGES = {
    "a byte flipped, times put back": (_same_bytes_other_times, True),
    "the file truncated": (lambda p: p.write_bytes(p.read_bytes()[:5000]), True),
    "replaced by a copy of itself": (_replaced_by_a_copy, False),
    "the stamp names another hash": (lambda p: file_stamps.stamp_path(p).write_text(json.dumps(
        {**json.loads(file_stamps.stamp_path(p).read_text()), "sha256": "0" * 64})), False),
    "the stamp is not JSON": (lambda p: file_stamps.stamp_path(p).write_text("["), False),
    "the stamp is a FIFO": (lambda p: (file_stamps.stamp_path(p).unlink(),
                                       os.mkfifo(file_stamps.stamp_path(p))), False),
}


@pytest.mark.parametrize("change, damaged", STAMP_CHANGES.values(), ids=STAMP_CHANGES.keys())
def test_a_change_after_the_stamp_means_the_full_check(fitted: Path, tmp_path: Path,
                                                       monkeypatch, change, damaged: bool
                                                       ) -> None:
    folder, fingerprint = _model_folder(fitted, tmp_path)
    time.sleep(0.05)  # ticks of the file system's clock between the save and the change
    path = folder / ARRAYS_FILE
    assert file_stamps.stamp_path(path).exists()
    change(path)
    hashes: list[bytes] = []
    real_sha256 = model_file.hashlib.sha256

    def counting(data=b""):
        hashes.append(b"")
        return real_sha256(data)

    monkeypatch.setattr(model_file.hashlib, "sha256", counting)
    if damaged:
        with pytest.raises(ModelFileError):
            load_model(folder, fingerprint)
    else:
        load_model(folder, fingerprint)
    assert hashes  # the file was hashed again, whole


# --- the index: lookups, and older formats upgraded in place ------------------------------

def test_members_are_found_by_name_whatever_the_case(fitted: Path) -> None:
    data = cache.load_or_fit(fitted)
    assert data.user_id("user7") == data.user_id("USER7") == 7
    assert data.user_id("nobody") is None and data.user_id("user7" * 4) is None


def _as_older_index(data_dir: Path, index_format: int) -> dict:
    """The index as formats 4 and 3 stored it: the usernames in the JSON, no lookups, and
    in format 3 no canonical film ids."""
    model_dir = data_dir / layout.MODEL_DIR
    meta = json.loads((model_dir / INDEX_META_FILE).read_text())
    removed = ["user_names", "user_ids", "lid_names", "lid_films"]
    if index_format == 3:
        removed.append("film_canonical")
    for name in removed:
        (model_dir / meta["folder"] / f"{name}.npy").unlink()
        del meta["lengths"][name]
    users = pd.read_csv(data_dir / layout.USER_MAPPINGS_FILE, dtype=str, keep_default_na=False)
    older = {**meta, "format": index_format, "usernames": users["username"].tolist(),
             "n_films": len(load_film_table(data_dir))}
    (model_dir / INDEX_META_FILE).write_text(json.dumps(older))
    return meta


@pytest.mark.parametrize("index_format", [4, 3])
def test_an_older_index_is_upgraded_without_a_refit(copy: Path, monkeypatch,
                                                    index_format: int) -> None:
    before = picks_of(copy)
    _as_older_index(copy, index_format)
    no_fit(monkeypatch)
    assert picks_of(copy) == before
    meta = json.loads((copy / layout.MODEL_DIR / INDEX_META_FILE).read_text())
    assert meta["format"] == 5 and "usernames" not in meta
    assert picks_of(copy) == before  # and the upgraded files read back


def test_a_format_3_index_of_a_film_under_two_slugs_means_a_refit(copy: Path) -> None:
    DatasetStore.open(copy).commit_batch(
        [UserScrapeRecord("newcomer", ScrapeStatus.OK, (film(1, 9), film(3, 8), ALIAS))],
        now=NOW)
    data = cache.load_or_fit(copy)
    slugs = data.films["slug"].tolist()
    alias, original = slugs.index(ALIAS.slug), slugs.index("film-0")
    assert data.film_canonical[alias] == original  # one film, two slugs
    fitted_at = (copy / layout.MODEL_DIR / ARRAYS_FILE).stat().st_mtime_ns
    _as_older_index(copy, 3)
    time.sleep(0.01)
    cache.load_or_fit(copy)
    assert (copy / layout.MODEL_DIR / ARRAYS_FILE).stat().st_mtime_ns > fitted_at


def _rewrite(data_dir: Path, name: str, change) -> None:
    meta = json.loads((data_dir / layout.MODEL_DIR / INDEX_META_FILE).read_text())
    path = data_dir / layout.MODEL_DIR / meta["folder"] / f"{name}.npy"
    np.save(path, change(np.load(path)), allow_pickle=False)


LOOKUP_DAMAGES = {
    "usernames out of order": ("user_names", lambda names: names[::-1]),
    "one user id twice": ("user_ids", lambda ids: np.full_like(ids, ids[0])),
    "a lid's film out of range": ("lid_films", lambda ids: ids + N_FILMS),
    "lids as numbers": ("lid_names", lambda names: np.arange(len(names))),
}


@pytest.mark.parametrize("name, change", LOOKUP_DAMAGES.values(), ids=LOOKUP_DAMAGES.keys())
def test_damaged_lookups_mean_a_refit(copy: Path, name: str, change) -> None:
    before = picks_of(copy)
    fitted_at = (copy / layout.MODEL_DIR / ARRAYS_FILE).stat().st_mtime_ns
    _rewrite(copy, name, change)
    time.sleep(0.01)
    assert picks_of(copy) == before
    assert (copy / layout.MODEL_DIR / ARRAYS_FILE).stat().st_mtime_ns > fitted_at


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", max_size=15)


@given(st.lists(names, max_size=40), st.lists(st.one_of(names, st.text(max_size=20)),
                                              max_size=20))
def test_a_lookup_finds_what_a_dict_of_first_positions_finds(stored: list[str],
                                                            asked: list[str]) -> None:
    first: dict[str, int] = {}
    for position, name in enumerate(stored):
        if name:
            first.setdefault(name, position)
    lookup = NameLookup.of(stored)
    assert lookup.is_consistent(len(stored))
    queries = asked + stored
    assert lookup.find(queries).tolist() == [first.get(name, -1) for name in queries]


def test_titles_shown_one_by_one_are_those_shown_for_every_film(tmp_path: Path) -> None:
    catalogue = FilmCatalogue(load_film_table(_full_table(tmp_path)))
    films = list(range(catalogue.size))
    assert catalogue.shown_each(films) == list(zip(catalogue.titles.tolist(),
                                                   catalogue.years.tolist()))
    assert catalogue.shown_each([1]) == [("Spider Man No Way Home", 0)]
    assert catalogue.label(0) == "Seven Samurai (1954)"
