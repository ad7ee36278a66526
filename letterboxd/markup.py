"""lxml helpers the page parsers share: reading a document, class tokens, ids, numbers.

The parsers read attribute values rather than cosmetic classes where they can,
because those survived every markup change since 2025, and they raise MarkupError
instead of returning "nothing" when a page is not what we expect, so a redesign is
noticed instead of silently producing an empty dataset. lxml XPath, not
BeautifulSoup, because a crawl parses every grid page it fetches (BENCHMARKS.md,
figure 1).
"""
from __future__ import annotations

import json
import re

import lxml.etree
import lxml.html

from errors import IncompletePageError, MarkupError


def has_class(name: str) -> str:
    """XPath predicate for one whole class token (contains() alone would match prefixes).

    The plain substring test comes first: XPath's `and` stops there for most elements,
    so the class string is normalised only where the name occurs in it."""
    return (f"contains(@class, '{name}') and "
            f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')")


# Pagination looks the same on grids and on the members table.
PAGINATION = lxml.etree.XPath(f"//div[{has_class('pagination')}]")
NEXT_LINK = lxml.etree.XPath(f".//a[{has_class('next')}]")

FILM_LINK = re.compile(r"/film/([^/]+)/")
FILM_UID = re.compile(r"film:(\d+)")
_NAME_WITH_YEAR = re.compile(r"(?P<title>.+?)\s+\((?P<year>\d{4})\)")
_DIGITS = re.compile(r"\d[\d,]*")
# A whole page ends with </html>, then at most whitespace and comments. lxml would
# happily close the tags of a page that simply stops, so the end is checked on the text.
_DOCUMENT_END = re.compile(r"</html\s*>(?:\s|<!--.*?-->)*\Z", re.IGNORECASE | re.DOTALL)
_END_WINDOW = 4096


def _check_end(html: str) -> None:
    """IncompletePageError for a document cut short: its closing tag is missing."""
    if not _DOCUMENT_END.search(html[-_END_WINDOW:]):
        raise IncompletePageError("the document has no closing </html>")


def document(html: str) -> lxml.html.HtmlElement:
    """The parsed page; IncompletePageError for a page cut short, MarkupError for text
    that is no HTML at all."""
    _check_end(html)
    try:
        return lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError) as error:
        raise MarkupError(f"not an HTML page: {error}") from None


# No id table: nothing looks elements up by id through it, and building it costs time.
_PLAIN_HTML = lxml.etree.HTMLParser(collect_ids=False)


def plain_document(html: str) -> lxml.etree._Element:
    """`document` as plain lxml elements, without lxml.html's element classes (looking a
    class up per element is most of a big grid page's parse): the same tree and errors."""
    _check_end(html)
    try:
        page = lxml.etree.fromstring(html, _PLAIN_HTML)
    except (lxml.etree.ParserError, ValueError) as error:
        raise MarkupError(f"not an HTML page: {error}") from None
    if page is None:
        raise MarkupError("not an HTML page: Document is empty")
    return page


def json_object(text: str | None) -> dict:
    """The JSON object in an attribute or script, {} when absent or malformed."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def film_uid(uid: object) -> int | None:
    """The number in a "film:NNN" uid, None for anything else."""
    match = FILM_UID.fullmatch(uid) if isinstance(uid, str) else None
    return int(match.group(1)) if match else None


def int_or_none(text: str | None) -> int | None:
    """The first number in the text, thousands separators allowed."""
    match = _DIGITS.search(text or "")
    return int(match.group(0).replace(",", "")) if match else None


def split_name_and_year(name: str) -> tuple[str, int | None]:
    """`Title (2025)` -> ("Title", 2025); a name without a year comes back whole."""
    match = _NAME_WITH_YEAR.fullmatch(name)
    if match is None:
        return name, None
    return match.group("title"), int(match.group("year"))


def clean_text(text: str) -> str:
    """Collapse runs of whitespace, including the &nbsp; Letterboxd puts into titles."""
    return " ".join(text.split())
