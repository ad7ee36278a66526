"""Walking a member's pages and the user pool, with a fake fetcher."""
from __future__ import annotations

import re
import threading
from typing import Callable, Iterator

import pytest

from errors import (BlockedError, FetchError, IncompletePageError, InvalidNameError, MarkupError,
                    NotFoundError, PageUnavailableError, PrivateError, RateLimitedError,
                    RobotsDisallowedError, TransientError)
from letterboxd.completeness import FILMS_PER_PAGE, MEMBERS_PER_PAGE, WATCHLIST_PER_PAGE
from letterboxd.records import FilmTile, Member
from letterboxd.urls import popular_members_path
from scraping import walk
from scraping.crawl import UserResult, scrape_users
from scraping.walk import (iter_popular_members, read_members_page, scrape_film,
                           scrape_user_films, scrape_watchlist)
from tests.helpers import fixture_page, grid_html, tile_html

WAIT = 5.0  # seconds a test thread may wait for another before the test fails instead of hanging
# Names of the films and members that only fill a page up to its full size.
PAD = "pad"


# --- scraping with a fake fetcher -------------------------------------------

class FakeFetcher:
    """Pages by path; a missing path is a 404. `before` runs a hook before serving a path."""

    def __init__(self, pages: dict[str, str | Exception],
                 before: dict[str, Callable[[], None]] | None = None) -> None:
        self.pages = pages
        self.before = before or {}
        self.requested: list[str] = []
        self._lock = threading.Lock()

    def get_page(self, path: str, read: Callable[[str], object]) -> object:
        """The page read by `read`; the real fetcher would retry a page cut short."""
        return read(self.serve(path))

    def serve(self, path: str) -> str:
        with self._lock:
            self.requested.append(path)
        if path in self.before:
            self.before[path]()
        page = self.pages.get(path)
        if page is None:
            raise NotFoundError(path, "no such page")
        if isinstance(page, Exception):
            raise page
        return page

    def users_requested(self) -> set[str]:
        with self._lock:
            return {path.split("/")[1] for path in self.requested}


def numbered(page: int, last_page: int) -> str:
    if last_page == 1:
        return ""
    items = "".join(f'<li class="paginate-page"><a href="/u/films/page/{n}/">{n}</a></li>'
                    for n in range(1, last_page + 1))
    return f'<div class="pagination"><div class="paginate-pages"><ul>{items}</ul></div></div>'


def padded(slugs: list[str], size: int, page: int) -> list[str]:
    """`slugs` filled up to a full page of `size` with films named PAD..."""
    return slugs + [f"{PAD}-{page}-{i}" for i in range(size - len(slugs))]


def unpadded(slugs: list[str]) -> list[str]:
    return [slug for slug in slugs if not slug.startswith(PAD)]


def user_pages(username: str, pages: list[list[str]], kind: str = "films"
               ) -> dict[str, str | Exception]:
    """A member's grid: every page but the last filled up to a full page, as on the site."""
    per_page = FILMS_PER_PAGE if kind == "films" else WATCHLIST_PER_PAGE
    site: dict[str, str | Exception] = {}
    for number, slugs in enumerate(pages, start=1):
        path = f"/{username}/{kind}/" + ("" if number == 1 else f"page/{number}/")
        if number < len(pages):
            slugs = padded(slugs, per_page, number)
        tiles = [tile_html(slug, f"{slug} (2001)", 1000 + i, rating=5) for i, slug in
                 enumerate(slugs)]
        site[path] = grid_html(tiles, numbered(number, len(pages)))
    return site


def test_scrape_user_films_reads_every_page_and_keeps_first_sighting() -> None:
    fetcher = FakeFetcher(user_pages("u", [["a", "b"], ["b", "c"], ["d"]]))
    result = scrape_user_films(fetcher, "U")
    assert result.username == "u" and result.pages_fetched == 3
    assert unpadded([film.slug for film in result.films]) == ["a", "b", "c", "d"]
    assert result.films[1].letterboxd_id == 1001  # "b" as first seen on page 1
    assert fetcher.requested == ["/u/films/", "/u/films/page/2/", "/u/films/page/3/"]


def full_grid(slugs: list[str], page: int, pagination: str) -> str:
    return grid_html([tile_html(slug, slug, 1 + i) for i, slug in
                      enumerate(padded(slugs, FILMS_PER_PAGE, page))], pagination)


