"""Text measured the way a terminal draws it: East Asian wide characters take two columns,
combining accents none. `len()` counts neither right, and a table aligned by it breaks
on the first Japanese title or decomposed accent."""
from __future__ import annotations

import functools

ELLIPSIS = "…"
# The characters the table draws itself, each one column: with them known, a list of
# ASCII titles never loads wcwidth, whose import costs a run tens of milliseconds.
_OWN_CHARACTERS = {"★": 1, "½": 1, ELLIPSIS: 1}


@functools.lru_cache(maxsize=4096)
def _columns(character: str) -> int:
    known = _OWN_CHARACTERS.get(character)
    if known is not None:
        return known
    from wcwidth import wcwidth  # see _OWN_CHARACTERS; later calls find it loaded

    # wcwidth says -1 for a control character: titles reach us without them, so none.
    return max(wcwidth(character), 0)


def display_width(text: str) -> int:
    """The columns `text` takes on a terminal."""
    # An ASCII character takes one column (titles reach us without control characters):
    # only the others are looked up, and most titles have none.
    if text.isascii():
        return len(text)
    return len(text) + sum(_columns(character) - 1 for character in text
                           if not character.isascii())


def cut_to_width(text: str, width: int) -> str:
    """`text` if it fits in `width` columns, else its start and an ellipsis that do.

    A combining accent stays with its letter: it is kept only with the letter before it.
    """
    if display_width(text) <= width:
        return text
    if width < 1:
        return ""
    if text.isascii():
        return text[:width - 1].rstrip() + ELLIPSIS
    kept: list[str] = []
    used = 0
    for character in text:
        columns = _columns(character)
        if used + columns > width - 1:
            break
        kept.append(character)
        used += columns
    return "".join(kept).rstrip() + ELLIPSIS


def pad_to_width(text: str, width: int) -> str:
    """`text` followed by the spaces that make it `width` columns wide."""
    return text + " " * max(0, width - display_width(text))
