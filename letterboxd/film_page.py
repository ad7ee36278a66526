"""A film's page to FilmDetails: identity, title, year, genres, average rating, runtime,
language, countries, TMDB/IMDb ids (which tell a series from a film).

Every field has a chain of sources, tried in order, because the page has been
served raw and rendered, with and without JSON-LD, before and after the id moved
out of `data-film-id`: the schema.org record first, then the masthead, meta tags,
inline scripts and links.
"""
from __future__ import annotations

import logging
import re

import lxml.etree
import lxml.html

from errors import InvalidNameError, MarkupError
from letterboxd.markup import (FILM_LINK, FILM_UID, clean_text, document, film_uid, has_class,
                               int_or_none, json_object, split_name_and_year)
from letterboxd.records import FilmDetails
from names import is_valid_lid, validate_slug

logger = logging.getLogger(__name__)

_JSON_LD = lxml.etree.XPath("//script[@type='application/ld+json']/text()")
_POSTER_ISLAND = lxml.etree.XPath(
    "//*[@id='js-poster-col']//*[@data-component-class='LazyPoster'][1]")
_META = lxml.etree.XPath("//meta[@name=$name or @property=$name]/@content")
_INLINE_SCRIPTS = lxml.etree.XPath("//script[not(@src)]/text()")
_REPORT_URLS = lxml.etree.XPath("//*[contains(@data-report-url, '/ajax/film:')]/@data-report-url")
_MASTHEAD_TITLE = lxml.etree.XPath(
    f"string(//section[{has_class('production-masthead')}]//h1//*[{has_class('name')}])")
_MASTHEAD_YEAR = lxml.etree.XPath(
    f"string(//section[{has_class('production-masthead')}]//*[{has_class('releasedate')}])")
_GENRE_TAB_LINKS = lxml.etree.XPath(
    "//*[@id='tab-genres' or @id='tab-panel-genres']//a[starts-with(@href, '/films/genre/')]")
_GENRE_LINKS = lxml.etree.XPath("//a[starts-with(@href, '/films/genre/')]")
_EXTERNAL_LINK = lxml.etree.XPath("//a[@data-track-action=$site]/@href")
_FOOTER = lxml.etree.XPath(f"string(//p[{has_class('text-footer')}])")
# The details tab: a heading ("Primary Language", "Countries"...) then its links.
_DETAIL_LINKS = lxml.etree.XPath(
    "//h3[normalize-space(.)=$heading]/following-sibling::div[1]"
    "//a[starts-with(@href, $prefix)]")
_ANY_LINKS = lxml.etree.XPath("//a[starts-with(@href, $prefix)]")
_BODY = lxml.etree.XPath("//body[1]")

_VIEWINGABLE_UID = re.compile(r"viewingable\.uid\s*=\s*['\"]film:(\d+)['\"]")
_GENRE_HREF = re.compile(r"/films/genre/[a-z0-9-]+/")
_TMDB_HREF = re.compile(r"themoviedb\.org/(movie|tv)/(\d+)")
_IMDB_ID = re.compile(r"\btt\d{5,}\b")
_WEIGHTED_AVERAGE = re.compile(
    r"Weighted\s+average\s+of\s+([\d.]+)\s+based\s+on\s+([\d,]+)\s+ratings?")
_OUT_OF_FIVE = re.compile(r"([\d.]+)\s+out\s+of\s+5")
_MINUTES = re.compile(r"(\d[\d,]*)\s*mins?\b")
_ISO_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?$")


def _movie_json_ld(page: lxml.html.HtmlElement) -> dict:
    """The schema.org record, whatever comment or CDATA wrapper surrounds the JSON."""
    for script in _JSON_LD(page):
        start, end = script.find("{"), script.rfind("}")
        data = json_object(script[start:end + 1]) if start != -1 else {}
        if data.get("name"):
            return data
    return {}


def _meta(page: lxml.html.HtmlElement, name: str) -> str | None:
    values = _META(page, name=name)
    return values[0] if values else None


def _film_identity(page: lxml.html.HtmlElement) -> tuple[int | None, str | None, dict]:
    """Numeric id, lid and the poster's attributes, trying every place the id has lived."""
    islands = _POSTER_ISLAND(page)
    # items(), not dict(attrib): looking a key up again fails on a name with control characters
    poster = dict(islands[0].attrib.items()) if islands else {}
    identifier = json_object(poster.get("data-postered-identifier"))
    production = json_object(_meta(page, "production:identifier"))
    film_id = film_uid(identifier.get("uid")) or film_uid(production.get("uid"))
    if film_id is None:
        for script in _INLINE_SCRIPTS(page):
            match = _VIEWINGABLE_UID.search(script)
            if match:
                film_id = int(match.group(1))
                break
    if film_id is None:
        for url in _REPORT_URLS(page):
            match = FILM_UID.search(url)
            if match:
                film_id = int(match.group(1))
                break
    if film_id is None:
        film_id = int_or_none(poster.get("data-film-id"))
    lid = identifier.get("lid") or production.get("lid")
    return film_id, lid if is_valid_lid(lid) else None, poster


def _film_slug(page: lxml.html.HtmlElement, movie: dict, poster: dict,
               requested: str | None) -> str:
    candidates = [poster.get("data-item-slug"), movie.get("url"), _meta(page, "og:url"),
                  poster.get("data-item-link"), requested]
    for candidate in candidates:
        if not isinstance(candidate, str) or not candidate:
            continue
        match = FILM_LINK.search(candidate)
        slug = match.group(1) if match else candidate
        try:
            return validate_slug(slug)
        except InvalidNameError:
            logger.warning("ignoring an invalid film slug on a film page: %r", slug)
    raise MarkupError("the film page does not say which film it is (no slug)")


