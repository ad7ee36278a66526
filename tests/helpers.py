"""Helpers more than one test module uses. Each part keeps to a titled section."""
from __future__ import annotations

import html as html_escaping
from pathlib import Path

import numpy as np

from tests.synthetic_ratings import SyntheticRatings

# --- scraping: saved pages and grid markup (page parsers, crawl, fetcher) ----

FIXTURE_PAGES_DIR = Path(__file__).resolve().parent / "fixtures" / "pages"


def fixture_page(name: str) -> str:
    """Text of a page under tests/fixtures/pages: a real saved one or a hand-written one."""
    return (FIXTURE_PAGES_DIR / name).read_text(encoding="utf-8")


def tile_html(slug: str, name: str, uid: int, rating: int | None = None) -> str:
    """One poster of a grid in the 2026 markup; its lid is "L" + uid."""
    rating_span = f'<span class="rating rated-{rating}">*</span>' if rating else ""
    return (f'<li class="griditem"><div class="react-component" '
            f'data-component-class="LazyPoster" data-item-slug="{slug}" '
            f'data-item-name="{html_escaping.escape(name)}" '
            f'''data-postered-identifier='{{"lid":"L{uid}","uid":"film:{uid}"}}'></div>'''
            f'<p class="poster-viewingdata">{rating_span}</p></li>')


def grid_html(tiles: list[str], pagination: str = "") -> str:
    """A grid page holding `tiles`, then `pagination`."""
    return (f'<html><body><div id="content"><ul class="grid">{"".join(tiles)}</ul>'
            f'{pagination}</div></body></html>')


# --- the recommender: ratings of synthetic users -----------------------------------------

def ratings_of(data: SyntheticRatings, user: int) -> tuple[np.ndarray, np.ndarray]:
    """The films one synthetic user rated, and their ratings."""
    rows = data.user_index == user
    return data.film_index[rows], data.ratings[rows]
