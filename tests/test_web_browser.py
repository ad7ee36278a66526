"""The local web page driven in a real headless Chromium (Debian's package, through
Playwright): what a person does with it, and what they see.

They skip, saying why, where no Chromium is installed; CI installs it (.ci/run), and
there a missing browser fails the run rather than passing it quietly. Set
LETTERBOXD_SCREENSHOTS=DIR to keep the screenshots of the shared sample's pages in DIR
(the README's come from `LETTERBOXD_SCREENSHOTS=docs`).
"""
from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import pytest

from config import Config
from letterboxd.list_import import LIST_IMPORT_HEADER
from simulated_site import SimulatedSite
from tests.web_support import (EXPORT_RATED, EXPORT_WATCHED, HOSTILE_TITLE, N_FILMS, OUTSIDER,
                               build_dataset, export_zip, film_index, outsider_site,
                               running_page)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
MISSING = ("no Chromium at /usr/bin/chromium: `apt-get install -y chromium chromium-driver` "
           "(.ci/run does) and `pip install playwright`")

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None
if sync_playwright is None or not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"the browser tests must run in CI: {MISSING}", pytrace=False)
    pytest.skip(MISSING, allow_module_level=True)

WAIT_MS = 30_000


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Page:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def site():
    with SimulatedSite(outsider_site()) as running:
        yield running


@pytest.fixture(scope="module")
def served(data_dir: Path, site: SimulatedSite):
    config = Config(base_url=site.base_url, requests_per_second=20, output_dir=data_dir)
    with running_page(data_dir, config=config, max_upload_bytes=256 * 1024) as running:
        yield running


def shown_picks(page: Page) -> list[tuple[str, int]]:
    page.locator("ol.picks").wait_for()
    titles = page.locator("ol.picks .title").all_inner_texts()
    years = page.locator("ol.picks .year").all_inner_texts()
    return [(title, int(year)) for title, year in zip(titles, years)]


def upload_export(page: Page, url: str, path: Path, button: str = "Recommend films") -> None:
    page.goto(url)
    page.set_input_files("input[name=export]", str(path))
    page.get_by_role("button", name=button).click()


def test_upload_filter_and_download_the_list(page: Page, served, tmp_path: Path) -> None:
    upload_export(page, served.url, export_zip(tmp_path / "letterboxd-me.zip"))
    before = shown_picks(page)
    logged = set(EXPORT_RATED) | set(EXPORT_WATCHED)
    assert len(before) == N_FILMS - len(logged)  # every film they have not logged
    assert not {film_index(title) for title, _ in before} & logged
    page.get_by_label("Released from").fill("1990")
    page.get_by_label("Genres", exact=False).first.fill("Comedy")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**year_from=1990**")
    after = shown_picks(page)
    assert after and after != before
    assert all(year >= 1990 and film_index(title) % 2 == 1 for title, year in after)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the list (CSV)").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert tuple(rows[0]) == LIST_IMPORT_HEADER
    assert [(title, int(year)) for _, title, year, _ in rows[1:]] == after
    assert all(uri.startswith("https://letterboxd.com/film/film-") for uri, *_ in rows[1:])
    assert download.value.suggested_filename == "letterboxd-me-picks.csv"


def test_a_hostile_title_is_rendered_as_text(page: Page, served, tmp_path: Path) -> None:
    upload_export(page, served.url, export_zip(tmp_path / "export.zip"))
    page.get_by_label("How many").fill("100")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**top=100**")
    assert HOSTILE_TITLE in [title for title, _ in shown_picks(page)]
    expect(page.locator("ol.picks .title", has_text="<script>")).to_have_text(HOSTILE_TITLE)
    assert page.evaluate("window.pwned") is None  # neither the script nor the onerror ran
    assert page.locator("ol.picks img, ol.picks script").count() == 0


