"""Reading one thing from the site, page after page: a member's films, a watchlist, a film,
the popular members.

Only a duck-typed fetcher with `get_page(path, read)` is needed; rate limits and
retries live in the fetcher. Each page is read by its parser and checked whole
(`letterboxd.completeness`) inside the fetcher's retries, so a page cut short is read
again like a 5xx instead of being trusted. The walks decide which page comes next and
when to stop, and they do not trust the server's pagination to end.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterator, Protocol, TypeVar

from letterboxd.completeness import (FILMS_PER_PAGE, WATCHLIST_PER_PAGE, check_grid_page,
                                     check_members_page)
from letterboxd.film_page import parse_film_page
from letterboxd.grid_page import parse_film_grid
from letterboxd.members_page import parse_members_page
from letterboxd.records import FilmDetails, FilmGridPage, FilmTile, Member, MembersPage, UserFilms
from letterboxd.urls import film_path, popular_members_path, user_films_path, watchlist_path
from names import validate_username

logger = logging.getLogger(__name__)

_Read = TypeVar("_Read")


class HtmlFetcher(Protocol):
    def get_page(self, path: str, read: Callable[[str], _Read]) -> _Read:
        """What `read` makes of the page at `path`; a page `read` finds cut short
        (IncompletePageError) is fetched again with backoff."""
        ...


# Told after each grid page: pages read so far, and the last page the grid links so far.
PageProgress = Callable[[int, int], None]


# The most pages one grid may take. Real grids are a few dozen pages (72 films a page);
# 2,000 pages is 144,000 films and over half an hour at 1 request/s for a single user.
# Only a broken or hostile server that links one more page of new films forever gets
# here (one that repeats films is stopped sooner, by the "nothing new" check).
MAX_GRID_PAGES = 2_000


def _grid_reader(page: int, per_page: int) -> Callable[[str], FilmGridPage]:
    def read(html: str) -> FilmGridPage:
        grid = parse_film_grid(html)
        check_grid_page(grid, page, per_page)
        return grid
    return read


def _scrape_grid(fetcher: HtmlFetcher, path_for: Callable[[int], str], per_page: int,
                 on_page: PageProgress | None = None) -> tuple[tuple[FilmTile, ...], int]:
    """Every tile of a paginated grid, first sighting of a slug wins, and the pages read.

    Pagination is the server's word, so it is not trusted to end: a page that adds
    no film we do not already have ends the grid, and so does MAX_GRID_PAGES.
    """
    tiles: dict[str, FilmTile] = {}
    page = last_page = 1
    while page <= last_page:
        if page > MAX_GRID_PAGES:
            logger.warning("%s: stopped after %d pages, the most one grid may take; the "
                           "server still links page %d", path_for(1), MAX_GRID_PAGES, page)
            break
        grid = fetcher.get_page(path_for(page), _grid_reader(page, per_page))
        if page > 1 and not grid.films:
            return tuple(tiles.values()), page  # films removed while we read: none further on
        known = len(tiles)
        for tile in grid.films:
            tiles.setdefault(tile.slug, tile)
        if page > 1 and len(tiles) == known:
            # A shifted page repeats a film or two, never all of them: the server is looping.
            logger.warning("%s: page %d brought no film it did not already have; stopping "
                           "there", path_for(1), page)
            return tuple(tiles.values()), page
        last_page = max(last_page, grid.last_page)
        if on_page is not None:
            on_page(page, min(last_page, MAX_GRID_PAGES))
        page += 1
    return tuple(tiles.values()), page - 1


def scrape_user_films(fetcher: HtmlFetcher, username: str,
                      on_page: PageProgress | None = None) -> UserFilms:
    name = validate_username(username)
    films, pages = _scrape_grid(fetcher, lambda page: user_films_path(name, page),
                                FILMS_PER_PAGE, on_page)
    return UserFilms(username=name, films=films, pages_fetched=pages)


def scrape_watchlist(fetcher: HtmlFetcher, username: str,
                     on_page: PageProgress | None = None) -> tuple[FilmTile, ...]:
    name = validate_username(username)
    return _scrape_grid(fetcher, lambda page: watchlist_path(name, page), WATCHLIST_PER_PAGE,
                        on_page)[0]


def scrape_film(fetcher: HtmlFetcher, slug: str) -> FilmDetails:
    return fetcher.get_page(film_path(slug), lambda html: parse_film_page(html, slug=slug))


def read_members_page(fetcher: HtmlFetcher, page: int) -> MembersPage:
    """One popular-members page, whole."""
    def read(html: str) -> MembersPage:
        members = parse_members_page(html)
        check_members_page(members, page)
        return members
    return fetcher.get_page(popular_members_path(page), read)


def iter_popular_members(fetcher: HtmlFetcher, start_page: int = 1,
                         first_page: MembersPage | None = None
                         ) -> Iterator[tuple[int, Member]]:
    """(page number, member) so a resumed crawl can start where the last one stopped.

    `first_page` is page 1 already read (by `new`'s check that the site answers); it
    is used when the crawl starts there. Stops at a page that lists nobody new, as a
    server answering every page number with the same page would otherwise be paged
    forever.
    """
    seen: set[str] = set()
    page = start_page
    while True:
        members_page = (first_page if page == 1 and first_page is not None
                        else read_members_page(fetcher, page))
        new = [member for member in members_page.members if member.username not in seen]
        if members_page.members and not new:
            logger.warning("members page %d lists nobody new; stopping there", page)
            return
        seen.update(member.username for member in new)
        for member in members_page.members:
            yield page, member
        if not members_page.members or not members_page.has_next:
            return
        page += 1
