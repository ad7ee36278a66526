"""`compile_training_data.py films`: the films' own pages, read politely into the dataset."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from compile_training_data import main
from dataset import layout
from errors import EXIT_BLOCKED
from films.codes import country_code, language_code
from letterboxd.film_page import parse_film_page
from load_save_and_translate_data import load_film_table, load_ratings_dataset
from simulated_site import FaultConfig, SiteData, SimulatedSite
from simulated_site.pages import film_page
from tests.helpers import fixture_page, read_rows, snapshot


def run(mode: str, site_url: str, data_dir: Path, *extra: str) -> int:
    return main([mode, "--base-url", site_url, "--rate", "0", "--output-dir", str(data_dir),
                 "-q", *extra])


def expected_metadata(site_data: SiteData, slugs: list[str]) -> pd.DataFrame:
    """What the site's film pages say of these films, in the dataset's terms."""
    rows = []
    for slug in slugs:
        film = site_data.film(slug)
        count, mean = site_data.rating_stats(slug)
        known_kind = film.tmdb_id is not None  # only the TMDB link says film or series
        rows.append({
            "slug": slug, "lid": film.lid, "title": film.title, "year": film.year,
            "genres": "|".join(film.genres), "runtime": film.runtime,
            "language": language_code(film.language or ""),
            "countries": "|".join(country_code(name) for name in film.countries),
            "content_type": film.content_type if known_kind else "",
            "average_rating": round(mean / 2, 2) if count and mean is not None else None,
            "rating_count": count or None})
    return pd.DataFrame(rows)


def stored_metadata(data_dir: Path) -> pd.DataFrame:
    films = load_film_table(data_dir)
    return pd.DataFrame({
        "slug": films["slug"], "lid": films["lid"], "title": films["title"],
        "year": [None if pd.isna(year) else int(year) for year in films["year"]],
        "genres": films["genres"],
        "runtime": [None if pd.isna(value) else int(value) for value in films["runtime"]],
        "language": films["language"], "countries": films["countries"],
        "content_type": films["content_type"],
        "average_rating": [None if pd.isna(value) else value for value in
                           films["average_rating"]],
        "rating_count": [None if pd.isna(value) else int(value)
                         for value in films["rating_count"]]})


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plenty of quick retries, so faults cost milliseconds."""
    for name, value in {"LETTERBOXD_RETRIES": "8", "LETTERBOXD_TIMEOUT": "2",
                        "LETTERBOXD_BACKOFF_INITIAL": "0.01",
                        "LETTERBOXD_BACKOFF_MAX": "0.05"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def site_data() -> SiteData:
    return SiteData.generate(seed=11, n_users=25, n_films=120)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_pass_ends_with_exactly_the_sites_metadata_through_faults(
        site_data: SiteData, tmp_path: Path, seed: int) -> None:
    data_dir = tmp_path / "data"
    with SimulatedSite(site_data) as site:
        assert run("new", site.base_url, data_dir, "--users", "12") == 0
    faults = FaultConfig(seed=seed, rate_429=0.1, retry_after=0, rate_5xx=0.1, rate_reset=0.05,
                         rate_truncated=0.05, rate_cut_page=0.1)
    with SimulatedSite(site_data, faults) as site:
        assert run("films", site.base_url, data_dir, "--batch-size", "7") == 0
    slugs = load_film_table(data_dir)["slug"].tolist()
    pd.testing.assert_frame_equal(stored_metadata(data_dir), expected_metadata(site_data, slugs),
                                  check_dtype=False)
    assert (load_film_table(data_dir)["details_fetched"] != "").all()


def test_a_challenge_stops_the_pass_with_exit_3_and_keeps_the_batches_done(
        site_data: SiteData, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with SimulatedSite(site_data) as site:
        assert run("new", site.base_url, data_dir, "--users", "12") == 0
    ratings_before = load_ratings_dataset(data_dir)
    with SimulatedSite(site_data, FaultConfig(challenge_after=23)) as site:
        assert run("films", site.base_url, data_dir, "--batch-size", "5") == EXIT_BLOCKED
    films = load_film_table(data_dir)
    read = films["details_fetched"] != ""
    # Every page answered before the challenge is saved, the last part-batch too.
    assert read.sum() == 23
    assert read[:23].all()  # in film order, no gap
    slugs = films.loc[read, "slug"].tolist()
    pd.testing.assert_frame_equal(stored_metadata(data_dir)[read.to_numpy()].reset_index(
        drop=True), expected_metadata(site_data, slugs), check_dtype=False)
    after = load_ratings_dataset(data_dir)
    assert after.rating.tolist() == ratings_before.rating.tolist()
    with SimulatedSite(site_data) as site:  # the next run reads the rest
        assert run("films", site.base_url, data_dir) == 0
    assert (load_film_table(data_dir)["details_fetched"] != "").all()


def test_a_second_pass_reads_nothing_unless_asked_to_refresh(site_data: SiteData,
                                                              tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with SimulatedSite(site_data) as site:
        assert run("new", site.base_url, data_dir, "--users", "5") == 0
        assert run("films", site.base_url, data_dir, "--limit", "4") == 0
        assert (load_film_table(data_dir)["details_fetched"] != "").sum() == 4
        assert run("films", site.base_url, data_dir) == 0
        before = snapshot(data_dir)
        requests = len(site.request_log)
        assert run("films", site.base_url, data_dir) == 0
        assert len(site.request_log) == requests  # nothing was due: no page asked for
        assert snapshot(data_dir) == before
        assert run("films", site.base_url, data_dir, "--refresh-older-than", "0") == 0
        assert len(site.request_log) > requests


def test_a_film_gone_from_the_site_is_marked_read_not_asked_for_forever(
        site_data: SiteData, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with SimulatedSite(site_data) as site:
        assert run("new", site.base_url, data_dir, "--users", "5") == 0
    gone = load_film_table(data_dir)["slug"].iloc[0]
    smaller = SiteData.generate(seed=11, n_users=25, n_films=120)
    del smaller.films[gone]
    with SimulatedSite(smaller) as site:
        assert run("films", site.base_url, data_dir) == 0
    row = read_rows(data_dir / layout.FILM_MAPPINGS_FILE)[1]
    assert row[1] == gone and row[-1] != "" and row[7] == ""  # read, no runtime


@pytest.mark.parametrize("name, runtime, language, countries, kind", [
    ("youngjaek__film_mulholland-drive_RAW.html", 147, "English", ("France", "USA"), "film"),
    ("youngjaek__film_unbelievable-2019_tv-miniseries_RAW.html", 385, "English", ("USA",), "tv"),
    ("sdl60660__film_the-zone-of-interest_RENDERED.html", 105, "German",
     ("Poland", "UK", "USA"), "film"),
    ("sdl60660__film_the-zone-of-interest_RENDERED_no-jsonld.html", 105, "German",
     ("Poland", "UK", "USA"), "film"),
])
def test_real_film_pages_give_runtime_language_countries_and_kind(
        name: str, runtime: int, language: str, countries: tuple[str, ...], kind: str) -> None:
    html = fixture_page(name)
    for page in (html, html.replace("data-film-id=", "data-gone=")):
        details = parse_film_page(page)
        assert (details.runtime, details.language, details.countries, details.content_type) == (
            runtime, language, countries, kind)


def test_the_simulated_sites_film_pages_say_what_its_data_says(site_data: SiteData) -> None:
    for film in list(site_data.films.values())[:40]:
        details = parse_film_page(film_page(film, 3, 7.0, strip_film_id=True))
        assert (details.runtime, details.language, details.countries) == (
            film.runtime, film.language, film.countries)
        assert details.content_type == (film.content_type if film.tmdb_id else None)
