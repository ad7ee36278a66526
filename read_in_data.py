"""Letterboxd pages in, small frozen records out; plus the thread pool that scrapes many users.

The parsers are pure functions of the HTML text (lxml XPath, no BeautifulSoup: a
72-film grid must parse in a few milliseconds). They read attribute values, not
cosmetic classes, because those survived every markup change since 2025, and they
raise MarkupError instead of returning "nothing" when a page is not what we expect,
so a redesign is noticed instead of silently producing an empty dataset.

Scraping only needs a duck-typed fetcher with `get_html(path) -> str`; rate limits
and retries live in the fetcher, so the pool here only decides how many users are
in flight and in which order results come back.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections import deque
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Protocol

import lxml.etree
import lxml.html
from tqdm import tqdm

from errors import (InvalidNameError, LetterboxdError, MarkupError, NotFoundError,
                    PageUnavailableError, PrivateError, ResponseTooLargeError,
                    RobotsDisallowedError, TransientError)
from letterboxd.urls import (film_path, popular_members_path, user_films_path,
                             watchlist_path)
from names import is_valid_lid, validate_slug, validate_username

logger = logging.getLogger(__name__)


class HtmlFetcher(Protocol):
    def get_html(self, path: str) -> str: ...


# --- records ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Member:
    username: str
    display_name: str
    films_watched: int | None


@dataclass(frozen=True, slots=True)
class MembersPage:
    members: tuple[Member, ...]
    has_next: bool


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
    films: tuple[FilmTile, ...]
    last_page: int


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


@dataclass(frozen=True, slots=True)
class UserFilms:
    username: str
    films: tuple[FilmTile, ...]
    pages_fetched: int


@dataclass(frozen=True, slots=True)
class UserResult:
    """One user's outcome; exactly one of `films` and `error` is None."""

    username: str
    films: tuple[FilmTile, ...] | None
    error: LetterboxdError | None
    pages_fetched: int


# --- parsing helpers --------------------------------------------------------

def _has_class(name: str) -> str:
    """XPath predicate for one whole class token (contains() alone would match prefixes)."""
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


_TILES = lxml.etree.XPath(
    f"//li[{_has_class('griditem')} or {_has_class('posteritem')}"
    f" or {_has_class('poster-container')}]")
_TILE_ISLAND = lxml.etree.XPath(
    ".//*[@data-item-slug or @data-film-slug or @data-component-class='LazyPoster'][1]")
_TILE_VIEWING_DATA = lxml.etree.XPath(f".//p[{_has_class('poster-viewingdata')}]")
_TILE_IMAGE_ALT = lxml.etree.XPath(".//img/@alt")
_PAGE_CONTENT = lxml.etree.XPath("//*[@id='content']")
_PAGINATION = lxml.etree.XPath(f"//div[{_has_class('pagination')}]")
_PAGE_NUMBERS = lxml.etree.XPath(f".//*[{_has_class('paginate-pages')}]//li//text()")
_CURRENT_PAGE = lxml.etree.XPath(f".//li[{_has_class('paginate-current')}]//text()")
_NEXT_LINK = lxml.etree.XPath(f".//a[{_has_class('next')}]")
_MEMBER_TABLES = lxml.etree.XPath(
    f"//table[{_has_class('member-table')} or {_has_class('person-table')}]")
_MEMBER_ROWS = lxml.etree.XPath(f".//tr[td[{_has_class('table-person')}]]")
_MEMBER_NAME_LINK = lxml.etree.XPath(f".//a[{_has_class('name')}][@href][1]")
_MEMBER_AVATAR_ALT = lxml.etree.XPath(f".//a[{_has_class('avatar')}]//img/@alt")
_MEMBER_WATCHED = lxml.etree.XPath(f"string(.//td[{_has_class('col-watched')}])")

_NAME_WITH_YEAR = re.compile(r"(?P<title>.+?)\s+\((?P<year>\d{4})\)")
_FILM_LINK = re.compile(r"/film/([^/]+)/")
_FILM_UID = re.compile(r"film:(\d+)")
_RATED = re.compile(r"(?:^|\s)rated-(\d+)(?:\s|$)")
_PAGE_IN_HREF = re.compile(r"/page/(\d+)/")
_DIGITS = re.compile(r"\d[\d,]*")


