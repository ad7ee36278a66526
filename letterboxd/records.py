"""What Letterboxd's pages say, as small frozen records.

The parsers build these and everything downstream (the crawl, the dataset writer,
the recommender's live look-ups) reads them, so they hold no behaviour and import
nothing of the project: any module may depend on them without pulling in lxml.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Member:
    username: str
    display_name: str
    films_watched: int | None


@dataclass(frozen=True, slots=True)
class MembersPage:
    """`row_count` counts the table's rows, read or not: it says whether the page is full."""

    members: tuple[Member, ...]
    has_next: bool
    row_count: int


@dataclass(frozen=True, slots=True)
class FilmTile:
    """One poster of a grid. `rating` is in half stars, 1..10, None when unrated."""

    slug: str
    letterboxd_id: int | None
    lid: str | None
    title: str
    year: int | None
    rating: int | None
    liked: bool


@dataclass(frozen=True, slots=True)
class FilmGridPage:
    """`tile_count` counts the posters, read or not; `shown_total` is the number of films
    the page says the whole grid holds ("925 films"), None where it shows none."""

    films: tuple[FilmTile, ...]
    last_page: int
    tile_count: int
    shown_total: int | None


@dataclass(frozen=True, slots=True)
class FilmDetails:
    slug: str
    letterboxd_id: int | None
    lid: str | None
    title: str
    year: int | None
    genres: tuple[str, ...]
    average_rating: float | None
    rating_count: int | None
    tmdb_id: int | None
    tmdb_type: str | None
    imdb_id: str | None
    runtime: int | None = None          # minutes
    language: str | None = None         # the primary language, as the page names it
    countries: tuple[str, ...] = ()     # as the page names them ("USA", "France")

    @property
    def content_type(self) -> str | None:
        """"tv" for a series, "film" for a film, as its TMDB link says; None if unknown."""
        return {"movie": "film", "tv": "tv"}.get(self.tmdb_type or "")


@dataclass(frozen=True, slots=True)
class UserFilms:
    """Every page of one member's films grid, read."""

    username: str
    films: tuple[FilmTile, ...]
    pages_fetched: int
