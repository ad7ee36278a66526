"""A published dataset (Kaggle "letterboxd-movie-ratings-data") instead of a crawl.

The ratings file is read in chunks (`dataset.published`, also behind
`read_published_ratings` for the evaluation), so memory holds the names and 9 bytes
per rating, never the file. The importer then orders the rows as the dataset wants
them (each user's ratings one block), and writes the big files with rows glued from
cells rendered once per user, film and rating (`dataset.token_rows`), the small ones
with the layout's own CSV rule, then installs them whole like `new` does.
"""
from __future__ import annotations

import logging
import lzma
import os
import shutil
import sys
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from dataset.checks import check_cell_sizes
from dataset.install import (commit_staging, dataset_exists, finish_interrupted_install,
                             fresh_staging, install_staged)
from dataset.layout import (CARRIAGE_RETURN, FILM_MAPPINGS_FILE, FILMS_HEADER, HEADERS,
                            UNRATED_FILE, UNRATED_HEADER,
                            USER_MAPPINGS_FILE, USER_UPDATES_FILE, DatasetState, ScrapeStatus,
                            format_time, header_bytes, utc_now, write_csv_rows)
from dataset.import_rows import order_ratings, write_block_files
from dataset.published import RatingRows, Scale, read_rating_rows
from errors import DatasetError
from films.metadata import (LAST_YEAR, content_type_column, country_list_column, language_column,
                            name_list_column, runtime_column, year_column)
from films.titles import FIRST_FILM_YEAR, shown_title_and_year
from safe_files import reporting_disk_full

logger = logging.getLogger(__name__)

# Rows turned into Python objects at a time while writing: bounds memory on big imports.
CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class PublishedRatings:
    """The valid ratings of a published ratings file: one per (user, film), in file order."""

    usernames: np.ndarray   # object: lower-case, valid Letterboxd usernames
    slugs: np.ndarray       # object: valid film slugs
    ratings: np.ndarray     # int64: half stars, 1..10
    rows_dropped: int       # invalid rows, and earlier ratings of a repeated (user, film)


@dataclass(frozen=True)
class ImportSummary:
    ratings: int
    users: int
    films: int
    rows_dropped: int
    years_dropped: int = 0  # impossible release years in the movies file, left out
    archived: Path | None = None  # where the dataset it replaced went
    scale: Scale = Scale.TEN      # how the file wrote its ratings
    scale_detected: bool = True   # False when the caller said so


