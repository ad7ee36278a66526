"""Film metadata read from the films' own pages, saved into the film mappings.

A batch of film pages replaces the film mappings whole (dataset/rewrite.py), so a kill
leaves every film's metadata as it was before the batch or as it is after it. That
rewrite costs one pass over the film table per batch, which is small next to the
minutes a batch of pages takes at about one request per second.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Sequence

from dataset import film_table
from dataset.layout import FILM_MAPPINGS_FILE, FILMS_HEADER, DatasetState, csv_bytes, format_time
from dataset.rewrite import commit_rewrite


@dataclass(frozen=True)
class FilmMetadata:
    """What a film's page says of it, in the film mappings' terms (found=False: the page
    is gone; the film is only marked as read, so it is not asked for again at once)."""

    slug: str
    found: bool = True
    lid: str = ""
    letterboxd_id: int | None = None
    title: str = ""
    year: int | None = None
    genres: tuple[str, ...] = ()
    runtime: int | None = None
    language: str = ""              # ISO 639-1
    countries: tuple[str, ...] = ()  # ISO 3166-1 alpha-2
    content_type: str = ""          # film, tv or unknown
    average_rating: float | None = None
    rating_count: int | None = None


def films_to_read(data_dir: Path, state: DatasetState, now: datetime,
                  older_than: timedelta | None) -> list[str]:
    """Slugs of the films whose page was never read, or (with `older_than`) was read
    longer ago than that, in film id order (the order the crawl first met them)."""
    films = film_table.read_film_mappings(data_dir, state.committed[FILM_MAPPINGS_FILE])
    due = films["details_fetched"] == ""
    if older_than is not None:
        due |= films["details_fetched"] <= format_time(now - older_than)
    return films.loc[due, "slug"].tolist()


def _text(value: object) -> str:
    return "" if value is None else str(value)


def save(data_dir: Path, state: DatasetState, pages: Sequence[FilmMetadata],
         now: datetime) -> DatasetState:
    """The state after writing `pages` into the film mappings (one committed rewrite).

    The page's title and year replace the stored ones (published metadata has missing
    and wrong years; the page is Letterboxd's own); a lid or id already known is kept.
    """
    films = film_table.read_film_mappings(data_dir, state.committed[FILM_MAPPINGS_FILE])
    row_of = dict(zip(films["slug"], range(len(films))))
    stamp = format_time(now)
    columns = {column: films[column].tolist() for column in FILMS_HEADER}
    for page in pages:
        row = row_of[page.slug]
        columns["details_fetched"][row] = stamp
        if not page.found:
            continue
        for column, value in (("lid", page.lid), ("letterboxd_id", page.letterboxd_id)):
            if not columns[column][row]:
                columns[column][row] = _text(value)
        if page.title:
            columns["title"][row] = page.title
        if page.year is not None:
            columns["year"][row] = str(page.year)
        columns["genres"][row] = "|".join(page.genres)
        columns["runtime"][row] = _text(page.runtime)
        columns["language"][row] = page.language
        columns["countries"][row] = "|".join(page.countries)
        columns["content_type"][row] = page.content_type
        columns["average_rating"][row] = (f"{page.average_rating:.2f}"
                                          if page.average_rating is not None else "")
        columns["rating_count"][row] = _text(page.rating_count)
    data = csv_bytes(zip(*(columns[column] for column in FILMS_HEADER)), FILMS_HEADER)
    return commit_rewrite(data_dir, state, {FILM_MAPPINGS_FILE: data})