def test_scrape_user_films_follows_a_growing_last_page_and_stops_at_an_empty_one() -> None:
    """Films removed while we read: page 3 is now past the end, empty and unpaginated."""
    site = user_pages("u", [["a"], ["b"]])
    site["/u/films/page/2/"] = full_grid(["b"], 2, numbered(2, 4))
    site["/u/films/page/3/"] = grid_html([])
    result = scrape_user_films(FakeFetcher(site), "u")
    assert unpadded([film.slug for film in result.films]) == ["a", "b"]
    assert result.pages_fetched == 3


@pytest.mark.parametrize("page_two, reason", [
    (full_grid(["b"], 2, numbered(2, 3))[:-200], "no closing </html>"),
    (grid_html([tile_html("b", "B", 2)], numbered(2, 3)), "not a full page of 72"),
    (grid_html([], numbered(2, 3)), "not a full page of 72"),
])
def test_a_page_cut_short_is_never_trusted(page_two: str, reason: str) -> None:
    """Cut as a document, short of a full page, or empty while it links page 3."""
    site = user_pages("u", [["a"], ["b"], ["c"]])
    site["/u/films/page/2/"] = page_two
    with pytest.raises(IncompletePageError, match=reason):
        scrape_user_films(FakeFetcher(site), "u")


def counted_grid(count: int, tiles: int, pagination: str = "") -> str:
    """A member's grid page holding `tiles` posters under a heading counting `count` films."""
    heading = (f'<h1 class="section-heading"><span class="tooltip" '
               f'title="{count:,}&nbsp;films">Watched</span></h1>')
    page = grid_html([tile_html(f"film-{i}", "F", 1 + i) for i in range(tiles)], pagination)
    return page.replace('<div id="content">', f'<div id="content">{heading}')


@pytest.mark.parametrize("count, tiles, complete", [
    (925, 0, False),   # the grid failed to render: a member saved with 0 ratings
    (40, 30, False),   # a quarter of the films missing
    (40, 39, True),    # a film or two: the count and the grid were rendered apart
    (3, 0, False),     # nothing at all is always too little
    (0, 0, True),      # an empty profile
    (925, 72, False),  # a full first page, but no link to the 12 pages the count promises
])
def test_a_grid_holding_far_fewer_films_than_it_counts_is_incomplete(
        count: int, tiles: int, complete: bool) -> None:
    fetcher = FakeFetcher({"/u/films/": counted_grid(count, tiles)})
    if complete:
        assert len(scrape_user_films(fetcher, "u").films) == tiles
    else:
        with pytest.raises(IncompletePageError):
            scrape_user_films(fetcher, "u")


class EndlessGrid:
    """A broken server: every page of u's films links a next page, forever.

    `fresh` pages hold a new film each; otherwise every page repeats page 1's films.
    Past `RUNAWAY` requests it raises, so a missing stop fails the test instead of hanging it.
    """

    RUNAWAY = 50

    def __init__(self, fresh: bool) -> None:
        self.fresh = fresh
        self.requested: list[str] = []

    def get_page(self, path: str, read: Callable[[str], object]) -> object:
        self.requested.append(path)
        if len(self.requested) > self.RUNAWAY:
            raise AssertionError(f"still paging after {self.RUNAWAY} pages")
        match = re.fullmatch(r"/u/films/(?:page/(\d+)/)?", path)
        assert match, path
        page = int(match.group(1) or 1)
        next_link = (f'<div class="pagination"><a class="next" href="/u/films/page/{page + 1}/">'
                     'Older</a></div>')
        slugs = [f"film-{page}-{i}" if self.fresh else f"film-{i}"
                 for i in range(FILMS_PER_PAGE)]
        return read(grid_html([tile_html(slug, slug, 1000 + i) for i, slug in enumerate(slugs)],
                              next_link))


def test_grid_that_repeats_itself_is_read_once(caplog: pytest.LogCaptureFixture) -> None:
    fetcher = EndlessGrid(fresh=False)
    result = scrape_user_films(fetcher, "u")
    assert [film.slug for film in result.films] == [f"film-{i}" for i in range(FILMS_PER_PAGE)]
    assert result.pages_fetched == 2 and len(fetcher.requested) == 2
    assert "no film it did not already have" in caplog.text


