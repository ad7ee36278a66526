"""The film table as the recommender reads it, kept beside the model as an Arrow file.

Parsing the film mappings CSV was half of a cached recommendation at 100M ratings:
400,000 films took 0.65 s of CPU with pandas. The same typed columns in Arrow's IPC
file format are mapped, not parsed, and become the same DataFrame (pandas keeps its
text in Arrow arrays already) in milliseconds. The copy is written when the model is
fitted, or when a run finds it missing, stale or damaged (from the CSV, which the
model's fingerprint says is the file validated at fit time). A JSON beside it, written
last, names the dataset fingerprint and the copy's SHA-256, checked as the model's
file is (recommender/file_stamps.py); nothing else about the copy is trusted.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa

from dataset.film_table import INTEGER_COLUMNS
from dataset.layout import FILMS_HEADER
from errors import ModelFileError, UnusableFileError
from recommender.file_stamps import map_file, remember_checked, stamp_saved
from safe_files import parse_json_limited, read_regular_file, write_atomically

COPY_FILE = "film_table.arrow"
COPY_META_FILE = "film_table.json"
COPY_FORMAT = 1
_MAX_META_BYTES = 4096
# Every column of the table as `load_film_table` gives it (the film id is its index).
_COLUMNS = frozenset(FILMS_HEADER) - {"film_id"}
# Arrow's integers come back as pandas' nullable Int64, as the CSV reader types them.
_PANDAS_TYPES = {pa.int64(): pd.Int64Dtype()}


def _arrow_type(column: str) -> pa.DataType:
    """Text as pandas keeps it (large_string), whole numbers as int64 with nulls."""
    return (pa.int64() if column in INTEGER_COLUMNS
            else pa.float64() if column == "average_rating" else pa.large_string())


def save_film_copy(directory: Path, films: pd.DataFrame, fingerprint: str) -> None:
    """Write the copy, then the JSON that vouches for it (each replaced atomically), then
    its stamp."""
    schema = pa.schema([(column, _arrow_type(column)) for column in films.columns])
    table = pa.Table.from_pandas(films, schema=schema, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema.remove_metadata()) as writer:
        writer.write_table(table)
    payload = sink.getvalue()
    write_atomically(directory / COPY_FILE, payload)
    meta = {"format": COPY_FORMAT, "fingerprint": fingerprint, "rows": len(films),
            "sha256": hashlib.sha256(payload).hexdigest()}
    write_atomically(directory / COPY_META_FILE, json.dumps(meta).encode("utf-8"))
    stamp_saved(directory / COPY_FILE, meta["sha256"])


def load_film_copy(directory: Path, fingerprint: str) -> pd.DataFrame:
    """The film table as `dataset.loading.load_film_table` gives it, or ModelFileError if
    the copy is missing, of other data, or damaged."""
    try:
        meta = parse_json_limited(read_regular_file(directory / COPY_META_FILE,
                                                    _MAX_META_BYTES), max_depth=1)
    except (OSError, ValueError, UnusableFileError) as error:
        raise ModelFileError(f"no usable copy of the film table ({error})") from None
    if (not isinstance(meta, dict) or meta.get("format") != COPY_FORMAT
            or meta.get("fingerprint") != fingerprint or not isinstance(meta.get("sha256"), str)):
        raise ModelFileError("the copy of the film table is of other data")
    path = directory / COPY_FILE
    mapped = map_file(path, meta["sha256"])
    try:
        table = pa.ipc.open_file(pa.py_buffer(mapped.payload)).read_all()
        if not mapped.stamped:
            table.validate(full=True)
    except (pa.ArrowException, ValueError) as error:
        raise ModelFileError(f"{path} is not a readable film table ({error})") from None
    if (set(table.column_names) != _COLUMNS or table.num_columns != len(_COLUMNS)
            or table.num_rows != meta.get("rows")
            or any(field.type != _arrow_type(field.name) for field in table.schema)):
        raise ModelFileError(f"{path} holds other columns than the film table")
    if not mapped.stamped:
        remember_checked(path, mapped.identity, meta["sha256"])
    return table.to_pandas(types_mapper=_PANDAS_TYPES.get)
