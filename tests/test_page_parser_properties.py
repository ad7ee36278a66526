"""Property-based tests of the page parsers: whatever arrives, only the documented errors.

Hypothesis cuts real and simulated pages anywhere, flips and inserts bytes, and makes
up grids of every size against every count. A parser must return a record or raise
one of errors.py's errors (MarkupError and IncompletePageError for the page itself,
the fetcher's TransientError and PageUnavailableError for a body that is no text),
and a page cut before its end must never come back as a record.
"""
from __future__ import annotations

from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from errors import IncompletePageError, LetterboxdError, MarkupError
from letterboxd.completeness import (FILMS_PER_PAGE, MEMBERS_PER_PAGE, allowed_shortfall,
                                     check_grid_page, check_members_page)
from letterboxd.film_page import parse_film_page
from letterboxd.grid_page import parse_film_grid
from letterboxd.members_page import parse_members_page
from letterboxd.records import FilmGridPage, MembersPage
from scraping.responses import page_text
from simulated_site import SiteData
from simulated_site.pages import film_page, films_page, members_page
from simulated_site.records import MemberRow
from tests.helpers import fixture_page

PROPERTIES = settings(max_examples=60, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])


def _simulated_pages() -> dict[str, str]:
    data = SiteData.generate(seed=2, n_users=4, n_films=120, min_watched=80, max_watched=100)
    user = next(iter(data.users))
    grid = data.films_page(user, 1, FILMS_PER_PAGE)
    film = next(iter(data.films.values()))
    count, mean = data.rating_stats(film.slug)
    return {
        "grid": films_page(user, user, grid.tiles, 1, 2, grid.total, strip_film_id=True),
        "members": members_page([MemberRow(f"member_{i}", f"Member {i}", i, i)
                                 for i in range(MEMBERS_PER_PAGE)], 1, True),
        "film": film_page(film, count, mean, strip_film_id=True),
    }


SIMULATED = _simulated_pages()
PARSERS: dict[str, Callable[[str], object]] = {
    "grid": parse_film_grid, "members": parse_members_page, "film": parse_film_page}
PAGES = [
    ("grid", SIMULATED["grid"]), ("members", SIMULATED["members"]),
    ("film", SIMULATED["film"]),
    ("grid", fixture_page("user_films_page2.html")),
    ("members", fixture_page("members_page.html")),
    ("film", fixture_page("film_page.html")),
    ("grid", fixture_page("youngjaek__user_films_page1_thebigal_RAW.html")),
]


def parse_or_documented_error(kind: str, html: str) -> object | None:
    """The record, or None when the parser raised one of the documented errors."""
    try:
        return PARSERS[kind](html)
    except MarkupError:
        return None


@PROPERTIES
@given(page=st.sampled_from(PAGES), share=st.floats(0, 1, exclude_max=True))
def test_a_page_cut_before_its_end_is_always_refused_as_incomplete(
        page: tuple[str, str], share: float) -> None:
    kind, html = page
    cut = int(html.rindex("</html>") * share)
    with pytest.raises(IncompletePageError):
        PARSERS[kind](html[:cut])


@PROPERTIES
@given(page=st.sampled_from(PAGES), data=st.data())
def test_bytes_changed_anywhere_give_a_record_or_a_documented_error(
        page: tuple[str, str], data: st.DataObject) -> None:
    kind, html = page
    raw = bytearray(html.encode())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(raw)))
        edit = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        junk = data.draw(st.binary(min_size=1, max_size=16))
        if edit == "replace":
            raw[at:at + len(junk)] = junk
        elif edit == "insert":
            raw[at:at] = junk
        else:
            del raw[at:at + len(junk)]
    try:
        text = page_text("http://site/page/", bytes(raw))
    except LetterboxdError:
        return  # empty or binary: the fetcher's own errors, each with its exit code
    parse_or_documented_error(kind, text)


@PROPERTIES
@given(kind=st.sampled_from(sorted(PARSERS)),
       text=st.text(max_size=400) | st.text(max_size=400).map(lambda t: t + "</html>"))
def test_any_text_gives_a_record_or_a_documented_error(kind: str, text: str) -> None:
    parse_or_documented_error(kind, text)


@PROPERTIES
@given(body=st.binary(max_size=2000))
def test_any_body_is_text_or_a_documented_error(body: bytes) -> None:
    try:
        text = page_text("http://site/page/", body)
    except LetterboxdError as error:
        assert error.exit_code == 4  # exit 4 with the URL, never "a bug"
        assert str(error).endswith(": http://site/page/")
        return
    for kind in PARSERS:
        parse_or_documented_error(kind, text)


@given(total=st.integers(0, 5000), page=st.integers(1, 80), tiles=st.integers(0, 100),
       last_page=st.integers(1, 80))
def test_a_grid_page_is_whole_exactly_when_it_holds_its_share(
        total: int, page: int, tiles: int, last_page: int) -> None:
    """The rules, restated: full when more pages follow, about its share of the count."""
    grid = FilmGridPage(films=(), last_page=last_page, tile_count=tiles, shown_total=total)
    expected = min(FILMS_PER_PAGE, max(0, total - (page - 1) * FILMS_PER_PAGE))
    slack = allowed_shortfall(total)
    whole = (not (page < last_page and tiles < FILMS_PER_PAGE)
             and not (expected and (tiles == 0 or expected - tiles > slack))
             and not (total - slack > page * FILMS_PER_PAGE and last_page <= page))
    if whole:
        check_grid_page(grid, page, FILMS_PER_PAGE)
    else:
        with pytest.raises(IncompletePageError):
            check_grid_page(grid, page, FILMS_PER_PAGE)


@given(total=st.integers(0, 5000), data=st.data())
def test_every_page_of_a_consistent_grid_is_whole(total: int, data: st.DataObject) -> None:
    """What the site serves for a grid of `total` films passes on every page."""
    last_page = max(1, -(-total // FILMS_PER_PAGE))
    page = data.draw(st.integers(1, last_page))
    tiles = min(FILMS_PER_PAGE, total - (page - 1) * FILMS_PER_PAGE)
    check_grid_page(FilmGridPage(films=(), last_page=last_page, tile_count=tiles,
                                 shown_total=total), page, FILMS_PER_PAGE)
    if tiles:  # the same page with its films lost
        with pytest.raises(IncompletePageError):
            check_grid_page(FilmGridPage(films=(), last_page=last_page, tile_count=0,
                                         shown_total=total), page, FILMS_PER_PAGE)


@given(rows=st.integers(0, 40), has_next=st.booleans())
def test_a_members_page_linking_a_next_one_must_be_full_or_empty(rows: int,
                                                                 has_next: bool) -> None:
    page = MembersPage(members=(), has_next=has_next, row_count=rows)
    if has_next and 0 < rows < MEMBERS_PER_PAGE:
        with pytest.raises(IncompletePageError):
            check_members_page(page, 1)
    else:
        check_members_page(page, 1)
