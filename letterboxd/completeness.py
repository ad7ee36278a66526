"""Is a parsed page whole? What a page holds, checked against what it says about itself.

A page can arrive with status 200 and a consistent length yet hold less than it
should: an origin that died mid-render behind a proxy, a cache that kept half a page,
an include that failed. `markup.document` already refuses a document whose end is
missing; these checks catch the rest from the page's own word: a page that links a
further page must be full, and a page that counts the grid's films must hold about
its share of them. Each raises IncompletePageError, which the fetcher treats like a
5xx (read the page again, with backoff), so a member is saved from whole pages only.
"""
from __future__ import annotations

from errors import IncompletePageError
from letterboxd.records import FilmGridPage, MembersPage

# Page sizes of the real site: 72 posters on every page of a member's films grid but
# the last, 30 rows on a popular-members page (both seen on the saved pages); 28
# posters (7 x 4) on a watchlist page (../shared/docs/letterboxd_markup.md, section 4).
FILMS_PER_PAGE = 72
WATCHLIST_PER_PAGE = 28
MEMBERS_PER_PAGE = 30


def allowed_shortfall(shown_total: int) -> int:
    """How many of the films a page counts may be missing before the read is incomplete.

    A count and a grid rendered a moment apart may differ by a film or two, so only a
    large shortfall counts: over a twentieth of the count, and more than two films.
    """
    return max(2, shown_total // 20)


def check_grid_page(grid: FilmGridPage, page: int, per_page: int) -> None:
    """IncompletePageError unless page `page` of a grid of `per_page` posters is whole."""
    if page < grid.last_page and grid.tile_count < per_page:
        raise IncompletePageError(f"page {page} of {grid.last_page} holds {grid.tile_count} "
                                  f"films, not a full page of {per_page}")
    total = grid.shown_total
    if total is None:
        return
    expected = min(per_page, max(0, total - (page - 1) * per_page))
    if expected and (grid.tile_count == 0
                     or expected - grid.tile_count > allowed_shortfall(total)):
        raise IncompletePageError(f"page {page} holds {grid.tile_count} films where its count "
                                  f"of {total} puts {expected} on it")
    if total - allowed_shortfall(total) > page * per_page and grid.last_page <= page:
        raise IncompletePageError(f"page {page} counts {total} films, more than {page} pages "
                                  f"of {per_page} hold, yet links no further page")


def check_members_page(members: MembersPage, page: int) -> None:
    """IncompletePageError for a members page that links a next one but is not full.

    An empty page ends the list whatever its pagination says: the list shows no count
    to compare with, and past its end a page holds nobody.
    """
    if members.has_next and 0 < members.row_count < MEMBERS_PER_PAGE:
        raise IncompletePageError(f"members page {page} holds {members.row_count} rows, not a "
                                  f"full page of {MEMBERS_PER_PAGE}, yet links a next page")