def test_grid_that_never_ends_stops_at_the_page_cap(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(walk, "MAX_GRID_PAGES", 7)
    fetcher = EndlessGrid(fresh=True)
    result = scrape_user_films(fetcher, "u")
    assert [film.slug for film in result.films[::FILMS_PER_PAGE]] == [
        f"film-{page}-0" for page in range(1, 8)]
    assert result.pages_fetched == 7 and len(fetcher.requested) == 7
    assert "7 pages" in caplog.text


def test_page_cap_is_far_beyond_a_real_grid() -> None:
    # thebigal's 13 pages are typical; thousands of pages would be a broken server.
    assert 500 <= walk.MAX_GRID_PAGES <= 10_000


def test_scrape_user_films_with_no_films() -> None:
    result = scrape_user_films(FakeFetcher({"/u/films/": grid_html([])}), "u")
    assert result.films == () and result.pages_fetched == 1


def test_scrape_watchlist_and_film() -> None:
    site = user_pages("u", [["a", "b"], ["c"]], kind="watchlist")
    site["/film/night-of-the-test/"] = fixture_page("film_page.html")
    fetcher = FakeFetcher(site)
    watchlist = [film.slug for film in scrape_watchlist(fetcher, "u")]
    assert unpadded(watchlist) == ["a", "b", "c"] and len(watchlist) == WATCHLIST_PER_PAGE + 1
    assert scrape_film(fetcher, "night-of-the-test").letterboxd_id == 98765
    with pytest.raises(NotFoundError):
        scrape_film(fetcher, "missing-film")


def members_html(names: list[str], has_next: bool) -> str:
    """A members page; one that links a next page is filled up to 30 rows, as on the site."""
    if has_next and names:
        names = names + [f"{PAD}{i}" for i in range(MEMBERS_PER_PAGE - len(names))]
    rows = "".join(f'<tr><td class="table-person"><a class="name" href="/{n}/">{n.upper()}</a>'
                   f'</td><td class="col-watched"><a>{i}</a></td></tr>'
                   for i, n in enumerate(names))
    following = '<a class="next" href="/next/">Next</a>' if has_next else ""
    return (f'<html><body><table class="member-table"><tbody>{rows}</tbody></table>'
            f'<div class="pagination">{following}</div></body></html>')


def test_iter_popular_members_pages_until_no_next() -> None:
    fetcher = FakeFetcher({"/members/popular/page/2/": members_html(["b", "c"], True),
                           "/members/popular/page/3/": members_html(["d"], False)})
    members = list(iter_popular_members(fetcher, start_page=2))
    assert [(page, member.username) for page, member in members
            if not member.username.startswith(PAD)] == [(2, "b"), (2, "c"), (3, "d")]
    assert members[0][1] == Member("b", "B", 0)


def test_iter_popular_members_stops_on_an_empty_page() -> None:
    """Past the end of the list, whatever its pagination says."""
    fetcher = FakeFetcher({"/members/popular/": members_html(["a"], True),
                           "/members/popular/page/2/": members_html([], True)})
    members = [member.username for _, member in iter_popular_members(fetcher)]
    assert members[0] == "a" and len(members) == MEMBERS_PER_PAGE
    assert len(fetcher.requested) == 2


def test_a_members_page_short_of_30_rows_that_links_a_next_one_is_incomplete() -> None:
    whole = members_html(["a"], True)
    short = whole[:whole.index("<tr>")] + whole[whole.index("</tr>") + 5:]  # one row gone
    with pytest.raises(IncompletePageError, match="29 rows, not a full page of 30"):
        read_members_page(FakeFetcher({"/members/popular/": short}), 1)
    with pytest.raises(IncompletePageError, match="no closing </html>"):
        read_members_page(FakeFetcher({"/members/popular/": whole[:-30]}), 1)
    assert len(read_members_page(FakeFetcher({"/members/popular/": whole}), 1).members) == 30


def test_iter_popular_members_stops_when_a_page_brings_nobody_new(
        caplog: pytest.LogCaptureFixture) -> None:
    # A server that answers every page number with page 1 and always links a next one.
    pages = {popular_members_path(page): members_html(["a", "b"], True) for page in range(1, 50)}
    fetcher = FakeFetcher(pages)
    members = [member.username for _, member in iter_popular_members(fetcher)]
    assert members[:2] == ["a", "b"] and len(members) == MEMBERS_PER_PAGE
    assert len(fetcher.requested) == 2
    assert "nobody new" in caplog.text


# --- scrape_users -----------------------------------------------------------

def site_of(usernames: list[str], pages_each: int = 1) -> dict[str, str | Exception]:
    site: dict[str, str | Exception] = {}
    for name in usernames:
        site.update(user_pages(name, [[f"{name}-film-{page}"] for page in range(pages_each)]))
    return site


def names(count: int) -> list[str]:
    return [f"user{i}" for i in range(count)]


def wait_for(event: threading.Event) -> None:
    assert event.wait(WAIT), "a test thread waited too long"


def test_results_come_in_input_order_even_when_later_users_finish_first() -> None:
    last_started = threading.Event()
    fetcher = FakeFetcher(site_of(names(3)),
                          before={"/user0/films/": lambda: wait_for(last_started),
                                  "/user2/films/": last_started.set})
    results = list(scrape_users(fetcher, names(3), workers=3, progress=False))
    assert [result.username for result in results] == names(3)
    assert results[0] == UserResult("user0", (FilmTile("user0-film-0", 1000, "L1000",
                                                         "user0-film-0", 2001, 5, False),),
                                    None, 1)


def test_lookahead_is_bounded_by_twice_the_workers() -> None:
    workers, pulled, consumed = 2, [0], [0]
    in_flight_seen: list[int] = []
    others_done = threading.Event()
    served: list[str] = []

    def usernames() -> Iterator[str]:
        for name in names(30):
            pulled[0] += 1
            in_flight_seen.append(pulled[0] - consumed[0])
            yield name

    def count_served(path: str) -> Callable[[], None]:
        def hook() -> None:
            served.append(path)
            if len(served) == 2 * workers - 1:
                others_done.set()
        return hook

    before = {f"/user{i}/films/": count_served(f"user{i}") for i in range(1, 30)}
    before["/user0/films/"] = lambda: (wait_for(others_done), pulled.append(pulled[0]))
    fetcher = FakeFetcher(site_of(names(30)), before=before)
    results = []
    for result in scrape_users(fetcher, usernames(), workers=workers, progress=False):
        consumed[0] += 1
        results.append(result.username)
    assert results == names(30)
    assert pulled[1] == 2 * workers  # while user0 was blocked, exactly 4 names were taken
    assert max(in_flight_seen) <= 2 * workers


def test_missing_and_private_users_are_recorded_not_fatal() -> None:
    site = site_of(["good", "later"], pages_each=2)
    site["/secret/films/"] = PrivateError("/secret/films/", "private")
    site["/flaky/films/"] = TransientError("/flaky/films/", "502 after retries")
    site["/broken/films/"] = "<html><body>nothing here</body></html>"
    site.update(user_pages("halfway", [["x"], ["y"]]))
    site["/halfway/films/page/2/"] = PrivateError("/halfway/films/page/2/", "private")
    order = ["good", "gone", "secret", "flaky", "broken", "bad/name", "halfway", "later"]
    results = list(scrape_users(FakeFetcher(site), order, workers=3, progress=False))
    assert [result.username for result in results] == order
    errors = {result.username: type(result.error) for result in results}
    assert errors == {"good": type(None), "gone": NotFoundError, "secret": PrivateError,
                      "flaky": TransientError, "broken": MarkupError,
                      "bad/name": InvalidNameError, "halfway": PrivateError,
                      "later": type(None)}
    assert all(result.films is None for result in results if result.error is not None)
    by_name = {result.username: result for result in results}
    assert (by_name["good"].pages_fetched, by_name["halfway"].pages_fetched) == (2, 1)
    assert by_name["bad/name"].pages_fetched == 0


def test_fetch_errors_about_one_users_pages_are_skips_not_the_end() -> None:
    site = site_of(["first", "last"])
    site["/gone/films/"] = NotFoundError("/gone/films/", "gone (HTTP 410)")
    site["/legal/films/"] = PageUnavailableError("/legal/films/", "unexpected HTTP 451")
    site["/moved/films/"] = PageUnavailableError("/moved/films/", "refusing to follow a "
                                                 "redirect off the site")
    site["/hidden/films/"] = RobotsDisallowedError("/hidden/films/", "robots.txt disallows")
    order = ["first", "gone", "legal", "moved", "hidden", "last"]
    results = list(scrape_users(FakeFetcher(site), order, workers=2, progress=False))
    assert [(result.username, type(result.error)) for result in results] == [
        ("first", type(None)), ("gone", NotFoundError), ("legal", PageUnavailableError),
        ("moved", PageUnavailableError), ("hidden", RobotsDisallowedError), ("last", type(None))]


def test_a_closed_fetcher_ends_the_crawl() -> None:
    site = site_of(names(3))
    closed = FetchError("/user1/films/", "not requested: the fetcher is closed")
    site["/user1/films/"] = closed
    with pytest.raises(FetchError) as raised:
        list(scrape_users(FakeFetcher(site), names(3), workers=1, progress=False))
    assert raised.value is closed


@pytest.mark.parametrize("stop", [BlockedError("/user1/films/", "challenge"),
                                  RateLimitedError("/user1/films/", "429 after every retry")])
def test_the_site_refusing_us_still_ends_the_crawl(stop: Exception) -> None:
    site = site_of(names(4))
    site["/user1/films/"] = stop
    results: list[str] = []
    with pytest.raises(type(stop)) as raised:
        for result in scrape_users(FakeFetcher(site), names(4), workers=1, progress=False):
            results.append(result.username)
    assert raised.value is stop
    assert results == ["user0"]


def test_block_yields_the_completed_prefix_then_raises() -> None:
    site = site_of(names(12))
    blocked = BlockedError("/user3/films/", "Cloudflare challenge")
    site["/user3/films/"] = blocked
    fetcher = FakeFetcher(site)
    results: list[str] = []
    with pytest.raises(BlockedError) as raised:
        for result in scrape_users(fetcher, names(12), workers=2, progress=False):
            results.append(result.username)
    assert raised.value is blocked
    assert results == ["user0", "user1", "user2"]
    # Nothing was submitted once user3 failed, and never more than 2 * workers ahead.
    assert fetcher.users_requested() <= set(names(7))


def test_block_waits_for_earlier_users_still_running() -> None:
    blocked_now = threading.Event()
    site = site_of(names(6), pages_each=2)
    site["/user1/films/"] = RateLimitedError("/user1/films/", "429", retry_after=60)
    fetcher = FakeFetcher(site, before={"/user0/films/page/2/": lambda: wait_for(blocked_now),
                                        "/user1/films/": blocked_now.set})
    results: list[UserResult] = []
    with pytest.raises(RateLimitedError):
        for result in scrape_users(fetcher, names(6), workers=2, progress=False):
            results.append(result)
    assert [(result.username, result.pages_fetched) for result in results] == [("user0", 2)]


def test_block_while_listing_users_finishes_the_users_in_hand() -> None:
    def usernames() -> Iterator[str]:
        yield from names(3)
        raise BlockedError("/members/popular/page/2/", "challenge")

    results: list[UserResult] = []
    with pytest.raises(BlockedError):
        for result in scrape_users(FakeFetcher(site_of(names(3), pages_each=2)), usernames(),
                                   workers=2, progress=False):
            results.append(result)
    assert [(result.username, result.pages_fetched) for result in results] == [
        ("user0", 2), ("user1", 2), ("user2", 2)]


def test_stop_event_finishes_users_in_hand_and_returns() -> None:
    stop = threading.Event()
    fetcher = FakeFetcher(site_of(names(40)))
    results = []
    for result in scrape_users(fetcher, names(40), workers=3, stop=stop, progress=False):
        results.append(result.username)
        stop.set()
    assert results == names(len(results))  # an in-order prefix, nothing skipped
    assert 1 <= len(results) <= 2 * 3
    assert fetcher.users_requested() <= set(names(2 * 3))


def test_stop_before_starting_scrapes_nothing() -> None:
    stop = threading.Event()
    stop.set()
    fetcher = FakeFetcher(site_of(names(5)))
    assert list(scrape_users(fetcher, names(5), workers=2, stop=stop, progress=False)) == []
    assert fetcher.requested == []


def test_closing_early_returns_at_once_and_abandons_running_users() -> None:
    release = threading.Event()
    entered = threading.Event()
    released_in_time: list[bool] = []

    def block() -> None:
        entered.set()
        released_in_time.append(release.wait(WAIT))

    fetcher = FakeFetcher(site_of(names(10), pages_each=3),
                          before={"/user1/films/": block})
    before = set(threading.enumerate())
    results = scrape_users(fetcher, names(10), workers=2, progress=False)
    assert next(results).username == "user0"
    wait_for(entered)
    results.close()  # user1 is blocked inside the fetcher: close must not wait for it
    release.set()
    for thread in set(threading.enumerate()) - before:
        thread.join(WAIT)
        assert not thread.is_alive()
    assert released_in_time == [True]
    # user1 stopped after its first page; nothing was submitted after the close.
    assert "/user1/films/page/2/" not in fetcher.requested
    assert fetcher.users_requested() <= set(names(2 * 2))


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError):
        list(scrape_users(FakeFetcher({}), ["a"], workers=0, progress=False))


def test_progress_bar_stays_quiet_when_stderr_is_not_a_terminal(
        capsys: pytest.CaptureFixture[str]) -> None:
    list(scrape_users(FakeFetcher(site_of(names(2))), names(2), workers=1, progress=True))
    assert capsys.readouterr().err == ""
