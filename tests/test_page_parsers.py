"""The page parsers on real saved pages and hand-written ones; the site's paths.

Every real page is read as saved and with `data-film-id` stripped, as the site has
served it since April 2026.
"""
from __future__ import annotations

import re
from typing import Callable

import pytest

import read_in_data
from errors import IncompletePageError, InvalidNameError, MarkupError
from letterboxd import film_page, grid_page, members_page, records, urls
from letterboxd.film_page import parse_film_page
from letterboxd.grid_page import parse_film_grid
from letterboxd.members_page import parse_members_page
from letterboxd.records import FilmDetails, FilmGridPage, FilmTile, Member
from letterboxd.urls import film_path, popular_members_path, user_films_path, watchlist_path
from scraping import crawl, walk
from tests.helpers import fixture_page, grid_html, tile_html


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
        return fixture_page

    def stripped(name: str) -> str:
        html = without_film_ids(fixture_page(name))
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
                               imdb_id="tt0166924", runtime=147, language="English",
                               countries=("France", "USA"))


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
    html = fixture_page("youngjaek__film_mulholland-drive_RAW.html")
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
    page = parse_film_grid(fixture_page("user_films_page2.html"))
    assert page.films == (
        FilmTile("tom-and-jerrys-night", 12345, "aB3x", "Tom & Jerry's Night", 1999, 7, True),
        FilmTile("untitled-project", 777, "Zz9", "Untitled Project", None, None, False),
        # Slug from the link, id from the viewing data, title from the full display name.
        FilmTile("no-slug-attribute-1984", 4242, None, "No Slug Attribute", 1984, 1, False),
    )
    assert page.last_page == 9
    assert "../../etc/passwd" in caplog.text


def test_own_members_page(caplog: pytest.LogCaptureFixture) -> None:
    page = parse_members_page(fixture_page("members_page.html"))
    assert page.members == (Member("filmfan_1", "Film Fan", 12345),
                            Member("quiet", "Quiet One", None))
    assert page.has_next
    assert "not/a-user" in caplog.text


def test_own_film_page() -> None:
    film = parse_film_page(fixture_page("film_page.html"), slug="night-of-the-test")
    assert film == FilmDetails("night-of-the-test", 98765, "tEsT", "Night of the Test", 1968,
                               ("Horror", "Science Fiction"), 3.75, 123456, 4321, "movie",
                               "tt0063350", runtime=96)


def test_own_film_page_fallbacks_one_source_at_a_time() -> None:
    html = fixture_page("film_page.html")
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

@pytest.mark.parametrize("name, shown_total", [
    ("youngjaek__user_films_page1_thebigal_RAW.html", 925),   # the heading's "925 films"
    ("sdl60660__user_films_samtestacct_page1_RENDERED.html", 79),  # rendered: data-original-title
    ("sdl60660__user_watchlist_samtestacct_RENDERED.html", 20),  # data-num-entries
    ("youngjaek__list_dave_official-top-250_page1_RAW.html", None),  # a list shows none
])
def test_grids_say_how_many_films_they_hold(name: str, shown_total: int | None) -> None:
    assert parse_film_grid(fixture_page(name)).shown_total == shown_total


@pytest.mark.parametrize("name, parse", [
    ("youngjaek__user_films_page1_thebigal_RAW.html", parse_film_grid),
    ("youngjaek__film_mulholland-drive_RAW.html", parse_film_page),
    ("sdl60660__members_popular_this-week_page1_RENDERED.html", parse_members_page),
    ("members_page.html", parse_members_page), ("film_page.html", parse_film_page),
    ("user_films_page2.html", parse_film_grid)])
def test_a_real_page_cut_anywhere_is_incomplete(name: str, parse: Callable[[str], object]
                                                ) -> None:
    """Real pages end with </html> (raw ones, then whitespace); one that stops is refused."""
    html = fixture_page(name)
    parse(html)
    end = html.rindex("</html>")
    for cut in (end, end // 2, 100, 0):
        with pytest.raises(IncompletePageError, match="no closing </html>"):
            parse(html[:cut])
    parse(html.rstrip() + "\n<!-- served in 20 ms -->\n")  # a comment after the end is fine


def test_empty_grid_is_not_an_error() -> None:
    assert parse_film_grid(grid_html([])) == FilmGridPage(films=(), last_page=1, tile_count=0,
                                                          shown_total=None)


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


# --- the public face ----------------------------------------------------------

def test_read_in_data_is_the_face_of_the_parsers_records_and_crawl() -> None:
    homes = (film_page, grid_page, members_page, records, urls, walk, crawl)
    for name in read_in_data.__all__:
        assert any(getattr(home, name, None) is getattr(read_in_data, name) for home in homes), name
