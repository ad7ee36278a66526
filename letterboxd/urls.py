"""Every URL of letterboxd.com the toolkit builds, in one place.

Paths are relative to `Config.base_url` (so the simulated site can stand in for
the real one); the absolute links below are what people click or import, and
always point at the real site. robots.txt forbids `/*/by/*` and
`/*/popular/this/*`: nothing here builds those.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from names import SLUG_PATTERN, USERNAME_PATTERN, validate_slug, validate_username

SITE = "https://letterboxd.com"
SHORT_LINK_HOST = "https://boxd.it"
# Where a list-import CSV is uploaded.
LIST_IMPORT_PAGE = f"{SITE}/list/new/"
# A film's links as people paste them: the short link, its page, or a member's page of
# it (/USER/film/SLUG/, a review or diary entry), with or without the scheme.
_SHORT_LINK = re.compile(r"^(?:https?://)?boxd\.it/([A-Za-z0-9]+)/?$")
_FILM_LINK = re.compile(rf"^(?:https?://)?(?:www\.)?letterboxd\.com/(?:{USERNAME_PATTERN}/)?"
                        rf"film/({SLUG_PATTERN})(?:/.*)?$")


def _page_suffix(page: int) -> str:
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        raise ValueError(f"page numbers start at 1, got {page!r}")
    return "" if page == 1 else f"page/{page}/"


def popular_members_path(page: int = 1) -> str:
    return f"/members/popular/{_page_suffix(page)}"


def user_films_path(username: str, page: int = 1) -> str:
    return f"/{validate_username(username)}/films/{_page_suffix(page)}"


def watchlist_path(username: str, page: int = 1) -> str:
    return f"/{validate_username(username)}/watchlist/{_page_suffix(page)}"


def film_path(slug: str) -> str:
    return f"/film/{validate_slug(slug)}/"


def film_url(slug: str) -> str:
    """The film's page on the real site."""
    return SITE + film_path(slug)


def short_link(lid: str) -> str:
    """The film's boxd.it link, the form Letterboxd's exports and list import use."""
    return f"{SHORT_LINK_HOST}/{lid}"


class FilmLink(NamedTuple):
    """What a link says of a film: its short-link id or its slug."""

    lid: str | None
    slug: str | None


def parse_film_link(text: str) -> FilmLink | None:
    """The film a boxd.it or letterboxd.com link names; None for any other text. (A
    boxd.it link may also be a diary entry's or a list's: only a dataset can tell.)"""
    text = text.strip()
    short = _SHORT_LINK.match(text)
    if short:
        return FilmLink(short.group(1), None)
    page = _FILM_LINK.match(text)
    return FilmLink(None, page.group(1)) if page else None