def _document(html: str) -> lxml.html.HtmlElement:
    try:
        return lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError) as error:
        raise MarkupError(f"not an HTML page: {error}") from None


def _json_object(text: str | None) -> dict:
    """The JSON object in an attribute or script, {} when absent or malformed."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _film_uid(uid: object) -> int | None:
    match = _FILM_UID.fullmatch(uid) if isinstance(uid, str) else None
    return int(match.group(1)) if match else None


def _int_or_none(text: str | None) -> int | None:
    match = _DIGITS.search(text or "")
    return int(match.group(0).replace(",", "")) if match else None


def _split_name_and_year(name: str) -> tuple[str, int | None]:
    match = _NAME_WITH_YEAR.fullmatch(name)
    if match is None:
        return name, None
    return match.group("title"), int(match.group("year"))


def _clean_text(text: str) -> str:
    """Collapse runs of whitespace, including the &nbsp; Letterboxd puts into titles."""
    return " ".join(text.split())


# --- grids (user films, watchlist, lists) -----------------------------------

def _tile_slug(island: lxml.html.HtmlElement) -> str | None:
    slug = island.get("data-item-slug") or island.get("data-film-slug")
    if slug:
        match = _FILM_LINK.search(slug)  # legacy tiles held "/film/SLUG/"
        return match.group(1) if match else slug
    for link in (island.get("data-item-link"), island.get("data-target-link")):
        match = _FILM_LINK.search(link or "")
        if match:
            return match.group(1)
    return None


def _tile_title_and_year(island: lxml.html.HtmlElement) -> tuple[str, int | None]:
    name = (island.get("data-item-name") or island.get("data-item-full-display-name")
            or island.get("data-film-name"))
    if not name:
        alts = _TILE_IMAGE_ALT(island)
        # The rendered DOM says "Poster for Title (2025)", the raw HTML just "Title".
        name = alts[0].strip().removeprefix("Poster for ") if alts else ""
    title, year = _split_name_and_year(name)
    return title, year or _int_or_none(island.get("data-film-release-year"))


def _tile_viewing(tile: lxml.html.HtmlElement) -> tuple[int | None, bool, int | None]:
    """Rating, liked flag and the film id the viewing-data paragraph carries."""
    rating, liked, film_id = None, False, None
    for paragraph in _TILE_VIEWING_DATA(tile):
        film_id = film_id or _film_uid(paragraph.get("data-item-uid"))
        for element in paragraph.iter():
            classes = element.get("class")
            if not classes:
                continue
            match = _RATED.search(classes)
            if match and 1 <= int(match.group(1)) <= 10:
                rating = int(match.group(1))
            tokens = classes.split()
            if "icon-liked" in tokens or "liked" in tokens:
                liked = True
    return rating, liked, film_id


def _parse_tile(tile: lxml.html.HtmlElement) -> FilmTile | None:
    islands = _TILE_ISLAND(tile)
    if not islands:
        return None
    island = islands[0]
    slug = _tile_slug(island)
    try:
        slug = validate_slug(slug)
    except InvalidNameError:
        logger.warning("skipping a poster whose film slug is not valid: %r", slug)
        return None
    identifier = _json_object(island.get("data-postered-identifier"))
    rating, liked, viewing_film_id = _tile_viewing(tile)
    letterboxd_id = (_film_uid(identifier.get("uid")) or viewing_film_id
                     or _int_or_none(island.get("data-film-id")))
    lid = identifier.get("lid")
    title, year = _tile_title_and_year(island)
    return FilmTile(slug=slug, letterboxd_id=letterboxd_id,
                    lid=lid if is_valid_lid(lid) else None,
                    title=title, year=year, rating=rating, liked=liked)


def _last_page(document: lxml.html.HtmlElement) -> int:
    """Highest page we know exists: listed numbers, or one past the current if `next` exists."""
    last = 1
    for pagination in _PAGINATION(document):
        numbers = [int(text) for text in _PAGE_NUMBERS(pagination) if text.strip().isdigit()]
        current = next((int(text) for text in _CURRENT_PAGE(pagination)
                        if text.strip().isdigit()), 1)
        last = max([last, current, *numbers])
        for link in _NEXT_LINK(pagination):
            match = _PAGE_IN_HREF.search(link.get("href") or "")
            last = max(last, int(match.group(1)) if match else current + 1)
    return last


def parse_film_grid(html: str) -> FilmGridPage:
    """A page of posters: a user's films, a watchlist or a list."""
    document = _document(html)
    tiles = _TILES(document)
    films = tuple(film for film in map(_parse_tile, tiles) if film is not None)
    if tiles and not films:
        raise MarkupError(f"none of the {len(tiles)} posters on the page could be read")
    if not tiles and not _PAGE_CONTENT(document):
        raise MarkupError("no posters and no Letterboxd page content: not a grid page")
    return FilmGridPage(films=films, last_page=_last_page(document))


