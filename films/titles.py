"""How Letterboxd writes a film's title, slug and year, as text rules.

Derived from real data (the films of the shared ratings sample): a slug is the
title with accents folded, apostrophes, full stops, asterisks, colons and middle
dots dropped inside words, every other run of non-alphanumerics turned into one
hyphen, and "-YEAR" (sometimes "-YEAR-N" or "-N") added when an older film holds
the plain slug. The two spellings `slug_candidates` returns reproduce nearly all of
the sample's slugs from its titles; the rest (renamed films such as "frozen-2" for
"Frozen II") are left to the other rules of the matcher.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date

# The first films Letterboxd lists are from the 1870s; a year past next few is a title.
FIRST_FILM_YEAR = 1870
LAST_PLAUSIBLE_YEAR = date.today().year + 3

_WORD_INTERNAL = re.compile(r"['’.*:·]")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_NOT_A_WORD = re.compile(r"[\W_]+")
_LEADING_ARTICLE = re.compile(r"^the ")
_YEAR_SUFFIX = re.compile(r"^(?P<base>.+?)-(?P<year>\d{4})(?:-\d+)?$")
_FOLDED_LETTERS = str.maketrans({"æ": "ae", "ø": "o", "ß": "ss", "œ": "oe", "ł": "l",
                                 "đ": "d", "ð": "d", "þ": "th", "½": " half "})


def plausible_year(year: int | None) -> bool:
    return year is not None and FIRST_FILM_YEAR <= year <= LAST_PLAUSIBLE_YEAR


def fold_accents(text: str) -> str:
    """Lower case without accents; letters of other scripts are kept as they are."""
    text = text.casefold()
    if text.isascii():  # most titles: skip the per-character pass
        return text
    text = text.translate(_FOLDED_LETTERS)
    return "".join(character for character in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(character))


def title_key(title: str) -> str:
    """The form two spellings of one title share: case, accents, punctuation (dropped
    inside words as slugs drop it), "&" against "and" and a leading "The" do not
    count. Empty for a title without letters or digits, which then matches nothing."""
    folded = _WORD_INTERNAL.sub("", fold_accents(title).replace("&", " and "))
    words = _NOT_A_WORD.sub(" ", folded).strip()
    return _LEADING_ARTICLE.sub("", words)


def slugify(title: str, *, ampersand: str = "") -> str:
    """The slug Letterboxd would most likely give a film of this title (no year)."""
    folded = fold_accents(title).replace("&", f" {ampersand} " if ampersand else " ")
    return _NOT_ALNUM.sub("-", _WORD_INTERNAL.sub("", folded)).strip("-")


def slug_candidates(title: str) -> tuple[str, ...]:
    """The likely slugs of a title: "&" dropped (usual) or spelled "and" (sometimes)."""
    found = []
    for candidate in (slugify(title), slugify(title, ampersand="and")):
        if candidate and candidate not in found:
            found.append(candidate)
    return tuple(found)


def split_slug_year(slug: str) -> tuple[str, int | None]:
    """A slug's base and the release year it carries, if any ("oppenheimer-2023").

    A final number that cannot be a release year stays part of the title
    ("blade-runner-2049"). Some titles end in a year of their own ("Wonder Woman
    1984"): callers use this only where the film's metadata has no year.
    """
    match = _YEAR_SUFFIX.match(slug)
    if match is None:
        return slug, None
    year = int(match.group("year"))
    return (match.group("base"), year) if plausible_year(year) else (slug, None)


def title_from_slug(slug: str) -> str:
    """A readable title for a film known only by its slug: "Spider Man No Way Home"."""
    base, _ = split_slug_year(slug)
    return " ".join(word.capitalize() for word in base.split("-"))


def has_no_title(title: str, slug: str) -> bool:
    """Metadata without a title: empty, or the slug standing in for it (older imports
    wrote "spider-man-no-way-home"; a one-word slug may well be the real title)."""
    title = title.strip()
    return not title or (title == slug and "-" in slug)


def shown_title_and_year(title: str, year: int | None, slug: str) -> tuple[str, int | None]:
    """What to show for a film: its own title and year, or, where the metadata has no
    title, one spelled out from the slug with the year the slug carries (a known title
    keeps the slug's number out of the year: "Wonder Woman 1984")."""
    if not has_no_title(title, slug):
        return title, year
    return title_from_slug(slug), year if year is not None else split_slug_year(slug)[1]