def test_an_oversized_upload_gets_its_message(page: Page, served, tmp_path: Path) -> None:
    big = tmp_path / "huge-export.zip"
    big.write_bytes(os.urandom(300 * 1024))
    upload_export(page, served.url, big)
    expect(page.locator(".error")).to_contain_text("That file is 300 KB; an export ZIP may be "
                                                   "at most 256 KB here")
    expect(page.locator("input[name=export]")).to_be_visible()  # to choose another


def test_a_corrupt_upload_gets_its_message(page: Page, served, tmp_path: Path) -> None:
    notes = tmp_path / "notes.zip"
    notes.write_text("these are my notes, not a ZIP")
    upload_export(page, served.url, notes)
    expect(page.locator(".error")).to_have_text(
        "notes.zip is neither a ZIP file nor a folder of a Letterboxd export")
    assert "Traceback" not in page.content()


def test_a_profile_read_from_the_site_shows_its_progress_then_the_list(
        page: Page, served, site: SimulatedSite) -> None:
    with served.state.site_lock:  # another read is under way: this one waits its turn
        page.goto(served.url)
        page.get_by_label("Letterboxd username").fill(OUTSIDER)
        page.get_by_role("button", name="Recommend films").click()
        page.wait_for_url("**/jobs/**")
        expect(page.locator(".stage")).to_have_text("waiting for another profile read to finish")
        expect(page.locator("progress")).to_be_visible()
    page.wait_for_url("**/picks?person=**")  # the script followed the job to its end
    seen = {entry.slug for entry in site.data.entries(OUTSIDER)}
    picks = shown_picks(page)
    assert picks and not {f"film-{film_index(title)}" for title, _ in picks} & seen
    expect(page.locator(".source")).to_contain_text(f"scraped 24 films (24 rated) from "
                                                    f"{site.base_url}")


def test_a_failed_job_says_why_on_the_progress_page(page: Page, served) -> None:
    with served.state.site_lock:
        page.goto(served.url)
        page.get_by_label("Letterboxd username").fill("nobody_here")
        page.get_by_role("button", name="Recommend films").click()
        page.wait_for_url("**/jobs/**")
    expect(page.locator(".error")).to_have_text("there is no Letterboxd user 'nobody_here'")


def test_the_statistics_page_draws_its_charts(page: Page, served, tmp_path: Path) -> None:
    upload_export(page, served.url, export_zip(tmp_path / "export.zip"), "Show statistics")
    page.wait_for_url("**/statistics?person=**")
    chart = page.locator("img.chart")
    expect(chart).to_be_visible()
    expect(chart).to_have_js_property("complete", True)
    assert chart.evaluate("image => [image.naturalWidth, image.naturalHeight]") == [1000, 560]
    assert page.locator("meter.mine").count() >= 6  # decades, by the community's
    expect(page.locator("dl.figures")).to_contain_text("Rating style")


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("LETTERBOXD_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_screenshots_of_the_shared_samples_pages(browser, shared_sample_dataset: Path,
                                                 screenshots: Path) -> None:
    """The README's pictures: a member of the real sample, their picks from the 1990s on
    and their statistics."""
    from matplotlib.image import imread

    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(120_000)  # a first fit of the sample's model
    page = context.new_page()
    with running_page(shared_sample_dataset) as served:
        page.goto(served.url)
        page.get_by_label("Letterboxd username").fill("wilsoncarter14")
        page.get_by_role("button", name="Recommend films").click()
        page.wait_for_url("**/picks?person=**")
        page.get_by_label("Released from").fill("1990")
        page.get_by_label("How many").fill("12")
        page.get_by_role("button", name="Apply").click()
        page.wait_for_url("**year_from=1990**")
        assert len(shown_picks(page)) == 12
        page.screenshot(path=str(screenshots / "web-picks.png"), full_page=True)
        page.get_by_role("link", name="Statistics").click()
        expect(page.locator("img.chart")).to_have_js_property("complete", True)
        page.screenshot(path=str(screenshots / "web-statistics.png"), full_page=True)
        context.close()
    for name in ("web-picks.png", "web-statistics.png"):
        assert imread(screenshots / name).shape[1] == 1280