# --- members ----------------------------------------------------------------

def _parse_member_row(row: lxml.html.HtmlElement) -> Member | None:
    links = _MEMBER_NAME_LINK(row)
    if not links:
        return None
    href = links[0].get("href").strip("/")
    try:
        username = validate_username(href)
    except InvalidNameError:
        logger.warning("skipping a member whose link is not a username: %r", href)
        return None
    alts = _MEMBER_AVATAR_ALT(row)
    display_name = (_clean_text(links[0].text_content())
                    or (_clean_text(alts[0]) if alts else "") or username)
    return Member(username=username, display_name=display_name,
                  films_watched=_int_or_none(_MEMBER_WATCHED(row)))


def parse_members_page(html: str) -> MembersPage:
    document = _document(html)
    tables = _MEMBER_TABLES(document)
    if not tables:
        raise MarkupError("no member table on the members page")
    rows = [row for table in tables for row in _MEMBER_ROWS(table)]
    members = tuple(member for member in map(_parse_member_row, rows) if member is not None)
    if rows and not members:
        raise MarkupError(f"none of the {len(rows)} member rows could be read")
    has_next = any(_NEXT_LINK(pagination) for pagination in _PAGINATION(document))
    return MembersPage(members=members, has_next=has_next)


# --- film page --------------------------------------------------------------

_JSON_LD = lxml.etree.XPath("//script[@type='application/ld+json']/text()")
_POSTER_ISLAND = lxml.etree.XPath(
    "//*[@id='js-poster-col']//*[@data-component-class='LazyPoster'][1]")
_META = lxml.etree.XPath("//meta[@name=$name or @property=$name]/@content")
_INLINE_SCRIPTS = lxml.etree.XPath("//script[not(@src)]/text()")
_REPORT_URLS = lxml.etree.XPath("//*[contains(@data-report-url, '/ajax/film:')]/@data-report-url")
_MASTHEAD_TITLE = lxml.etree.XPath(
    f"string(//section[{_has_class('production-masthead')}]//h1//*[{_has_class('name')}])")
_MASTHEAD_YEAR = lxml.etree.XPath(
    f"string(//section[{_has_class('production-masthead')}]//*[{_has_class('releasedate')}])")
_GENRE_TAB_LINKS = lxml.etree.XPath(
    "//*[@id='tab-genres' or @id='tab-panel-genres']//a[starts-with(@href, '/films/genre/')]")
_GENRE_LINKS = lxml.etree.XPath("//a[starts-with(@href, '/films/genre/')]")
_EXTERNAL_LINK = lxml.etree.XPath("//a[@data-track-action=$site]/@href")
_BODY = lxml.etree.XPath("//body[1]")

_VIEWINGABLE_UID = re.compile(r"viewingable\.uid\s*=\s*['\"]film:(\d+)['\"]")
_GENRE_HREF = re.compile(r"/films/genre/[a-z0-9-]+/")
_TMDB_HREF = re.compile(r"themoviedb\.org/(movie|tv)/(\d+)")
_IMDB_ID = re.compile(r"\btt\d{5,}\b")
_WEIGHTED_AVERAGE = re.compile(
    r"Weighted\s+average\s+of\s+([\d.]+)\s+based\s+on\s+([\d,]+)\s+ratings?")
_OUT_OF_FIVE = re.compile(r"([\d.]+)\s+out\s+of\s+5")


def _movie_json_ld(document: lxml.html.HtmlElement) -> dict:
    """The schema.org record, whatever comment or CDATA wrapper surrounds the JSON."""
    for script in _JSON_LD(document):
        start, end = script.find("{"), script.rfind("}")
        data = _json_object(script[start:end + 1]) if start != -1 else {}
        if data.get("name"):
            return data
    return {}


