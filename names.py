"""Validation of the names that end up inside URLs and file paths.

Anything a user types or a page hands us passes through here first, so `../x`,
`a/b`, a full URL or an empty string never reaches a request or the disk.
"""
from __future__ import annotations

import re

from errors import InvalidNameError

# The rules follow the real data (the shared 500k sample, the saved pages, exports),
# not a guess, so no real member or film is turned away:
# Usernames: ASCII letters, digits and underscores, at most 15 characters; underscores
# may lead, trail and repeat (`_sly`, `lenny___`, `__moai`). Links are lowercase.
USERNAME_PATTERN = r"[A-Za-z0-9_]{1,15}"
# Film slugs: the title lowercased, transliterated to ASCII, with every run of other
# characters made one hyphen, but underscores kept as they are (`cry_wolf` for Cry_Wolf,
# `jung_e` for JUNG_E, `cats_the_mewvie` for #cats_the_mewvie): words of letters, digits
# and underscores joined by single hyphens. Never a dot, slash, percent sign, space or
# empty segment, so a slug cannot climb out of /film/SLUG/ or name another file.
SLUG_PATTERN = r"[a-z0-9_]+(?:-[a-z0-9_]+)*"
MAX_SLUG_LENGTH = 200
_USERNAME = re.compile(USERNAME_PATTERN)
_SLUG = re.compile(SLUG_PATTERN)
# The path part of a boxd.it short link.
_LID = re.compile(r"[A-Za-z0-9]{1,12}")


def validate_username(name: str) -> str:
    """The canonical (lowercase) form of a username, or InvalidNameError."""
    if not isinstance(name, str) or not _USERNAME.fullmatch(name):
        raise InvalidNameError(
            f"not a Letterboxd username: {name!r} (expected 1-15 letters, digits or underscores)"
        )
    return name.lower()


def validate_slug(slug: str) -> str:
    """The slug unchanged if it is a well-formed film slug, else InvalidNameError."""
    if (not isinstance(slug, str) or len(slug) > MAX_SLUG_LENGTH
            or not _SLUG.fullmatch(slug)):
        raise InvalidNameError(
            f"not a Letterboxd film slug: {slug!r} (expected lowercase letters, digits and "
            "underscores in words joined by single hyphens)"
        )
    return slug


def is_valid_lid(lid: str) -> bool:
    return isinstance(lid, str) and bool(_LID.fullmatch(lid))
