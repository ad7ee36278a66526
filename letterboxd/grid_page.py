"""A page of posters (a member's films, a watchlist, a list) to a FilmGridPage.

Three generations of tile markup are read: the 2026 `griditem` with a LazyPoster
island, the list's `posteritem`, and the legacy `poster-container`. The film id is
taken from wherever it still lives, since `data-film-id` left the markup in April 2026.
"""
from __future__ import annotations

import logging
import re

import lxml.etree
import lxml.html

from errors import InvalidNameError, MarkupError
from letterboxd.markup import (FILM_LINK, NEXT_LINK, PAGINATION, clean_text, film_uid, has_class,
                               int_or_none, json_object, plain_document, split_name_and_year)
from letterboxd.records import FilmGridPage, FilmTile
from names import is_valid_lid, validate_slug

logger = logging.getLogger(__name__)

# The tile, island and viewing-data lookups run 72 times a page, so they walk the
# elements in Python rather than evaluate class-token XPath predicates (which
# normalise every element's class string): parsing is the crawl's main CPU cost.
_TILE_CLASSES = frozenset(("griditem", "posteritem", "poster-container"))
_VIEWING_DATA_CLASS = "poster-viewingdata"
# Grid pages are parsed into plain lxml elements: lxml.html's element classes cost a
# Python call for every element the walks above touch (hundreds a page).
_TILE_IMAGE_ALT = lxml.etree.XPath(".//img/@alt")
_PAGE_CONTENT = lxml.etree.XPath("//*[@id='content']")
_PAGE_NUMBERS = lxml.etree.XPath(f".//*[{has_class('paginate-pages')}]//li//text()")
_CURRENT_PAGE = lxml.etree.XPath(f".//li[{has_class('paginate-current')}]//text()")
# Where a grid says how many films it holds: the spans of its heading (a member's films
# tooltip, "925&nbsp;films", `data-original-title` once rendered; a watchlist's count),
# else a watchlist's wrapper. Tag names first: a class test on every element of a page
# would cost a fifth of the parse.
_NUM_ENTRIES = lxml.etree.XPath("//div[@data-num-entries]/@data-num-entries")
_HEADING_SPANS = lxml.etree.XPath(f"//h1[{has_class('section-heading')}]//span")

_RATED = re.compile(r"(?:^|\s)rated-(\d+)(?:\s|$)")
_PAGE_IN_HREF = re.compile(r"/page/(\d+)/")
_FILM_COUNT = re.compile(r"(\d[\d,]*) films?")


def _tiles(page: lxml.html.HtmlElement) -> list[lxml.html.HtmlElement]:
    """Every poster tile (an `li` of one of the three generations' classes)."""
    return [item for item in page.iter("li")
            if not _TILE_CLASSES.isdisjoint((item.get("class") or "").split())]


def _tile_island(tile: lxml.html.HtmlElement) -> lxml.html.HtmlElement | None:
    """The first element inside the tile that carries the film's data attributes."""
    for element in tile.iterdescendants():
        if (element.get("data-item-slug") is not None or element.get("data-film-slug") is not None
                or element.get("data-component-class") == "LazyPoster"):
            return element
    return None


def _tile_slug(island: lxml.html.HtmlElement) -> str | None:
    slug = island.get("data-item-slug") or island.get("data-film-slug")
    if slug:
        match = FILM_LINK.search(slug)  # legacy tiles held "/film/SLUG/"
        return match.group(1) if match else slug
    for link in (island.get("data-item-link"), island.get("data-target-link")):
        match = FILM_LINK.search(link or "")
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
    title, year = split_name_and_year(name)
    return title, year or int_or_none(island.get("data-film-release-year"))


def _tile_viewing(tile: lxml.html.HtmlElement) -> tuple[int | None, bool, list[str | None]]:
    """Rating, liked flag and the film uids ("film:NNN") the viewing-data paragraphs
    carry, read into ids only where the island has none."""
    rating, liked, uids = None, False, []
    for paragraph in tile.iter("p"):
        if _VIEWING_DATA_CLASS not in (paragraph.get("class") or "").split():
            continue
        uids.append(paragraph.get("data-item-uid"))
        for element in paragraph.iter():
            classes = element.get("class")
            if not classes:
                continue
            # Substring tests first: most elements carry neither class.
            match = _RATED.search(classes) if "rated-" in classes else None
            if match and 1 <= int(match.group(1)) <= 10:
                rating = int(match.group(1))
            if "liked" in classes and not {"icon-liked", "liked"}.isdisjoint(classes.split()):
                liked = True
    return rating, liked, uids


def _parse_tile(tile: lxml.html.HtmlElement) -> FilmTile | None:
    island = _tile_island(tile)
    if island is None:
        return None
    slug = _tile_slug(island)
    try:
        slug = validate_slug(slug)
    except InvalidNameError:
        logger.warning("skipping a poster whose film slug is not valid: %r", slug)
        return None
    identifier = json_object(island.get("data-postered-identifier"))
    rating, liked, viewing_uids = _tile_viewing(tile)
    letterboxd_id = (film_uid(identifier.get("uid"))
                     or next(filter(None, map(film_uid, viewing_uids)), None)
                     or int_or_none(island.get("data-film-id")))
    lid = identifier.get("lid")
    title, year = _tile_title_and_year(island)
    return FilmTile(slug=slug, letterboxd_id=letterboxd_id,
                    lid=lid if is_valid_lid(lid) else None,
                    title=title, year=year, rating=rating, liked=liked)


def _last_page(page: lxml.html.HtmlElement) -> int:
    """Highest page we know exists: listed numbers, or one past the current if `next` exists."""
    last = 1
    for pagination in PAGINATION(page):
        numbers = [int(text) for text in _PAGE_NUMBERS(pagination) if text.strip().isdigit()]
        current = next((int(text) for text in _CURRENT_PAGE(pagination)
                        if text.strip().isdigit()), 1)
        last = max([last, current, *numbers])
        for link in NEXT_LINK(pagination):
            match = _PAGE_IN_HREF.search(link.get("href") or "")
            last = max(last, int(match.group(1)) if match else current + 1)
    return last


def _shown_total(page: lxml.html.HtmlElement) -> int | None:
    """The number of films the page says the grid holds, None where it says none."""
    for span in _HEADING_SPANS(page):
        for text in (span.get("title"), span.get("data-original-title"), span.text):
            match = _FILM_COUNT.fullmatch(clean_text(text or ""))
            if match:
                return int(match.group(1).replace(",", ""))
    for value in _NUM_ENTRIES(page):
        if value.strip().isdigit():
            return int(value)
    return None


def parse_film_grid(html: str) -> FilmGridPage:
    """A page of posters: a user's films, a watchlist or a list."""
    page = plain_document(html)
    tiles = _tiles(page)
    films = tuple(film for film in map(_parse_tile, tiles) if film is not None)
    if tiles and not films:
        raise MarkupError(f"none of the {len(tiles)} posters on the page could be read")
    if not tiles and not _PAGE_CONTENT(page):
        raise MarkupError("no posters and no Letterboxd page content: not a grid page")
    return FilmGridPage(films=films, last_page=_last_page(page), tile_count=len(tiles),
                        shown_total=_shown_total(page))
