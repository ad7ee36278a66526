"""The simulated site's small records: a film, one film on a member's grid, a table row."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class SiteFilm:
    slug: str
    title: str
    year: int | None
    letterboxd_id: int
    lid: str
    genres: tuple[str, ...] = ()
    tmdb_id: int | None = None
    imdb_id: str | None = None
    runtime: int | None = None        # minutes
    language: str | None = None       # the primary language's name, as the site writes it
    countries: tuple[str, ...] = ()   # names, as the site writes them ("USA")
    content_type: str = "film"        # or "tv": a series, whose TMDB link is /tv/

    @property
    def display_name(self) -> str:
        """Title with the year, as in `data-item-name`."""
        return self.title if self.year is None else f"{self.title} ({self.year})"


class SiteEntry(NamedTuple):
    """One film on a member's grid. A tuple, so the 500k sample loads without a Python
    call per entry."""

    slug: str
    rating: int | None
    liked: bool = False


class MemberRow(NamedTuple):
    username: str
    display_name: str
    watched: int
    liked: int


class GridPage(NamedTuple):
    """One page of a member's grid, copied out under the lock."""

    tiles: list[tuple[SiteFilm, SiteEntry]]
    total: int
