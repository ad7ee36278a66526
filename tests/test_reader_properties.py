"""Property-based tests of the readers of files a person hands us or can edit.

Whatever is cut off, flipped or inserted, the export reader, the dataset readers and
the import reader either read the file or refuse it with their documented error
(ExportError, DatasetError): never another exception, and a refused dataset is left
byte for byte as it was.
"""
from __future__ import annotations

import gzip
import io
import os
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataset import layout
from errors import DatasetError, ExportError
from letterboxd.export_reader import (FILM_LIST_HEADER, RATINGS_HEADER, LetterboxdExport,
                                      parse_film_rows, read_export)
from load_save_and_translate_data import (DatasetStore, PublishedRatings, load_ratings_dataset,
                                          read_published_ratings)
from tests.helpers import film, scraped, snapshot

# Enough to find the cases the example tests missed, quick enough for every run; set
# PROPERTY_EXAMPLES higher to search longer.
EXAMPLES_PER_TEST = int(os.environ.get("PROPERTY_EXAMPLES", "120"))
EXAMPLES = settings(max_examples=EXAMPLES_PER_TEST, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

RATINGS_CSV = ("Date,Name,Year,Letterboxd URI,Rating\n"
               "2020-08-07,Inception,2010,https://boxd.it/1skk,4\n"
               '2020-08-07,"O Brother, Where Art Thou?",2000,https://boxd.it/2b3I,1\n'
               "2025-12-05,Léon: The Professional,1994,https://boxd.it/zzzz,0.5\n")
FILMS_CSV = ("Date,Name,Year,Letterboxd URI\n"
             "2021-01-01,Heat,1995,https://boxd.it/29qU\n")


def export_zip(method: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, text in (("ratings.csv", RATINGS_CSV), ("watched.csv", FILMS_CSV),
                           ("watchlist.csv", FILMS_CSV), ("likes/films.csv", FILMS_CSV)):
            archive.writestr(f"letterboxd-someone-utc/{name}", text)
    return buffer.getvalue()


ZIPS = [export_zip(method) for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED,
                                          zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)]


@st.composite
def damaged_bytes(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` cut short, with bytes overwritten, inserted or removed along the way."""
    data = bytearray(original)
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["overwrite", "insert", "remove"]))
        chunk = draw(st.binary(min_size=1, max_size=8))
        if edit == "overwrite":
            data[at:at + len(chunk)] = chunk
        elif edit == "insert":
            data[at:at] = chunk
        else:
            del data[at:at + len(chunk)]
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


def any_damaged_zip() -> st.SearchStrategy[bytes]:
    return st.sampled_from(ZIPS).flatmap(damaged_bytes)


# --- the export reader -----------------------------------------------------------------

@EXAMPLES
@given(data=any_damaged_zip())
def test_a_damaged_export_zip_reads_or_is_an_export_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.zip"
        path.write_bytes(data)
        try:
            assert isinstance(read_export(path), LetterboxdExport)
        except ExportError as error:
            assert "\n" not in str(error)


@EXAMPLES
@given(ratings=st.one_of(st.binary(max_size=400),
                         damaged_bytes(RATINGS_CSV.encode()),
                         st.text(max_size=300).map(lambda text: (RATINGS_CSV + text).encode())),
       watched=st.one_of(st.binary(max_size=200), damaged_bytes(FILMS_CSV.encode())))
def test_an_unzipped_export_of_any_bytes_reads_or_is_an_export_error(
        ratings: bytes, watched: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "ratings.csv").write_bytes(ratings)
        (Path(folder) / "watched.csv").write_bytes(watched)
        try:
            export = read_export(Path(folder))
        except ExportError as error:
            assert "\n" not in str(error)
        else:
            assert all(1 <= row.rating <= 10 for row in export.ratings)


@EXAMPLES
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
       cell=st.integers(0, 200_000))
def test_export_rows_of_any_text_or_cell_size_parse_or_are_an_export_error(
        text: str, cell: int) -> None:
    for header in (RATINGS_HEADER, FILM_LIST_HEADER):
        source = ",".join(header) + "\n" + text + f"\n2020-01-01,{'x' * cell},2000,u,3\n"
        try:
            parse_film_rows(source, "ratings.csv", header)
        except ExportError as error:
            assert str(error).startswith("ratings.csv")


# --- the dataset readers -----------------------------------------------------------------

@pytest.fixture(scope="module")
def dataset_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A small dataset's files: a refresh left a dead block, one user is unrated only."""
    store = DatasetStore.open(tmp_path_factory.mktemp("dataset") / "data", create=True)
    store.commit_batch([scraped("alice", film("heat", 9), film("alien", None)),
                        scraped("bob", film("alien", 6), film("heat", 7))])
    store.commit_batch([scraped("carol", film("heat", 10), film("brazil", 3)),
                        scraped("alice", film("heat", 8))])
    return {name: (store.data_dir / name).read_bytes()
            for name in (layout.STATE_FILE, *layout.HEADERS)}


DATASET_NAMES = sorted((layout.STATE_FILE, *layout.HEADERS))


@settings(max_examples=EXAMPLES_PER_TEST, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(DATASET_NAMES), data=st.data())
def test_a_damaged_dataset_loads_or_is_a_dataset_error_and_is_not_written(
        dataset_files: dict[str, bytes], name: str, data: st.DataObject) -> None:
    damaged = data.draw(damaged_bytes(dataset_files[name]), label="damaged file")
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        for file_name, content in dataset_files.items():
            (data_dir / file_name).write_bytes(damaged if file_name == name else content)
        try:
            load_ratings_dataset(data_dir)
        except DatasetError:
            pass
        before = snapshot(data_dir)
        try:
            DatasetStore.open(data_dir)
        except DatasetError as error:
            assert "\n" not in str(error)
            assert snapshot(data_dir) == before


# --- the import reader ---------------------------------------------------------------------

PUBLISHED = ("user_id,movie_id,rating_val\n"
             + "".join(f"user{user},film-{film},{1 + (user * film) % 10}\n"
                       for user in range(4) for film in range(5))).encode()


@EXAMPLES
@given(content=st.one_of(damaged_bytes(PUBLISHED), st.binary(max_size=300)),
       gzipped=st.booleans(), damage_after_compression=st.booleans(), data=st.data())
def test_a_damaged_published_ratings_file_reads_or_is_a_dataset_error(
        content: bytes, gzipped: bool, damage_after_compression: bool,
        data: st.DataObject) -> None:
    if gzipped:
        content = gzip.compress(content)
        if damage_after_compression:
            content = data.draw(damaged_bytes(content), label="damaged gzip")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("ratings.csv.gz" if gzipped else "ratings.csv")
        path.write_bytes(content)
        try:
            ratings = read_published_ratings(path)
        except DatasetError as error:
            assert "\n" not in str(error).rstrip("\n")
        else:
            assert isinstance(ratings, PublishedRatings)
            assert ((ratings.ratings >= 1) & (ratings.ratings <= 10)).all()
