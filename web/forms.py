"""The page's form fields turned into the objects the logic takes, as the CLI turns flags.

Each field is named after its flag (`year_from` for `--year-from`), the page shows the
flag beside it, and a bad value gets the message the CLI would give: the checks live in
`FilmFilter`, this module only reads text.
"""
from __future__ import annotations

from dataclasses import dataclass

from werkzeug.datastructures import MultiDict

from errors import BadInputError
from questions.arguments import LIST_TOP
from recommending.filters import FilmFilter
from recommending.group import GroupRule
from recommending.picks import WatchlistUse

MAX_TOP = 500  # a page of more films than this is no longer read
NUMBER_FIELDS = ("min_ratings", "max_ratings", "year_from", "year_to", "min_runtime",
                 "max_runtime")


def flag(name: str) -> str:
    """The CLI flag a field stands for: `year_from` is `--year-from`."""
    return "--" + name.replace("_", "-")


def _text(values: MultiDict, name: str) -> str:
    return str(values.get(name, "")).strip()


def _number(values: MultiDict, name: str, kind: type = int) -> int | float | None:
    text = _text(values, name)
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise BadInputError(f"{flag(name)}: {text[:40]!r} is not {what}") from None


def _names(values: MultiDict, name: str) -> tuple[str, ...]:
    """Comma-separated names, from one field or several."""
    found = []
    for text in values.getlist(name):
        found += [part.strip() for part in text.split(",") if part.strip()]
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class ListChoice:
    """What the page asks of a list: which films, how many, and the watchlist's part."""

    film_filter: FilmFilter
    top: int
    watchlist: WatchlistUse


def list_choice(values: MultiDict, *, default_top: int = LIST_TOP) -> ListChoice:
    """The list asked for by a form or query string; BadInputError says what is wrong."""
    numbers = {name: _number(values, name) for name in NUMBER_FIELDS}
    obscurity = _number(values, "obscurity", float)
    top = _number(values, "top")
    if top is None:
        top = default_top
    if not 1 <= top <= MAX_TOP:
        raise BadInputError(f"{flag('top')}: from 1 to {MAX_TOP} films on this page")
    watchlist_text = _text(values, "watchlist") or WatchlistUse.EXCLUDE.value
    try:
        watchlist = WatchlistUse(watchlist_text)
    except ValueError:
        raise BadInputError(f"watchlist: {watchlist_text[:20]!r} is none of "
                            f"{', '.join(use.value for use in WatchlistUse)}") from None
    film_filter = FilmFilter(
        **numbers, obscurity=obscurity,
        genres=_names(values, "genre"), excluded_genres=_names(values, "exclude_genre"),
        languages=_names(values, "language"), countries=_names(values, "country"),
        include_tv=_text(values, "include_tv") in ("1", "on", "yes", "true"))
    return ListChoice(film_filter=film_filter, top=int(top), watchlist=watchlist)


def group_rule(values: MultiDict) -> GroupRule:
    """The group rule asked for (`--group-rule`); least misery unless another is named."""
    text = _text(values, "rule") or GroupRule.LEAST_MISERY.value
    try:
        return GroupRule(text)
    except ValueError:
        raise BadInputError(f"--group-rule: {text[:20]!r} is none of "
                            f"{', '.join(rule.value for rule in GroupRule)}") from None
