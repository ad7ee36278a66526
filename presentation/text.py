"""Small pieces the terminal renderings share: safe text, numbers, bars, wrapping."""
from __future__ import annotations

import re
import textwrap

WIDTH = 80
_LINE_BREAKS_AND_TABS = re.compile(r"[\t\n\r]+")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def terminal_safe(text: object) -> str:
    """Text from a dataset or a path without control characters: a crafted title or
    file name must not drive the terminal. Breaks and tabs become a space."""
    return _CONTROL_CHARACTERS.sub("", _LINE_BREAKS_AND_TABS.sub(" ", str(text)))


def bar(share: float, width: int) -> str:
    """A horizontal bar of `share` (0..1) of `width` cells, in eighths of a cell."""
    eighths = round(max(0.0, min(share, 1.0)) * width * 8)
    whole, part = divmod(eighths, 8)
    return "█" * whole + ("" if part == 0 else " ▏▎▍▌▋▊▉"[part])


def labelled(label: str, text: str, label_width: int = 16) -> str:
    """`label` then `text` wrapped to the terminal width, continued under the text."""
    indent = " " * label_width
    return textwrap.fill(text, width=WIDTH, initial_indent=f"{label:<{label_width}}",
                         subsequent_indent=indent)


def star_label(rating: int) -> str:
    """Half-star rating 1..10 as stars: 7 -> "3½"."""
    whole, half = divmod(rating, 2)
    return (str(whole) if whole else "") + ("½" if half else "")
