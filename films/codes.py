"""Languages and countries as codes, whatever name a source gives them.

Published metadata writes ISO codes ("ja") or TMDB's English names ("United States of
America"); film pages show Letterboxd's names ("USA", "Japanese"). The dataset keeps
ISO 639-1 language codes and ISO 3166-1 alpha-2 country codes, so one filter works on
every dataset; pycountry holds the standards' names, and the few names the sites use
that are not the standards' are listed here.
"""
from __future__ import annotations

from functools import lru_cache

import pycountry

# Names film sites use that pycountry does not resolve (historic states among them).
_COUNTRY_NAMES = {"uk": "GB", "soviet union": "SU", "ussr": "SU", "west germany": "DE",
                  "east germany": "DD", "yugoslavia": "YU", "czechoslovakia": "CS",
                  "serbia and montenegro": "CS", "kosovo": "XK"}
_LANGUAGE_NAMES = {"mandarin": "zh", "cantonese": "cn", "no language": "xx",
                   "no spoken language": "xx"}
# TMDB's own codes that are not ISO 639-1 (cn: Cantonese; xx: no language).
_EXTRA_LANGUAGE_CODES = frozenset({"cn", "xx"})


@lru_cache(maxsize=4096)
def country_code(name: str) -> str:
    """ISO 3166-1 alpha-2 code ("US") for a country code or name, "" when unknown."""
    text = name.strip()
    if not text:
        return ""
    if text.lower() in _COUNTRY_NAMES:
        return _COUNTRY_NAMES[text.lower()]
    for table in (pycountry.countries, pycountry.historic_countries):
        try:
            return table.lookup(text).alpha_2
        except LookupError:
            continue
    return ""


@lru_cache(maxsize=4096)
def language_code(name: str) -> str:
    """ISO 639-1 code ("ja") for a language code or English name, "" when unknown."""
    text = name.strip().lower()
    if not text:
        return ""
    if text in _LANGUAGE_NAMES:
        return _LANGUAGE_NAMES[text]
    if text in _EXTRA_LANGUAGE_CODES:
        return text
    # By code first: as a name, "en" is also a language of its own ("En", ISO 639-3 enc).
    language = (pycountry.languages.get(alpha_2=text) if len(text) == 2 else
                pycountry.languages.get(alpha_3=text) if len(text) == 3 else None)
    if language is None:
        try:
            language = pycountry.languages.lookup(text)
        except LookupError:
            return ""
    return getattr(language, "alpha_2", "")
