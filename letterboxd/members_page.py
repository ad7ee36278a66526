"""The popular-members table to a MembersPage: who to crawl, and whether more pages follow."""
from __future__ import annotations

import logging

import lxml.etree
import lxml.html

from errors import InvalidNameError, MarkupError
from letterboxd.markup import NEXT_LINK, PAGINATION, clean_text, document, has_class, int_or_none
from letterboxd.records import Member, MembersPage
from names import validate_username

logger = logging.getLogger(__name__)

_MEMBER_TABLES = lxml.etree.XPath(
    f"//table[{has_class('member-table')} or {has_class('person-table')}]")
_MEMBER_ROWS = lxml.etree.XPath(f".//tr[td[{has_class('table-person')}]]")
_MEMBER_NAME_LINK = lxml.etree.XPath(f".//a[{has_class('name')}][@href][1]")
_MEMBER_AVATAR_ALT = lxml.etree.XPath(f".//a[{has_class('avatar')}]//img/@alt")
_MEMBER_WATCHED = lxml.etree.XPath(f"string(.//td[{has_class('col-watched')}])")


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
    display_name = (clean_text(links[0].text_content())
                    or (clean_text(alts[0]) if alts else "") or username)
    return Member(username=username, display_name=display_name,
                  films_watched=int_or_none(_MEMBER_WATCHED(row)))


def parse_members_page(html: str) -> MembersPage:
    page = document(html)
    tables = _MEMBER_TABLES(page)
    if not tables:
        raise MarkupError("no member table on the members page")
    rows = [row for table in tables for row in _MEMBER_ROWS(table)]
    members = tuple(member for member in map(_parse_member_row, rows) if member is not None)
    if rows and not members:
        raise MarkupError(f"none of the {len(rows)} member rows could be read")
    has_next = any(NEXT_LINK(pagination) for pagination in PAGINATION(page))
    return MembersPage(members=members, has_next=has_next, row_count=len(rows))
