"""The dataset as columnar files for analytics engines: readable names, no ids to join.

`ratings` has one row per current rating (username, slug, title, year, rating, stars,
liked, then every other column of the film table, whatever the table holds) and
`watched_unrated` one row per film logged without a rating. Parquet keeps the types;
CSV is for tools without Parquet. Both are machine-facing, so text is kept exactly
as scraped (no spreadsheet prefixes). Rows are written in chunks straight into a
temporary file that then replaces the target, so memory stays bounded and a reader
never sees half a file.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from dataset.loading import RatingsData
from errors import BadInputError
from films.matching import FilmCatalogue
from safe_files import atomic_writer

EXPORT_FORMATS = ("parquet", "csv")
RATINGS_NAME = "ratings"
UNRATED_NAME = "watched_unrated"
# The first columns, in this order; the film table's other columns follow.
FILM_COLUMNS = ("slug", "title", "year")
RATING_COLUMNS = ("rating", "stars", "liked")
CHUNK_ROWS = 1_000_000   # rows gathered at a time: bounds memory on large datasets


def export_paths(folder: Path, output_format: str) -> dict[str, Path]:
    return {name: folder / f"{name}.{output_format}" for name in (RATINGS_NAME, UNRATED_NAME)}


def check_export_folder(folder: Path, output_format: str) -> None:
    """Refuse, before anything is read or written, a folder the export cannot fill:
    a file or link where the folder should be, a missing parent, or a target file that
    is not a regular file (a device or a folder is never replaced)."""
    try:
        mode = os.lstat(folder).st_mode
    except FileNotFoundError:
        if not folder.parent.is_dir():
            raise BadInputError(f"cannot export into {folder}: the folder {folder.parent} "
                                "does not exist") from None
        return
    if not stat.S_ISDIR(mode):
        raise BadInputError(f"cannot export into {folder}: it is not a folder (a file, a "
                            "device or a link)")
    for path in export_paths(folder, output_format).values():
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(mode):
            raise BadInputError(f"cannot write {path}: it is not a regular file, and is "
                                "never replaced")


def _film_arrays(films: pd.DataFrame, taken: set[str]) -> dict[str, pa.Array]:
    """Every column of the film table as an Arrow array by film id: the first ones, then
    the rest in the table's order (renamed film_<name> if a rating column has its name)."""
    names = [*FILM_COLUMNS, *(name for name in films.columns if name not in FILM_COLUMNS)]
    # Titles and years as shown everywhere: spelled out from the slug where unknown.
    catalogue = FilmCatalogue(films)
    films = films.assign(title=catalogue.titles,
                         year=pd.array([year or None for year in catalogue.years.tolist()],
                                       dtype="Int64"))
    arrays = {}
    for name in names:
        column = films[name]
        try:
            array = pa.Array.from_pandas(column)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: keep them as text
            array = pa.Array.from_pandas(column.astype(str))
        arrays[f"film_{name}" if name in taken else name] = array
    return arrays


def _chunks(data: RatingsData, users: np.ndarray, films: np.ndarray, rated: bool
            ) -> Iterator[pa.Table]:
    """The rows of one file, CHUNK_ROWS at a time, as Arrow tables."""
    usernames = pa.array(data.usernames, type=pa.string())
    film_arrays = _film_arrays(data.films, {"username", *RATING_COLUMNS})
    for start in range(0, max(len(users), 1), CHUNK_ROWS):
        part = slice(start, start + CHUNK_ROWS)
        film_ids = pa.array(films[part], type=pa.int64())
        columns = {"username": usernames.take(pa.array(users[part], type=pa.int64()))}
        columns.update({name: array.take(film_ids)
                        for name, array in film_arrays.items() if name in FILM_COLUMNS})
        if rated:
            ratings = data.rating[part].astype(np.int8)
            columns["rating"] = pa.array(ratings)
            columns["stars"] = pa.array(ratings / 2)
            columns["liked"] = (pa.nulls(len(ratings), pa.bool_()) if data.liked is None
                                else pa.array(data.liked[part], type=pa.bool_()))
        columns.update({name: array.take(film_ids)
                        for name, array in film_arrays.items() if name not in FILM_COLUMNS})
        yield pa.table(columns)


def _write(handle: BinaryIO, tables: Iterator[pa.Table], output_format: str) -> None:
    # Imported here: the builder imports this module for its flags, and its every start
    # need not load the file writers.
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    first = next(tables)
    writer = (pq.ParquetWriter(handle, first.schema) if output_format == "parquet"
              else pa_csv.CSVWriter(handle, first.schema))
    with writer:
        writer.write_table(first)
        for table in tables:
            writer.write_table(table)


def export_dataset(data: RatingsData, folder: Path, output_format: str) -> dict[str, int]:
    """Write the files into `folder` (made if missing); rows written, by file name."""
    if output_format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {output_format!r}")
    folder.mkdir(exist_ok=True)
    sources = {RATINGS_NAME: (data.user_index, data.film_index, True),
               UNRATED_NAME: (data.unrated_user, data.unrated_film, False)}
    written = {}
    for name, path in export_paths(folder, output_format).items():
        users, films, rated = sources[name]
        with atomic_writer(path) as handle:
            _write(handle, _chunks(data, np.asarray(users), np.asarray(films), rated),
                   output_format)
        written[path.name] = len(users)
    return written