def _meta(document: lxml.html.HtmlElement, name: str) -> str | None:
    values = _META(document, name=name)
    return values[0] if values else None


def _film_identity(document: lxml.html.HtmlElement) -> tuple[int | None, str | None, dict]:
    """Numeric id, lid and the poster's attributes, trying every place the id has lived."""
    islands = _POSTER_ISLAND(document)
    poster = dict(islands[0].attrib) if islands else {}
    identifier = _json_object(poster.get("data-postered-identifier"))
    production = _json_object(_meta(document, "production:identifier"))
    film_id = _film_uid(identifier.get("uid")) or _film_uid(production.get("uid"))
    if film_id is None:
        for script in _INLINE_SCRIPTS(document):
            match = _VIEWINGABLE_UID.search(script)
            if match:
                film_id = int(match.group(1))
                break
    if film_id is None:
        for url in _REPORT_URLS(document):
            match = _FILM_UID.search(url)
            if match:
                film_id = int(match.group(1))
                break
    if film_id is None:
        film_id = _int_or_none(poster.get("data-film-id"))
    lid = identifier.get("lid") or production.get("lid")
    return film_id, lid if is_valid_lid(lid) else None, poster


def _film_slug(document: lxml.html.HtmlElement, movie: dict, poster: dict,
               requested: str | None) -> str:
    candidates = [poster.get("data-item-slug"), movie.get("url"), _meta(document, "og:url"),
                  poster.get("data-item-link"), requested]
    for candidate in candidates:
        if not isinstance(candidate, str) or not candidate:
            continue
        match = _FILM_LINK.search(candidate)
        slug = match.group(1) if match else candidate
        try:
            return validate_slug(slug)
        except InvalidNameError:
            logger.warning("ignoring an invalid film slug on a film page: %r", slug)
    raise MarkupError("the film page does not say which film it is (no slug)")


def _film_year(document: lxml.html.HtmlElement, movie: dict) -> int | None:
    events = movie.get("releasedEvent")
    if isinstance(events, list) and events and isinstance(events[0], dict):
        year = _int_or_none(str(events[0].get("startDate", ""))[:4])
        if year:
            return year
    year = _int_or_none(_MASTHEAD_YEAR(document))
    if year:
        return year
    for name in ("production:name-and-year", "og:title"):
        _, year = _split_name_and_year((_meta(document, name) or "").strip())
        if year:
            return year
    return None


def _film_title(document: lxml.html.HtmlElement, movie: dict) -> str:
    title = movie.get("name")
    if isinstance(title, str) and title.strip():
        return title.strip()
    for candidate in (_meta(document, "production:name"), _MASTHEAD_TITLE(document)):
        if candidate and candidate.strip():
            return _clean_text(candidate)
    og_title = _clean_text(_meta(document, "og:title") or "")
    if og_title:
        return _split_name_and_year(og_title)[0]
    raise MarkupError("the film page has no title: not a film page")


def _film_genres(document: lxml.html.HtmlElement, movie: dict) -> tuple[str, ...]:
    genres = movie.get("genre")
    if isinstance(genres, str):
        return (genres,)
    if isinstance(genres, list) and genres and all(isinstance(genre, str) for genre in genres):
        return tuple(genres)
    links = _GENRE_TAB_LINKS(document) or _GENRE_LINKS(document)
    names = (_clean_text(link.text_content()) for link in links
             if _GENRE_HREF.fullmatch(link.get("href")))
    return tuple(dict.fromkeys(name for name in names if name))


def _film_rating(document: lxml.html.HtmlElement, movie: dict
                 ) -> tuple[float | None, int | None]:
    aggregate = movie.get("aggregateRating")
    if isinstance(aggregate, dict):
        try:
            average = float(aggregate["ratingValue"])
            count = aggregate.get("ratingCount")
            return average, int(count) if count is not None else None
        except (KeyError, TypeError, ValueError):
            pass  # a malformed record: the fallbacks below still know the average
    # The rendered page (or a CSI fragment pasted in) still carries the histogram tooltip.
    match = _WEIGHTED_AVERAGE.search(" ".join(document.xpath("//@title | //@data-original-title")))
    if match:
        return float(match.group(1)), int(match.group(2).replace(",", ""))
    match = _OUT_OF_FIVE.search(_meta(document, "twitter:data2") or "")
    return (float(match.group(1)) if match else None), None


