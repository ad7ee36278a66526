"""An import's ratings in the dataset's order, and its two big files written from them.

The dataset wants each user's ratings as one block, users numbered in order of first
appearance, films in order of first appearance in that block order, and a repeated
(user, film) pair kept once, with its last rating, where its last row stood. All of
that is a few sorts of integer codes. The raw and translated files are then written
a chunk of rows at a time from cells rendered once per user, film and rating value,
quoted exactly as `dataset.layout.write_csv_rows` quotes them.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from dataset.layout import (RATINGS_FILE, TRANSLATED_FILE, header_bytes, needs_full_quoting,
                            translated_film_cells, translated_url_cells, translated_user_cells,
                            translated_verdict_cells)
from dataset.published import RatingRows
from dataset.token_rows import TokenRowWriter, Tokens
from safe_files import reporting_disk_full

# Rows handed to the writers at a time: bounds the index arrays of one gather.
WRITE_ROWS = 1_000_000


@dataclass(frozen=True)
class OrderedRatings:
    """The ratings as the dataset stores them: by user id, file order within a user."""

    user_index: np.ndarray   # int32, per rating
    film_index: np.ndarray   # int32, per rating
    ratings: np.ndarray      # int8, half stars 1..10
    usernames: np.ndarray    # object, by user id
    slugs: np.ndarray        # object, by film id
    rows_repeated: int       # earlier ratings of a repeated (user, film), dropped


def _first_appearance(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The codes present, in order of first appearance, and each row's rank in that order
    (a hash pass, where sorting would cost N log N)."""
    rank, in_order = pd.factorize(codes, sort=False)
    return np.asarray(in_order), rank.astype(np.int32)


def order_ratings(rows: RatingRows) -> OrderedRatings:
    """The valid rows of a ratings file in the dataset's order (see the module docstring)."""
    kept = rows.last_of_each_pair()
    users_in_order, user_index = _first_appearance(rows.users[kept])
    by_user = np.argsort(user_index, kind="stable")
    user_index = user_index[by_user]
    films_in_order, film_index = _first_appearance(rows.films[kept][by_user])
    return OrderedRatings(
        user_index=user_index, film_index=film_index, ratings=rows.ratings[kept][by_user],
        usernames=np.asarray(rows.usernames, dtype=object)[users_in_order],
        slugs=np.asarray(rows.slugs, dtype=object)[films_in_order],
        rows_repeated=len(rows.users) - len(kept))


def _both_ways(groups: Sequence[Sequence[object]], quoted: np.ndarray, end: str) -> Tokens:
    """Each cell group rendered as write_csv_rows renders a record without its line end,
    then again fully quoted (only where `quoted` says a row may need it), plus `end`."""
    rendered = []
    for quote_all in (False, True):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n",
                            quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
        for group, needed in zip(groups, quoted if quote_all else np.ones(len(groups), bool)):
            if needed:
                buffer.seek(0)
                buffer.truncate()
                writer.writerow(group)
                rendered.append(buffer.getvalue()[:-1] + end)
            else:  # never chosen: no row holding this group is quoted whole
                rendered.append("")
    return Tokens(rendered)


def _write(path: Path, name: str, writer_columns: Sequence[Tokens],
           ids: Callable[[slice], Sequence[np.ndarray]], n_rows: int,
           progress: Callable[[int], None]) -> int:
    """Write dataset file `name` durably from token ids, WRITE_ROWS at a time."""
    with reporting_disk_full(path), open(path, "wb") as handle:
        handle.write(header_bytes(name))
        writer = TokenRowWriter(handle, writer_columns)
        for start in range(0, n_rows, WRITE_ROWS):
            part = slice(start, min(start + WRITE_ROWS, n_rows))
            writer.write(ids(part))
            progress(part.stop - part.start)
        handle.flush()
        os.fsync(handle.fileno())
        return handle.tell()


def write_block_files(staging: Path, ordered: OrderedRatings, shown: pd.DataFrame,
                      progress: Callable[[int], None]) -> dict[str, int]:
    """The raw and translated ratings files in `staging`; their sizes by name.

    `shown` holds each film's title and year as the translated file shows them.
    """
    n_ids = max(len(ordered.usernames), len(ordered.slugs), 11)
    ids_then_comma = Tokens([f"{number}," for number in range(n_ids)])
    ratings_then_newline = Tokens([f"{number}\n" for number in range(11)])
    sizes = {RATINGS_FILE: _write(
        staging / RATINGS_FILE, RATINGS_FILE,
        [ids_then_comma, ids_then_comma, ratings_then_newline],
        lambda part: (ordered.user_index[part], ordered.film_index[part],
                      ordered.ratings[part]), len(ordered.ratings), progress)}

    users = [translated_user_cells(name) for name in ordered.usernames]
    films = [translated_film_cells(title, year, slug) for title, year, slug
             in zip(shown["title"].astype(str), shown["year"], ordered.slugs)]
    urls = [translated_url_cells(slug) for slug in ordered.slugs]
    verdicts = [()] + [translated_verdict_cells(rating, None) for rating in range(1, 11)]
    # A row holding a carriage return anywhere is quoted whole (write_csv_rows).
    user_quoted = np.array([needs_full_quoting(cells) for cells in users], dtype=bool)
    film_quoted = np.array([needs_full_quoting(cells + url) for cells, url in zip(films, urls)],
                           dtype=bool)
    any_user, any_film = user_quoted.any(), film_quoted.any()
    columns = [_both_ways(users, user_quoted | any_film, ","),
               _both_ways(films, film_quoted | any_user, ","),
               _both_ways(verdicts, np.full(len(verdicts), any_user or any_film), ","),
               _both_ways(urls, film_quoted | any_user, "\n")]
    sizes_of = [len(users), len(films), len(verdicts), len(urls)]

    def translated_ids(part: slice) -> list[np.ndarray]:
        user, film = ordered.user_index[part], ordered.film_index[part]
        quoted = (user_quoted[user] | film_quoted[film]).astype(np.int64)
        return [index + quoted * size for index, size in zip(
            (user, film, ordered.ratings[part].astype(np.int64), film), sizes_of)]

    sizes[TRANSLATED_FILE] = _write(staging / TRANSLATED_FILE, TRANSLATED_FILE, columns,
                                    translated_ids, len(ordered.ratings), progress)
    return sizes