def _read_source_csv(path: Path, required: Sequence[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except FileNotFoundError:
        raise DatasetError(path, "no such file") from None
    # zlib, lzma and zipfile have errors of their own for a damaged compressed file.
    except (OSError, EOFError, pd.errors.ParserError, UnicodeDecodeError, ValueError,
            zlib.error, lzma.LZMAError, zipfile.BadZipFile) as error:
        raise DatasetError(path, f"cannot be read as CSV ({error})") from None
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DatasetError(path, f"lacks the column(s) {', '.join(missing)}", 1)
    check_cell_sizes(path, frame)
    return frame


def read_published_ratings(path: Path, scale: Scale | None = None) -> PublishedRatings:
    """The ratings of a file in the Kaggle layout (user_id, movie_id, rating_val), validated.

    Names are stripped and usernames lower-cased; a row whose username or slug could not
    be Letterboxd's, or whose rating is no number, is dropped, and a repeated (user,
    film) pair keeps its last rating; a warning counts the rows dropped. The scale is
    detected unless given (`dataset.published`). Refused when no valid rating is left.
    """
    rows = read_rating_rows(Path(path), scale)
    kept = rows.last_of_each_pair()
    dropped = rows.rows_invalid + len(rows.users) - len(kept)
    _check_rows(Path(path), rows, dropped)
    return PublishedRatings(
        usernames=np.asarray(rows.usernames, dtype=object)[rows.users[kept]],
        slugs=np.asarray(rows.slugs, dtype=object)[rows.films[kept]],
        ratings=rows.ratings[kept].astype(np.int64), rows_dropped=dropped)


def _check_rows(path: Path, rows: RatingRows, dropped: int) -> None:
    if dropped:
        logger.warning("%s: dropped %d invalid or repeated rows", path, dropped)
    if not len(rows.users):
        raise DatasetError(path, "holds no valid rating")
    if rows.scale is Scale.STARS and rows.scale_detected:
        logger.warning("%s: the ratings are on the 0.5-5 star scale (halves, nothing above "
                       "5): doubled to half stars 1-10; say --scale ten if they are not", path)


@dataclass(frozen=True)
class _Films:
    table: pd.DataFrame  # FILMS_HEADER columns as text, by film id
    shown: pd.DataFrame  # title and year to show (spelled out from the slug when unknown)
    years_dropped: int   # years in the metadata that cannot be release years


def _text(numbers: pd.Series) -> pd.Series:
    """Whole numbers as the CSV writes them; unknown as empty."""
    return pd.Series(["" if pd.isna(value) else str(int(value)) for value in numbers],
                     index=numbers.index, dtype=object)


def _column(movies: pd.DataFrame, name: str) -> pd.Series | None:
    return movies[name] if name in movies else None


def _film_table(slugs: np.ndarray, movies_path: Path | None) -> _Films:
    """Every film's row of the film mappings, with whatever metadata the movies file has.

    Published metadata is messy (films/metadata.py says how): genres and countries in
    any list form, runtimes of 0, impossible years, series among the films. A film the
    movies file lacks keeps an empty title, and is shown with one spelled out from its
    slug.
    """
    empty = pd.Series("", index=range(len(slugs)), dtype=object)
    table = pd.DataFrame({column: empty for column in FILMS_HEADER})
    table["film_id"] = np.arange(len(slugs))
    table["slug"] = slugs
    years_dropped = 0
    if movies_path is not None:
        movies = _read_source_csv(Path(movies_path), ("movie_id",)).drop_duplicates("movie_id")
        movies = movies.set_index("movie_id").reindex(slugs).fillna("").reset_index(drop=True)
        if "movie_title" in movies:
            table["title"] = movies["movie_title"]
        if "year_released" in movies:
            years, years_dropped = year_column(movies["year_released"])
            table["year"] = _text(years)
        table["genres"] = name_list_column(movies.get("genres", empty))
        table["runtime"] = _text(runtime_column(movies.get("runtime", empty)))
        table["language"] = language_column(movies.get("original_language", empty))
        table["countries"] = country_list_column(movies.get("production_countries", empty))
        table["content_type"] = content_type_column(
            _column(movies, "content_type"), _column(movies, "tmdb_link"), table["genres"])
    shown = [shown_title_and_year(title, int(year) if year else None, slug)
             for title, year, slug in zip(table["title"], table["year"], table["slug"])]
    shown_table = pd.DataFrame({"title": [title for title, _ in shown],
                                "year": ["" if year is None else str(year) for _, year in shown]})
    return _Films(table, shown_table, years_dropped)


def _display_names(user_names: np.ndarray, users_path: Path | None) -> np.ndarray:
    display_names = pd.Series("", index=user_names, dtype=object)
    if users_path is not None:
        people = _read_source_csv(Path(users_path), ("username",))
        if "display_name" in people:
            names = people.assign(username=people["username"].str.lower()).drop_duplicates(
                "username").set_index("username")["display_name"]
            display_names = names.reindex(user_names).fillna("")
    return display_names.astype(str).to_numpy()


def _table_rows(table: pd.DataFrame, header: Sequence[str]) -> Iterator[list[object]]:
    """The table's rows in the header's column order, a chunk of Python objects at a time."""
    for start in range(0, len(table), CHUNK_ROWS):
        chunk = table.iloc[start:start + CHUNK_ROWS]
        yield from zip(*(chunk[column].tolist() for column in header))


def _fully_quoted(table: pd.DataFrame) -> np.ndarray:
    """Rows holding the character that forces full quoting (see write_csv_rows)."""
    flags = np.zeros(len(table), dtype=bool)
    for column in table.columns:
        if not pd.api.types.is_numeric_dtype(table[column]):
            flags |= table[column].astype(str).str.contains(CARRIAGE_RETURN,
                                                            regex=False).to_numpy(dtype=bool)
    return flags


def _write_file(path: Path, name: str, rows: Iterator[Sequence[object]],
                fully_quoted: np.ndarray) -> int:
    """Write dataset file `name` durably; returns its size (all of it is committed)."""
    with reporting_disk_full(path), open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(header_bytes(name).decode("utf-8"))
        write_csv_rows(handle, rows, fully_quoted.tolist())
        handle.flush()
        os.fsync(handle.fileno())
    return path.stat().st_size


def import_published_dataset(ratings_path: Path, data_dir: Path, *,
                             movies_path: Path | None = None, users_path: Path | None = None,
                             now: datetime | None = None, archive_existing: bool = False,
                             scale: Scale | None = None,
                             show_progress: bool = False) -> ImportSummary:
    """Build a dataset from the Kaggle "letterboxd-movie-ratings-data" layout.

    `ratings_path` has `user_id` (username), `movie_id` (slug) and `rating_val`;
    `movies_path` (`movie_id`, `movie_title`, `year_released`, optional `genres`)
    and `users_path` (`username`, `display_name`) are optional. Invalid rows are
    dropped with a warning; a repeated (user, film) pair keeps its last rating. The
    rating scale is detected unless `scale` says it; a mixed one is refused.

    The whole ratings file is read and checked before anything is written, and the new
    dataset is written aside and moved in only once it is complete, so a source that
    cannot be read, or a kill, leaves the folder's dataset as it was. A folder that
    holds a dataset is refused unless `archive_existing`, which archives it just
    before the move. `show_progress` draws bars (bytes read, rows written) on stderr.
    """
    data_dir = Path(data_dir)
    finish_interrupted_install(data_dir)
    if dataset_exists(data_dir) and not archive_existing:
        raise DatasetError(data_dir, "already holds a dataset; archive it first")
    now = now or utc_now()
    ratings_path = Path(ratings_path)
    with tqdm(total=ratings_path.stat().st_size if ratings_path.is_file() else None,
              unit="B", unit_scale=True, desc="reading", file=sys.stderr,
              disable=None if show_progress else True) as bar:
        rows = read_rating_rows(ratings_path, scale, progress=lambda done: bar.update(done - bar.n))
    ordered = order_ratings(rows)
    rows_invalid, scale_used, detected = rows.rows_invalid, rows.scale, rows.scale_detected
    _check_rows(ratings_path, rows, rows_invalid + ordered.rows_repeated)
    del rows
    films = _film_table(ordered.slugs, movies_path)
    if films.years_dropped:
        logger.warning("%s: %d release years are impossible (before %d or after %d) and are "
                       "left out", movies_path, films.years_dropped, FIRST_FILM_YEAR,
                       LAST_YEAR)
    user_names = ordered.usernames
    n_per_user = np.bincount(ordered.user_index, minlength=len(user_names))
    tables: dict[str, pd.DataFrame] = {
        UNRATED_FILE: pd.DataFrame(columns=list(UNRATED_HEADER)),
        USER_MAPPINGS_FILE: pd.DataFrame({
            "user_id": np.arange(len(user_names)), "username": user_names,
            "display_name": _display_names(user_names, users_path)}),
        FILM_MAPPINGS_FILE: films.table,
        USER_UPDATES_FILE: pd.DataFrame({
            "user_id": np.arange(len(user_names)), "username": user_names,
            "last_scraped": format_time(now), "status": ScrapeStatus.OK.value,
            "n_ratings": n_per_user, "n_unrated": 0}),
    }
    staging = fresh_staging(data_dir)
    try:
        committed = {}
        with tqdm(total=2 * len(ordered.ratings), unit="row", unit_scale=True, desc="writing",
                  file=sys.stderr, disable=None if show_progress else True) as bar:
            committed.update(write_block_files(staging, ordered, films.shown, bar.update))
        for name, table in tables.items():
            committed[name] = _write_file(staging / name, name, _table_rows(table, HEADERS[name]),
                                          _fully_quoted(table))
        commit_staging(staging, DatasetState(committed={name: committed[name]
                                                        for name in HEADERS}, batches=1))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    archived = install_staged(data_dir, now)
    return ImportSummary(ratings=len(ordered.ratings), users=len(user_names),
                         films=len(films.table),
                         rows_dropped=ordered.rows_repeated + rows_invalid,
                         years_dropped=films.years_dropped, archived=archived,
                         scale=scale_used, scale_detected=detected)