def _film_external_ids(document: lxml.html.HtmlElement
                       ) -> tuple[int | None, str | None, str | None]:
    tmdb_id = tmdb_type = None
    for href in _EXTERNAL_LINK(document, site="TMDB"):
        match = _TMDB_HREF.search(href)
        if match:
            tmdb_type, tmdb_id = match.group(1), int(match.group(2))
            break
    if tmdb_id is None:
        bodies = _BODY(document)
        body_id = bodies[0].get("data-tmdb-id", "") if bodies else ""
        if body_id.isdigit():
            tmdb_id, tmdb_type = int(body_id), bodies[0].get("data-tmdb-type") or None
    imdb_id = None
    for href in _EXTERNAL_LINK(document, site="IMDb"):
        match = _IMDB_ID.search(href)
        if match:
            imdb_id = match.group(0)
            break
    return tmdb_id, tmdb_type, imdb_id


def parse_film_page(html: str, slug: str | None = None) -> FilmDetails:
    """A film page; `slug` (the one requested) is used only if the page names none itself."""
    document = _document(html)
    movie = _movie_json_ld(document)
    film_id, lid, poster = _film_identity(document)
    page_slug = _film_slug(document, movie, poster, slug)
    if slug is not None and page_slug != slug:
        logger.info("film %s is now called %s", slug, page_slug)
    average, count = _film_rating(document, movie)
    tmdb_id, tmdb_type, imdb_id = _film_external_ids(document)
    return FilmDetails(slug=page_slug, letterboxd_id=film_id, lid=lid,
                       title=_film_title(document, movie), year=_film_year(document, movie),
                       genres=_film_genres(document, movie), average_rating=average,
                       rating_count=count, tmdb_id=tmdb_id, tmdb_type=tmdb_type,
                       imdb_id=imdb_id)


# --- scraping one thing -----------------------------------------------------

# The most pages one grid may take. Real grids are a few dozen pages (72 films a page);
# 2,000 pages is 144,000 films and over half an hour at 1 request/s for a single user.
# Only a broken or hostile server that links one more page of new films forever gets
# here (one that repeats films is stopped sooner, by the "nothing new" check).
MAX_GRID_PAGES = 2_000


def _scrape_grid(fetcher: HtmlFetcher, path_for: Callable[[int], str]
                 ) -> tuple[tuple[FilmTile, ...], int]:
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
        grid = parse_film_grid(fetcher.get_html(path_for(page)))
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
        page += 1
    return tuple(tiles.values()), page - 1


def scrape_user_films(fetcher: HtmlFetcher, username: str) -> UserFilms:
    name = validate_username(username)
    films, pages = _scrape_grid(fetcher, lambda page: user_films_path(name, page))
    return UserFilms(username=name, films=films, pages_fetched=pages)


def scrape_watchlist(fetcher: HtmlFetcher, username: str) -> tuple[FilmTile, ...]:
    name = validate_username(username)
    return _scrape_grid(fetcher, lambda page: watchlist_path(name, page))[0]


def scrape_film(fetcher: HtmlFetcher, slug: str) -> FilmDetails:
    return parse_film_page(fetcher.get_html(film_path(slug)), slug=slug)


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
                        else parse_members_page(fetcher.get_html(popular_members_path(page))))
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


# --- scraping many users ----------------------------------------------------

# Failures that concern one user only: a missing (404/410) or private profile, an outage
# that outlasted the retries, any other status such as 451, a redirect off the site, a
# page robots.txt forbids, markup we cannot read. Anything else ends the crawl: a
# StopCrawlError (the site wants us gone), a closed fetcher, a bug.
USER_LEVEL_ERRORS = (NotFoundError, PrivateError, TransientError, ResponseTooLargeError,
                     RobotsDisallowedError, PageUnavailableError, MarkupError, InvalidNameError)


class _Skipped(Exception):
    """A user's work was dropped because the crawl is ending; never reaches callers."""