def _film_year(page: lxml.html.HtmlElement, movie: dict) -> int | None:
    events = movie.get("releasedEvent")
    if isinstance(events, list) and events and isinstance(events[0], dict):
        year = int_or_none(str(events[0].get("startDate", ""))[:4])
        if year:
            return year
    year = int_or_none(_MASTHEAD_YEAR(page))
    if year:
        return year
    for name in ("production:name-and-year", "og:title"):
        _, year = split_name_and_year((_meta(page, name) or "").strip())
        if year:
            return year
    return None


def _film_title(page: lxml.html.HtmlElement, movie: dict) -> str:
    title = movie.get("name")
    if isinstance(title, str) and title.strip():
        return title.strip()
    for candidate in (_meta(page, "production:name"), _MASTHEAD_TITLE(page)):
        if candidate and candidate.strip():
            return clean_text(candidate)
    og_title = clean_text(_meta(page, "og:title") or "")
    if og_title:
        return split_name_and_year(og_title)[0]
    raise MarkupError("the film page has no title: not a film page")


def _film_genres(page: lxml.html.HtmlElement, movie: dict) -> tuple[str, ...]:
    genres = movie.get("genre")
    if isinstance(genres, str):
        return (genres,)
    if isinstance(genres, list) and genres and all(isinstance(genre, str) for genre in genres):
        return tuple(genres)
    links = _GENRE_TAB_LINKS(page) or _GENRE_LINKS(page)
    names = (clean_text(link.text_content()) for link in links
             if _GENRE_HREF.fullmatch(link.get("href")))
    return tuple(dict.fromkeys(name for name in names if name))


def _film_rating(page: lxml.html.HtmlElement, movie: dict) -> tuple[float | None, int | None]:
    aggregate = movie.get("aggregateRating")
    if isinstance(aggregate, dict):
        try:
            average = float(aggregate["ratingValue"])
            count = aggregate.get("ratingCount")
            return average, int(count) if count is not None else None
        except (KeyError, TypeError, ValueError):
            pass  # a malformed record: the fallbacks below still know the average
    # The rendered page (or a CSI fragment pasted in) still carries the histogram tooltip.
    match = _WEIGHTED_AVERAGE.search(" ".join(page.xpath("//@title | //@data-original-title")))
    if match:
        return float(match.group(1)), int(match.group(2).replace(",", ""))
    match = _OUT_OF_FIVE.search(_meta(page, "twitter:data2") or "")
    return (float(match.group(1)) if match else None), None


def _film_external_ids(page: lxml.html.HtmlElement
                       ) -> tuple[int | None, str | None, str | None]:
    tmdb_id = tmdb_type = None
    for href in _EXTERNAL_LINK(page, site="TMDB"):
        match = _TMDB_HREF.search(href)
        if match:
            tmdb_type, tmdb_id = match.group(1), int(match.group(2))
            break
    if tmdb_id is None:
        bodies = _BODY(page)
        body_id = bodies[0].get("data-tmdb-id", "") if bodies else ""
        if body_id.isdigit():
            tmdb_id, tmdb_type = int(body_id), bodies[0].get("data-tmdb-type") or None
    imdb_id = None
    for href in _EXTERNAL_LINK(page, site="IMDb"):
        match = _IMDB_ID.search(href)
        if match:
            imdb_id = match.group(0)
            break
    return tmdb_id, tmdb_type, imdb_id


def _film_runtime(page: lxml.html.HtmlElement, movie: dict) -> int | None:
    match = _MINUTES.search(_FOOTER(page).replace("\xa0", " "))
    if match:
        return int(match.group(1).replace(",", "")) or None
    duration = movie.get("duration")
    match = _ISO_DURATION.match(duration) if isinstance(duration, str) else None
    if match and any(match.groups()):
        return int(match.group(1) or 0) * 60 + int(match.group(2) or 0) or None
    return None


def _detail_names(page: lxml.html.HtmlElement, headings: tuple[str, ...], prefix: str
                  ) -> tuple[str, ...]:
    """The names linked under the first of `headings` in the details tab; else every
    link to `prefix` on the page, in order."""
    for heading in headings:
        links = _DETAIL_LINKS(page, heading=heading, prefix=prefix)
        if links:
            break
    else:
        links = _ANY_LINKS(page, prefix=prefix)
    names = (clean_text(link.text_content()) for link in links)
    return tuple(dict.fromkeys(name for name in names if name))


def parse_film_page(html: str, slug: str | None = None) -> FilmDetails:
    """A film page; `slug` (the one requested) is used only if the page names none itself."""
    page = document(html)
    movie = _movie_json_ld(page)
    film_id, lid, poster = _film_identity(page)
    page_slug = _film_slug(page, movie, poster, slug)
    if slug is not None and page_slug != slug:
        logger.info("film %s is now called %s", slug, page_slug)
    average, count = _film_rating(page, movie)
    tmdb_id, tmdb_type, imdb_id = _film_external_ids(page)
    return FilmDetails(slug=page_slug, letterboxd_id=film_id, lid=lid,
                       title=_film_title(page, movie), year=_film_year(page, movie),
                       genres=_film_genres(page, movie), average_rating=average,
                       rating_count=count, tmdb_id=tmdb_id, tmdb_type=tmdb_type,
                       imdb_id=imdb_id, runtime=_film_runtime(page, movie),
                       language=next(iter(_detail_names(
                           page, ("Primary Language", "Language"), "/films/language/")), None),
                       countries=_detail_names(page, ("Countries", "Country"),
                                               "/films/country/"))
