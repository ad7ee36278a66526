"""A published dataset (Kaggle "letterboxd-movie-ratings-data") instead of a crawl.

`read_published_ratings` is the one reader of that layout's ratings file, for the
importer and for anyone else who reads it (the evaluation). The importer writes
the dataset's files with the layout's own rows and CSV rule, column by column,
then installs them whole like `new` does.
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from dataset.install import (commit_staging, dataset_exists, finish_interrupted_install,
                             fresh_staging, install_staged)
from dataset.layout import (CARRIAGE_RETURN, FILM_MAPPINGS_FILE, FILMS_HEADER, HEADERS,
                            RATINGS_FILE, TRANSLATED_FILE, UNRATED_FILE, UNRATED_HEADER,
                            USER_MAPPINGS_FILE, USER_UPDATES_FILE, DatasetState, ScrapeStatus,
                            format_time, header_bytes, needs_full_quoting, translated_film_cells,
                            translated_row_from_parts, translated_url_cells, translated_user_cells,
                            translated_verdict_cells, utc_now, write_csv_rows)
from errors import DatasetError
from films.metadata import (LAST_YEAR, content_type_column, country_list_column, language_column,
                            name_list_column, runtime_column, year_column)
from films.titles import FIRST_FILM_YEAR, shown_title_and_year
from names import MAX_SLUG_LENGTH, SLUG_PATTERN, USERNAME_PATTERN

logger = logging.getLogger(__name__)

# The ratings file's columns: username, film slug, half-star rating.
PUBLISHED_RATINGS_COLUMNS = ("user_id", "movie_id", "rating_val")
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


def _read_source_csv(path: Path, required: Sequence[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except FileNotFoundError:
        raise DatasetError(path, "no such file") from None
    except (OSError, EOFError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise DatasetError(path, f"cannot be read as CSV ({error})") from None
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DatasetError(path, f"lacks the column(s) {', '.join(missing)}", 1)
    return frame


def read_published_ratings(path: Path) -> PublishedRatings:
    """The ratings of a file in the Kaggle layout (user_id, movie_id, rating_val), validated.

    Names are stripped and usernames lower-cased; a row whose username or slug could not
    be Letterboxd's, or whose rating is not a whole number in 1..10, is dropped, and a
    repeated (user, film) pair keeps its last rating; a warning counts the rows dropped.
    Gzipped files are read as they are. Refused when no valid rating is left.
    """
    source = _read_source_csv(Path(path), PUBLISHED_RATINGS_COLUMNS)
    usernames = source["user_id"].str.strip()
    slugs = source["movie_id"].str.strip()
    ratings = pd.to_numeric(source["rating_val"], errors="coerce")
    valid = (usernames.str.fullmatch(USERNAME_PATTERN) & slugs.str.fullmatch(SLUG_PATTERN)
             & ratings.between(1, 10) & (ratings == ratings.round()))
    valid &= slugs.str.len() <= MAX_SLUG_LENGTH
    frame = pd.DataFrame({"username": usernames.str.lower(), "slug": slugs,
                          "rating": ratings})[valid.to_numpy()]
    dropped = int(len(source) - len(frame))
    before = len(frame)
    frame = frame.drop_duplicates(["username", "slug"], keep="last")
    dropped += before - len(frame)
    if dropped:
        logger.warning("%s: dropped %d invalid or repeated rows", path, dropped)
    if frame.empty:
        raise DatasetError(path, "holds no valid rating")
    return PublishedRatings(usernames=frame["username"].to_numpy(dtype=object),
                            slugs=frame["slug"].to_numpy(dtype=object),
                            ratings=frame["rating"].to_numpy(np.int64), rows_dropped=dropped)


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


def _translated_file(user_names: np.ndarray, user_index: np.ndarray, films: pd.DataFrame,
                     film_index: np.ndarray, ratings: np.ndarray
                     ) -> tuple[Iterator[tuple[object, ...]], np.ndarray]:
    """The translated file's rows and their full-quoting flags, each part computed once
    per user, film or rating value, then gathered."""
    users = [translated_user_cells(name) for name in user_names]
    film_cells = [translated_film_cells(title, year, slug) for title, year, slug
                  in zip(films["title"].astype(str), films["year"], films["slug"])]
    urls = [translated_url_cells(slug) for slug in films["slug"]]
    verdicts = [()] + [translated_verdict_cells(rating, None) for rating in range(1, 11)]
    film_flags = np.array([needs_full_quoting(cells + url) for cells, url
                           in zip(film_cells, urls)], dtype=bool)
    user_flags = np.array([needs_full_quoting(cells) for cells in users], dtype=bool)

    def rows() -> Iterator[tuple[object, ...]]:
        for start in range(0, len(ratings), CHUNK_ROWS):
            stop = start + CHUNK_ROWS
            for user, film, rating in zip(user_index[start:stop].tolist(),
                                          film_index[start:stop].tolist(),
                                          ratings[start:stop].tolist()):
                yield translated_row_from_parts(users[user], film_cells[film],
                                                verdicts[rating], urls[film])

    return rows(), user_flags[user_index] | film_flags[film_index]


def _write_file(path: Path, name: str, rows: Iterator[Sequence[object]],
                fully_quoted: np.ndarray) -> int:
    """Write dataset file `name` durably; returns its size (all of it is committed)."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(header_bytes(name).decode("utf-8"))
        write_csv_rows(handle, rows, fully_quoted.tolist())
        handle.flush()
        os.fsync(handle.fileno())
    return path.stat().st_size