class _Crawl:
    """State shared by the generator and its workers.

    Users are numbered in input order. After a fatal failure only the users *after* the
    failing one are dropped: everything before it still finishes, so the results yielded
    before the error is raised do not depend on thread timing.
    """

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.abandoned = threading.Event()  # the consumer left: drop work at the next page
        self.failed_at: int | None = None
        self.failure: BaseException | None = None
        self.pages = 0
        self._lock = threading.Lock()

    def fail(self, index: int, error: BaseException) -> None:
        with self._lock:
            if self.failed_at is None or index < self.failed_at:
                self.failed_at, self.failure = index, error

    def count_page(self) -> None:
        with self._lock:
            self.pages += 1

    def accepting(self) -> bool:
        return not self.stop.is_set() and self.failed_at is None

    def may_start(self, index: int) -> bool:
        return not self.stop.is_set() and self.may_continue(index)

    def may_continue(self, index: int) -> bool:
        failed_at = self.failed_at
        return not self.abandoned.is_set() and (failed_at is None or index < failed_at)


class _UserFetcher:
    """Counts one user's pages and stops asking for more once the user is no longer wanted."""

    def __init__(self, fetcher: HtmlFetcher, crawl: _Crawl, index: int) -> None:
        self._fetcher = fetcher
        self._crawl = crawl
        self._index = index
        self.pages = 0

    def get_html(self, path: str) -> str:
        if not self._crawl.may_continue(self._index):
            raise _Skipped(path)
        html = self._fetcher.get_html(path)
        self.pages += 1
        self._crawl.count_page()
        return html


def _scrape_user(fetcher: HtmlFetcher, index: int, username: str, crawl: _Crawl) -> UserResult:
    if not crawl.may_start(index):
        raise _Skipped(username)
    counted = _UserFetcher(fetcher, crawl, index)
    try:
        films = scrape_user_films(counted, username)
    except _Skipped:
        raise
    except USER_LEVEL_ERRORS as error:
        return UserResult(username=username, films=None, error=error, pages_fetched=counted.pages)
    except BaseException as error:
        crawl.fail(index, error)
        raise
    return UserResult(username=username, films=films.films, error=None,
                      pages_fetched=films.pages_fetched)


def scrape_users(fetcher: HtmlFetcher, usernames: Iterable[str], workers: int, *,
                 stop: threading.Event | None = None, progress: bool = True
                 ) -> Iterator[UserResult]:
    """Scrape users `workers` at a time and yield their results in input order.

    In-order results let the caller commit deterministically. At most 2*workers users
    are submitted ahead of the one being waited for, so a lazy `usernames` (popular
    members fetched on demand) is not drained far ahead. A StopCrawlError (or any other
    unexpected error, also from `usernames` itself) stops new work; every user before
    the failing one still finishes and is yielded, then the error is raised. Setting
    `stop` drops the users not yet started, yields the rest in order and returns.

    Leaving early does not wait for requests in progress. The pool's threads are not
    daemons, so the process exits only once they return: the caller must close the
    fetcher (Fetcher.close() cuts its retry and rate-limit waits short) for that to be soon.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    crawl = _Crawl(stop or threading.Event())
    names = iter(usernames)
    in_flight: deque[Future[UserResult]] = deque()
    submitted = 0
    total = len(usernames) if hasattr(usernames, "__len__") else None
    bar = tqdm(total=total, unit="user", desc="users", file=sys.stderr,
               disable=None if progress else True)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scrape-user")
    try:
        while True:
            while crawl.accepting() and len(in_flight) < 2 * workers:
                try:
                    username = next(names)
                except StopIteration:
                    break
                except Exception as error:  # e.g. blocked while listing members
                    crawl.fail(submitted, error)
                    break
                in_flight.append(pool.submit(_scrape_user, fetcher, submitted, username, crawl))
                submitted += 1
            if crawl.stop.is_set():
                for future in in_flight:
                    future.cancel()  # only those not started; running ones finish
            if not in_flight:
                break
            try:
                # exception() rather than result(): a Ctrl-C raised here must propagate.
                error = in_flight[0].exception()
            except CancelledError:
                break
            if error is not None:
                break  # dropped, or the failure the worker recorded in crawl (raised below)
            result = in_flight.popleft().result()
            bar.update(1)
            bar.set_postfix(pages=crawl.pages, refresh=False)
            yield result
        if crawl.failure is not None:
            raise crawl.failure
    finally:
        # Users still running are no longer wanted: they stop before their next page. We
        # do not wait for a request in progress, so the generator's close() and a Ctrl-C
        # return at once; the threads end when the fetcher lets their request go (see above).
        crawl.abandoned.set()
        pool.shutdown(wait=False, cancel_futures=True)
        bar.close()
