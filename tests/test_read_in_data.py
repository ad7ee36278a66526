"""Parsers on real saved pages and hand-written ones; the user pool with a fake fetcher."""
from __future__ import annotations

import html as html_escaping
import re
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest

import read_in_data
from errors import (BlockedError, FetchError, InvalidNameError, MarkupError, NotFoundError,
                    PageUnavailableError, PrivateError, RateLimitedError,
                    RobotsDisallowedError, TransientError)
from read_in_data import (FilmDetails, FilmGridPage, FilmTile, Member, UserResult, film_path,
                          iter_popular_members, parse_film_grid, parse_film_page,
                          parse_members_page, popular_members_path, scrape_film,
                          scrape_user_films, scrape_users, scrape_watchlist, user_films_path,
                          watchlist_path)
from tests.conftest import shared_page

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pages"
WAIT = 5.0  # seconds a test thread may wait for another before the test fails instead of hanging


def own_page(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def without_film_ids(html: str) -> str:
    """The page as Letterboxd has served it since April 2026."""
    return re.sub(r'\sdata-film-id="[^"]*"', "", html)


def rated(films: tuple[FilmTile, ...]) -> int:
    return sum(film.rating is not None for film in films)


def counts(page: FilmGridPage) -> tuple[int, int, int, int]:
    """Films, rated films, liked films, last page."""
    return (len(page.films), rated(page.films), sum(film.liked for film in page.films),
            page.last_page)


@pytest.fixture(params=["as saved", "data-film-id stripped"])
def variant(request: pytest.FixtureRequest) -> Callable[[str], str]:
    if request.param == "as saved":
        return lambda name: shared_page(name)

    def stripped(name: str) -> str:
        html = without_film_ids(shared_page(name))
        assert "data-film-id" not in html
        return html
    return stripped


# --- real pages: grids ------------------------------------------------------

def test_thebigal_raw_grid(variant: Callable[[str], str]) -> None:
    page = parse_film_grid(variant("youngjaek__user_films_page1_thebigal_RAW.html"))
    assert counts(page) == (72, 68, 26, 13)
    assert page.films[0] == FilmTile(slug="one-battle-after-another", letterboxd_id=951277,
                                     lid="DUHM", title="One Battle After Another", year=2025,
                                     rating=9, liked=True)
    by_slug = {film.slug: film for film in page.films}
    assert by_slug["deadpool-wolverine"] == FilmTile("deadpool-wolverine", 462870, "jq8s",
                                                     "Deadpool & Wolverine", 2024, 1, False)
    assert by_slug["espers-light"].title == "Esper's Light"
    assert by_slug["espers-light"].rating is None
    assert all(film.letterboxd_id and film.lid and film.year for film in page.films)


def test_samtestacct_rendered_grid(variant: Callable[[str], str]) -> None:
    page = parse_film_grid(variant("sdl60660__user_films_samtestacct_page1_RENDERED.html"))
    # 27 liked: counted with grep over the page's poster-viewingdata paragraphs.
    assert counts(page) == (72, 63, 27, 2)
    assert page.films[0] == FilmTile("anniversary-2025", 1015194, "GAYY", "Anniversary", 2025,
                                     5, False)
    assert len({film.slug for film in page.films}) == 72


def test_watchlist_rendered(variant: Callable[[str], str]) -> None:
    page = parse_film_grid(variant("sdl60660__user_watchlist_samtestacct_RENDERED.html"))
    assert counts(page) == (20, 0, 0, 1)
    assert page.films[0] == FilmTile("gozu", 44548, "1RTa", "Gozu", 2003, None, False)


def test_list_page_posteritems(variant: Callable[[str], str]) -> None:
    page = parse_film_grid(variant("youngjaek__list_dave_official-top-250_page1_RAW.html"))
    assert (len(page.films), rated(page.films), page.last_page) == (100, 0, 3)
    assert page.films[0] == FilmTile("harakiri", 43015, "1NTU", "Harakiri", 1962, None, False)
    assert "schindlers-list" in {film.slug for film in page.films}


# --- real pages: members and films ------------------------------------------

def test_popular_members_rendered(variant: Callable[[str], str]) -> None:
    page = parse_members_page(variant("sdl60660__members_popular_this-week_page1_RENDERED.html"))
    assert len(page.members) == 30 and page.has_next
    assert page.members[0] == Member("schaffrillas", "James (Schaffrillas)", 1343)
    assert page.members[2] == Member("zoerosebryant", "zoë rose bryant", 5014)
    assert len({member.username for member in page.members}) == 30


def test_mulholland_drive(variant: Callable[[str], str]) -> None:
    film = parse_film_page(variant("youngjaek__film_mulholland-drive_RAW.html"))
    assert film == FilmDetails(slug="mulholland-drive", letterboxd_id=51171, lid="297o",
                               title="Mulholland Drive", year=2001,
                               genres=("Drama", "Mystery", "Thriller"), average_rating=4.26,
                               rating_count=1072467, tmdb_id=1018, tmdb_type="movie",
                               imdb_id="tt0166924")


def test_tv_miniseries_takes_tmdb_type_from_the_link(variant: Callable[[str], str]) -> None:
    film = parse_film_page(variant("youngjaek__film_unbelievable-2019_tv-miniseries_RAW.html"),
                           slug="unbelievable-2019")
    assert (film.slug, film.letterboxd_id, film.title, film.year) == (
        "unbelievable-2019", 557494, "Unbelievable", 2019)
    assert (film.tmdb_id, film.tmdb_type, film.imdb_id) == (91275, "tv", "tt7909970")
    assert film.genres == ("Drama", "Crime")


@pytest.mark.parametrize("name", ["sdl60660__film_the-zone-of-interest_RENDERED.html",
                                  "sdl60660__film_the-zone-of-interest_RENDERED_no-jsonld.html"])
def test_zone_of_interest_with_and_without_json_ld(variant: Callable[[str], str],
                                                    name: str) -> None:
    film = parse_film_page(variant(name))
    assert (film.slug, film.letterboxd_id, film.lid, film.title, film.year) == (
        "the-zone-of-interest", 398800, "gJsA", "The Zone of Interest", 2023)
    assert film.genres == ("Drama", "History", "War")
    assert (film.average_rating, film.rating_count) == (3.86, 871061)
    assert (film.tmdb_id, film.tmdb_type, film.imdb_id) == (467244, "movie", "tt7160372")


def test_raw_film_page_without_json_ld_or_poster_still_identifies_the_film() -> None:
    html = shared_page("youngjaek__film_mulholland-drive_RAW.html")
    html = re.sub(r'<script type="application/ld\+json">.*?</script>', "", html, flags=re.S)
    html = without_film_ids(html).replace('id="js-poster-col"', 'id="elsewhere"')
    film = parse_film_page(html)
    # The id now comes from the inline viewingable script; the average from twitter:data2.
    assert (film.slug, film.letterboxd_id, film.lid, film.title, film.year) == (
        "mulholland-drive", 51171, None, "Mulholland Drive", 2001)
    assert film.genres == ("Drama", "Mystery", "Thriller")
    assert (film.average_rating, film.rating_count) == (4.26, None)


# --- own fixtures: 2026 markup ----------------------------------------------

def test_own_grid_page(caplog: pytest.LogCaptureFixture) -> None:
    page = parse_film_grid(own_page("user_films_page2.html"))
    assert page.films == (
        FilmTile("tom-and-jerrys-night", 12345, "aB3x", "Tom & Jerry's Night", 1999, 7, True),
        FilmTile("untitled-project", 777, "Zz9", "Untitled Project", None, None, False),
        # Slug from the link, id from the viewing data, title from the full display name.
        FilmTile("no-slug-attribute-1984", 4242, None, "No Slug Attribute", 1984, 1, False),
    )
    assert page.last_page == 9
    assert "../../etc/passwd" in caplog.text


def test_own_members_page(caplog: pytest.LogCaptureFixture) -> None:
    page = parse_members_page(own_page("members_page.html"))
    assert page.members == (Member("filmfan_1", "Film Fan", 12345),
                            Member("quiet", "Quiet One", None))
    assert page.has_next
    assert "not/a-user" in caplog.text


def test_own_film_page() -> None:
    film = parse_film_page(own_page("film_page.html"), slug="night-of-the-test")
    assert film == FilmDetails("night-of-the-test", 98765, "tEsT", "Night of the Test", 1968,
                               ("Horror", "Science Fiction"), 3.75, 123456, 4321, "movie",
                               "tt0063350")


def test_own_film_page_fallbacks_one_source_at_a_time() -> None:
    html = own_page("film_page.html")
    html = re.sub(r'<script type="application/ld\+json">.*?</script>', "", html, flags=re.S)
    film = parse_film_page(html)
    assert (film.slug, film.letterboxd_id, film.lid, film.title, film.year) == (
        "night-of-the-test", 98765, "tEsT", "Night of the Test", 1968)
    assert film.genres == ("Horror", "Science Fiction")
    assert (film.average_rating, film.rating_count) == (3.75, None)

    html = html.replace('id="js-poster-col"', 'id="elsewhere"')  # id from production:identifier
    html = re.sub(r'<meta name="production:name"[^>]*>', "", html)  # title from the masthead
    html = html.replace('data-track-action="TMDB"', "")  # TMDB from the body attributes
    html = html.replace('id="tab-genres"', 'id="other"')  # genres from any genre link
    film = parse_film_page(html)
    assert (film.letterboxd_id, film.lid, film.title, film.year) == (98765, "tEsT",
                                                                     "Night of the Test", 1968)
    assert (film.tmdb_id, film.tmdb_type, film.genres) == (4321, "movie",
                                                           ("Horror", "Science Fiction"))

    html = re.sub(r'<meta name="production:identifier"[^>]*>', "", html)
    html = re.sub(r'<section class="production-masthead.*?</section>', "", html, flags=re.S)
    film = parse_film_page(html)
    # Only og:* left: title and year from og:title, slug from og:url, no id.
    assert (film.slug, film.letterboxd_id, film.title, film.year) == (
        "night-of-the-test", None, "Night of the Test", 1968)


def test_film_page_slug_falls_back_to_the_requested_one() -> None:
    html = ('<html><body id="content"><section class="production-masthead"><h1>'
            '<span class="name">Bare</span></h1></section></body></html>')
    assert parse_film_page(html, slug="bare-2020").slug == "bare-2020"
    with pytest.raises(MarkupError):
        parse_film_page(html)


def test_film_page_without_any_title_is_a_markup_error() -> None:
    with pytest.raises(MarkupError):
        parse_film_page('<html><body><h1>Just a moment...</h1></body></html>', slug="x")


# --- grid edge cases --------------------------------------------------------

def tile_html(slug: str, name: str, uid: int, rating: int | None = None) -> str:
    rating_span = f'<span class="rating rated-{rating}">*</span>' if rating else ""
    return (f'<li class="griditem"><div class="react-component" '
            f'data-component-class="LazyPoster" data-item-slug="{slug}" '
            f'data-item-name="{html_escaping.escape(name)}" '
            f'''data-postered-identifier='{{"lid":"L{uid}","uid":"film:{uid}"}}'></div>'''
            f'<p class="poster-viewingdata">{rating_span}</p></li>')


def grid_html(tiles: list[str], pagination: str = "") -> str:
    return (f'<html><body><div id="content"><ul class="grid">{"".join(tiles)}</ul>'
            f'{pagination}</div></body></html>')


def test_empty_grid_is_not_an_error() -> None:
    assert parse_film_grid(grid_html([])) == FilmGridPage(films=(), last_page=1)


def test_page_that_is_not_a_letterboxd_page_is_a_markup_error() -> None:
    challenge = "<html><head><title>Just a moment...</title></head><body></body></html>"
    with pytest.raises(MarkupError):
        parse_film_grid(challenge)
    with pytest.raises(MarkupError):
        parse_film_grid("")


def test_grid_with_tiles_but_none_readable_is_a_markup_error() -> None:
    html = grid_html(['<li class="griditem"><div class="poster"></div></li>'] * 3)
    with pytest.raises(MarkupError):
        parse_film_grid(html)


def test_next_link_beyond_the_listed_pages() -> None:
    only_next = '<div class="pagination"><a class="next" href="/u/films/page/5/">Older</a></div>'
    assert parse_film_grid(grid_html([tile_html("a", "A (2000)", 1)], only_next)).last_page == 5
    listed = ('<div class="pagination"><div class="paginate-nextprev"><a class="next">Older</a>'
              '</div><div class="paginate-pages"><ul><li class="paginate-page"><a>3</a></li>'
              '<li class="paginate-page paginate-current"><span>4</span></li></ul></div></div>')
    assert parse_film_grid(grid_html([tile_html("a", "A (2000)", 1)], listed)).last_page == 5


def test_legacy_poster_container_markup() -> None:
    html = grid_html([
        '<li class="poster-container"><div class="poster film-poster" data-film-id="99" '
        'data-film-slug="/film/old-school/"><img alt="Old School"/></div>'
        '<p class="poster-viewingdata"><span class="rating -micro rated-6"></span>'
        '<span class="like liked-micro has-icon icon-liked icon-16"></span></p></li>',
        '<li class="poster-container"><div class="film-poster" data-film-id="100" '
        'data-film-slug="older-school" data-film-name="Older School" '
        'data-film-release-year="1999"></div></li>',
    ])
    assert parse_film_grid(html).films == (
        FilmTile("old-school", 99, None, "Old School", None, 6, True),
        FilmTile("older-school", 100, None, "Older School", 1999, None, False),
    )


def test_rating_classes_outside_one_to_ten_are_ignored() -> None:
    page = parse_film_grid(grid_html([tile_html("a", "A", 1, rating=11),
                                      tile_html("b", "B", 2, rating=10)]))
    assert [film.rating for film in page.films] == [None, 10]


def test_members_page_without_a_table_is_a_markup_error() -> None:
    with pytest.raises(MarkupError):
        parse_members_page("<html><body><div id='content'>Sorry</div></body></html>")


def test_members_page_with_an_empty_table() -> None:
    page = parse_members_page('<html><body><table class="member-table"><tbody></tbody>'
                              '</table></body></html>')
    assert page.members == () and not page.has_next


# --- paths ------------------------------------------------------------------

def test_paths() -> None:
    assert popular_members_path() == "/members/popular/"
    assert popular_members_path(3) == "/members/popular/page/3/"
    assert user_films_path("TheBigAl") == "/thebigal/films/"
    assert user_films_path("thebigal", 2) == "/thebigal/films/page/2/"
    assert watchlist_path("sam_1", 1) == "/sam_1/watchlist/"
    assert watchlist_path("sam_1", 12) == "/sam_1/watchlist/page/12/"
    assert film_path("mulholland-drive") == "/film/mulholland-drive/"


@pytest.mark.parametrize("build", [lambda: user_films_path("../admin"),
                                   lambda: watchlist_path("a/b"),
                                   lambda: film_path("Mulholland Drive"),
                                   lambda: film_path("x/../../y")])
def test_paths_reject_bad_names(build: Callable[[], str]) -> None:
    with pytest.raises(InvalidNameError):
        build()


@pytest.mark.parametrize("page", [0, -1, True, 1.5])
def test_paths_reject_bad_page_numbers(page: object) -> None:
    with pytest.raises(ValueError):
        user_films_path("thebigal", page)  # type: ignore[arg-type]


# --- scraping with a fake fetcher -------------------------------------------

class FakeFetcher:
    """Pages by path; a missing path is a 404. `before` runs a hook before serving a path."""

    def __init__(self, pages: dict[str, str | Exception],
                 before: dict[str, Callable[[], None]] | None = None) -> None:
        self.pages = pages
        self.before = before or {}
        self.requested: list[str] = []
        self._lock = threading.Lock()

    def get_html(self, path: str) -> str:
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


def user_pages(username: str, pages: list[list[str]], kind: str = "films"
               ) -> dict[str, str | Exception]:
    site: dict[str, str | Exception] = {}
    for number, slugs in enumerate(pages, start=1):
        path = f"/{username}/{kind}/" + ("" if number == 1 else f"page/{number}/")
        tiles = [tile_html(slug, f"{slug} (2001)", 1000 + i, rating=5) for i, slug in
                 enumerate(slugs)]
        site[path] = grid_html(tiles, numbered(number, len(pages)))
    return site


def test_scrape_user_films_reads_every_page_and_keeps_first_sighting() -> None:
    fetcher = FakeFetcher(user_pages("u", [["a", "b"], ["b", "c"], ["d"]]))
    result = scrape_user_films(fetcher, "U")
    assert result.username == "u" and result.pages_fetched == 3
    assert [film.slug for film in result.films] == ["a", "b", "c", "d"]
    assert result.films[1].letterboxd_id == 1001  # "b" as first seen on page 1
    assert fetcher.requested == ["/u/films/", "/u/films/page/2/", "/u/films/page/3/"]


def test_scrape_user_films_follows_a_growing_last_page_and_stops_at_an_empty_one() -> None:
    site = user_pages("u", [["a"], ["b"]])
    site["/u/films/page/2/"] = grid_html([tile_html("b", "B", 2)], numbered(2, 4))
    site["/u/films/page/3/"] = grid_html([], numbered(3, 4))
    result = scrape_user_films(FakeFetcher(site), "u")
    assert [film.slug for film in result.films] == ["a", "b"] and result.pages_fetched == 3


class EndlessGrid:
    """A broken server: every page of u's films links a next page, forever.

    `fresh` pages hold a new film each; otherwise every page repeats page 1's films.
    Past `RUNAWAY` requests it raises, so a missing stop fails the test instead of hanging it.
    """

    RUNAWAY = 50

    def __init__(self, fresh: bool) -> None:
        self.fresh = fresh
        self.requested: list[str] = []

    def get_html(self, path: str) -> str:
        self.requested.append(path)
        if len(self.requested) > self.RUNAWAY:
            raise AssertionError(f"still paging after {self.RUNAWAY} pages")
        match = re.fullmatch(r"/u/films/(?:page/(\d+)/)?", path)
        assert match, path
        page = int(match.group(1) or 1)
        next_link = (f'<div class="pagination"><a class="next" href="/u/films/page/{page + 1}/">'
                     'Older</a></div>')
        slugs = [f"film-{page}"] if self.fresh else ["film-a", "film-b"]
        return grid_html([tile_html(slug, slug, 1000 + i) for i, slug in enumerate(slugs)],
                         next_link)


def test_grid_that_repeats_itself_is_read_once(caplog: pytest.LogCaptureFixture) -> None:
    fetcher = EndlessGrid(fresh=False)
    result = scrape_user_films(fetcher, "u")
    assert [film.slug for film in result.films] == ["film-a", "film-b"]
    assert result.pages_fetched == 2 and len(fetcher.requested) == 2
    assert "no film it did not already have" in caplog.text


def test_grid_that_never_ends_stops_at_the_page_cap(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(read_in_data, "MAX_GRID_PAGES", 7)
    fetcher = EndlessGrid(fresh=True)
    result = scrape_user_films(fetcher, "u")
    assert [film.slug for film in result.films] == [f"film-{page}" for page in range(1, 8)]
    assert result.pages_fetched == 7 and len(fetcher.requested) == 7
    assert "7 pages" in caplog.text


def test_page_cap_is_far_beyond_a_real_grid() -> None:
    # thebigal's 13 pages are typical; thousands of pages would be a broken server.
    assert 500 <= read_in_data.MAX_GRID_PAGES <= 10_000


def test_scrape_user_films_with_no_films() -> None:
    result = scrape_user_films(FakeFetcher({"/u/films/": grid_html([])}), "u")
    assert result.films == () and result.pages_fetched == 1


def test_scrape_watchlist_and_film() -> None:
    site = user_pages("u", [["a", "b"], ["c"]], kind="watchlist")
    site["/film/night-of-the-test/"] = own_page("film_page.html")
    fetcher = FakeFetcher(site)
    assert [film.slug for film in scrape_watchlist(fetcher, "u")] == ["a", "b", "c"]
    assert scrape_film(fetcher, "night-of-the-test").letterboxd_id == 98765
    with pytest.raises(NotFoundError):
        scrape_film(fetcher, "missing-film")


def members_html(names: list[str], has_next: bool) -> str:
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
    assert [(page, member.username) for page, member in members] == [(2, "b"), (2, "c"),
                                                                      (3, "d")]
    assert members[0][1] == Member("b", "B", 0)


def test_iter_popular_members_stops_on_an_empty_page() -> None:
    fetcher = FakeFetcher({"/members/popular/": members_html(["a"], True),
                           "/members/popular/page/2/": members_html([], True)})
    assert [member.username for _, member in iter_popular_members(fetcher)] == ["a"]
    assert len(fetcher.requested) == 2


def test_iter_popular_members_stops_when_a_page_brings_nobody_new(
        caplog: pytest.LogCaptureFixture) -> None:
    # A server that answers every page number with page 1 and always links a next one.
    pages = {popular_members_path(page): members_html(["a", "b"], True) for page in range(1, 50)}
    fetcher = FakeFetcher(pages)
    assert [member.username for _, member in iter_popular_members(fetcher)] == ["a", "b"]
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