def import_published_dataset(ratings_path: Path, data_dir: Path, *,
                             movies_path: Path | None = None, users_path: Path | None = None,
                             now: datetime | None = None,
                             archive_existing: bool = False) -> ImportSummary:
    """Build a dataset from the Kaggle "letterboxd-movie-ratings-data" layout.

    `ratings_path` has `user_id` (username), `movie_id` (slug) and `rating_val`;
    `movies_path` (`movie_id`, `movie_title`, `year_released`, optional `genres`)
    and `users_path` (`username`, `display_name`) are optional. Invalid rows are
    dropped with a warning; a repeated (user, film) pair keeps its last rating.

    The new dataset is written aside and moved in only once it is complete, so a
    source that cannot be read, or a kill, leaves the folder's dataset as it was.
    A folder that holds a dataset is refused unless `archive_existing`, which
    archives it just before the move.
    """
    data_dir = Path(data_dir)
    finish_interrupted_install(data_dir)
    if dataset_exists(data_dir) and not archive_existing:
        raise DatasetError(data_dir, "already holds a dataset; archive it first")
    now = now or utc_now()
    published = read_published_ratings(ratings_path)

    # Users in order of first appearance, each user's ratings one block.
    user_codes, user_names = pd.factorize(published.usernames, sort=False)
    order = np.argsort(user_codes, kind="stable")
    user_index = user_codes[order].astype(np.int64)
    film_index, film_slugs = pd.factorize(published.slugs[order], sort=False)
    rating_values = published.ratings[order]
    films = _film_table(np.asarray(film_slugs, dtype=object), movies_path)
    if films.years_dropped:
        logger.warning("%s: %d release years are impossible (before %d or after %d) and are "
                       "left out", movies_path, films.years_dropped, FIRST_FILM_YEAR,
                       LAST_YEAR)
    user_names = np.asarray(user_names, dtype=object)

    n_per_user = np.bincount(user_index, minlength=len(user_names))
    tables: dict[str, pd.DataFrame] = {
        RATINGS_FILE: pd.DataFrame({"user_id": user_index, "film_id": film_index,
                                    "rating": rating_values}),
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
        for name, table in tables.items():
            committed[name] = _write_file(staging / name, name, _table_rows(table, HEADERS[name]),
                                          _fully_quoted(table))
        committed[TRANSLATED_FILE] = _write_file(
            staging / TRANSLATED_FILE, TRANSLATED_FILE,
            *_translated_file(user_names, user_index,
                              films.shown.assign(slug=films.table["slug"]), film_index,
                              rating_values))
        commit_staging(staging, DatasetState(committed=committed, batches=1))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    archived = install_staged(data_dir, now)
    return ImportSummary(ratings=len(rating_values), users=len(user_names),
                         films=len(films.table), rows_dropped=published.rows_dropped,
                         years_dropped=films.years_dropped, archived=archived)
