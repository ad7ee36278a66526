"""Pictures of a person's statistics, drawn as PNG bytes with matplotlib's Agg backend.

The figure is drawn through matplotlib's object interface on an Agg canvas: no
display, no pyplot state shared between calls. matplotlib is imported only here,
and this module only when a picture is asked for, as importing it costs a few
tenths of a second that the text statistics need not pay.
"""
from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from presentation.text import star_label, terminal_safe
from recommender.params import MAX_RATING, MIN_RATING
from recommending.statistics import TasteStatistics

# 1000 x 560 pixels: wide enough for ten labelled pairs of bars.
SIZE_INCHES = (10.0, 5.6)
DPI = 100
PERSON_COLOUR, COMMUNITY_COLOUR = "#00a35c", "#8a9bb0"


def _shares(counts: tuple[int, ...]) -> np.ndarray:
    values = np.asarray(counts, dtype=np.float64)
    return values / values.sum() * 100 if values.sum() else values


def _plain(text: str) -> str:
    """Text matplotlib draws as it is: "$" would start its maths markup."""
    return terminal_safe(text).replace("$", r"\$")


def rating_histogram_png(stats: TasteStatistics) -> bytes:
    """The person's ratings against the community's ratings of the same films, in
    shares of each, side by side for every half star."""
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    name = _plain(stats.name)
    positions = np.arange(MIN_RATING, MAX_RATING + 1)
    width = 0.4
    axes.bar(positions - width / 2, _shares(stats.histogram), width, color=PERSON_COLOUR,
             label=f"{name} ({sum(stats.histogram):,} ratings)")
    axes.bar(positions + width / 2, _shares(stats.community_histogram), width,
             color=COMMUNITY_COLOUR,
             label=f"community, same films ({sum(stats.community_histogram):,} ratings)")
    axes.set_xticks(positions, [star_label(rating) + "★" for rating in positions])
    axes.set_xlabel("rating")
    axes.set_ylabel("share of ratings (%)")
    axes.set_title(f"Ratings of {name}: mean {stats.compared_mean_stars:.2f}★ against "
                   f"the community's {stats.community_mean_stars:.2f}★ on the same films")
    axes.legend(loc="upper left", frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
