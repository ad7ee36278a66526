"""Helpers more than one test module uses. Each part keeps to a titled section."""
from __future__ import annotations

import csv
import html as html_escaping
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from load_save_and_translate_data import (RatingsData, ScrapedFilm, ScrapeStatus,
                                          UserScrapeRecord, load_ratings_dataset)
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


# --- dataset helpers ------------------------------------------------------------------
# Readers of what a dataset folder holds, builders of what a scrape hands the store,
# and faults a kill would cause.

# A dataset written by the store before the `dataset` package existed (see its test in
# tests/test_dataset_store.py): every later layout must open, load and continue it.
FIXTURE_DATASET = Path(__file__).resolve().parent / "fixtures" / "dataset_v1"


def copy_fixture_dataset(target: Path) -> Path:
    """A writable copy of FIXTURE_DATASET at `target`."""
    shutil.copytree(FIXTURE_DATASET, target)
    return target


def triples(data: RatingsData) -> set[tuple[str, str, int]]:
    """(username, slug, rating) of every current rating."""
    slugs = data.films["slug"].to_numpy()
    return {(data.usernames[user], slugs[film], int(rating))
            for user, film, rating in zip(data.user_index, data.film_index, data.rating)}


def dataset_triples(data_dir: Path) -> set[tuple[str, str, int]]:
    return triples(load_ratings_dataset(data_dir))


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def read_dicts(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by relative path."""
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def film(slug: str, rating: int | None, *, title: str | None = None, year: int | None = 2001,
         liked: bool = False) -> ScrapedFilm:
    """A film as a scrape saw it; lid and Letterboxd id follow from the slug."""
    return ScrapedFilm(slug=slug, lid=slug[:4].upper(), letterboxd_id=len(slug),
                       title=title or slug.replace("-", " ").title(), year=year, rating=rating,
                       liked=liked)


def scraped(username: str, *films: ScrapedFilm) -> UserScrapeRecord:
    """A user read successfully, with a display name made from the username."""
    return UserScrapeRecord(username, ScrapeStatus.OK, tuple(films), username.title())


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs (tests check no cleanup was needed)."""


def kill_at_replace(monkeypatch: pytest.MonkeyPatch, number: int | None = None, *,
                    target_is: Path | None = None, source_suffix: str | None = None
                    ) -> list[int]:
    """Raise Killed instead of the `number`th os.replace (0-based), or of the first one onto
    `target_is` or from a name ending in `source_suffix`; count them all."""
    original = os.replace
    calls: list[int] = []

    def replace(source, target) -> None:
        calls.append(1)
        if (len(calls) - 1 == number
                or (target_is is not None and Path(target) == target_is)
                or (source_suffix is not None and str(source).endswith(source_suffix))):
            raise Killed(f"killed before os.replace({source}, {target})")
        original(source, target)

    monkeypatch.setattr(os, "replace", replace)
    return calls


def count_replaces(run: Callable[[], object], monkeypatch: pytest.MonkeyPatch) -> int:
    """How many os.replace calls `run` makes."""
    with monkeypatch.context() as patch:
        calls = kill_at_replace(patch)
        run()
    return len(calls)


# --- exports and list files a person brings (recommend.py's questions) -----------------

def dated_export_zip(path: Path, rated: list[tuple[str, int | None, int, str]],
                     watched: list[tuple[str, int | None, str]] = ()) -> Path:
    """An export ZIP at `path`: `rated` rows (title, year, rating 1..10, YYYY-MM-DD) in
    ratings.csv, `watched` rows (title, year, date) in watched.csv; no links, so only
    titles and years name the films, as in an export of films a dataset has no lid for."""
    import io
    import zipfile

    def table(header: list[str], rows: list[list[object]]) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buffer.getvalue()

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ratings.csv", table(
            ["Date", "Name", "Year", "Letterboxd URI", "Rating"],
            [[day, title, year or "", "", f"{rating / 2:g}"]
             for title, year, rating, day in rated]))
        archive.writestr("watched.csv", table(
            ["Date", "Name", "Year", "Letterboxd URI"],
            [[day, title, year or "", ""] for title, year, day in watched]))
    return path
