"""Bad input of every kind: broken dataset files, hostile names, huge pages, formula cells.

Each is refused with one clear message (or neutralised) before it can reach a
request, a path or a spreadsheet, and a broken dataset is never written to.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd
import pytest

import cli
from compile_training_data import main
from config import Config
from dataset import layout
from errors import EXIT_BAD_INPUT, DatasetError, InvalidNameError
from fetch_ratings import Fetcher
from load_save_and_translate_data import MAX_FAILED_SCRAPES, DatasetStore, load_ratings_dataset
from names import validate_slug, validate_username
from read_in_data import (film_path, parse_film_grid, parse_members_page, scrape_film,
                          scrape_user_films, user_films_path, watchlist_path)
from simulated_site import SiteData, SiteEntry, SiteFilm, SimulatedSite
from tests.helpers import film, fixture_page, read_rows, scraped, snapshot, triples

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def site() -> Iterator[SimulatedSite]:
    with SimulatedSite(SiteData.generate(seed=4, n_users=12, n_films=120)) as running:
        yield running


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Ratings lines: 2 "0,0,9", 3 "1,1,6", 4 "1,0,7", 5 "2,0,10", 6 "2,2,3"."""
    store = DatasetStore.open(tmp_path / "data", create=True)
    store.commit_batch([scraped("alice", film("heat", 9), film("alien", None)),
                        scraped("bob", film("alien", 6), film("heat", 7))])
    store.commit_batch([scraped("carol", film("heat", 10), film("brazil", 3))])
    return store.data_dir


def replace_in(name: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(data_dir: Path) -> None:
        path = data_dir / name
        text = path.read_text()
        assert text.count(old) == 1
        path.write_text(text.replace(old, new))
    return edit


def cut_bytes(name: str, count: int) -> Callable[[Path], None]:
    def edit(data_dir: Path) -> None:
        path = data_dir / name
        path.write_bytes(path.read_bytes()[:-count])
    return edit


def delete(name: str) -> Callable[[Path], None]:
    return lambda data_dir: (data_dir / name).unlink()


def edit_state(**changes: object) -> Callable[[Path], None]:
    """Change values of the state file, keeping its layout (indent 2, sorted keys): line 13
    holds next_members_page, lines 4-9 the committed sizes in file name order."""
    def edit(data_dir: Path) -> None:
        path = data_dir / layout.STATE_FILE
        state = json.loads(path.read_text())
        for key, value in changes.items():
            if key in layout.HEADERS:
                state["committed_bytes"][key] = value
            else:
                state[key] = value
        path.write_text(json.dumps(state, indent=2, sort_keys=True))
    return edit


def append_rows_and_raise_the_state(name: str, rows: str) -> Callable[[Path], None]:
    """What a hand edit that knows the commit point does: rows after the last block, and
    the state file's size of that file raised to match."""
    def edit(data_dir: Path) -> None:
        with open(data_dir / name, "a", encoding="utf-8") as handle:
            handle.write(rows)
        edit_state(**{name: (data_dir / name).stat().st_size})(data_dir)
    return edit


def write_state(text: str) -> Callable[[Path], None]:
    return lambda data_dir: (data_dir / layout.STATE_FILE).write_text(text)


FILM_ROW = "0,heat,HEAT,4,Heat,2001,"

BROKEN = {
    "wrong header": (replace_in(layout.RATINGS_FILE, "user_id,film_id,rating", "user,film,stars"),
                     layout.RATINGS_FILE, 1, "wrong header"),
    "non-integer rating": (replace_in(layout.RATINGS_FILE, "\n1,1,6\n", "\n1,1,x\n"),
                           layout.RATINGS_FILE, 3, "not an integer"),
    "rating out of range": (replace_in(layout.RATINGS_FILE, "\n1,1,6\n", "\n1,1,11\n"),
                            layout.RATINGS_FILE, 3, "out of range"),
    "duplicate rating row": (replace_in(layout.RATINGS_FILE, "\n1,1,6\n", "\n1,0,7\n"),
                             layout.RATINGS_FILE, 4, "duplicate"),
    "unknown film id": (replace_in(layout.RATINGS_FILE, "\n1,1,6\n", "\n1,9,6\n"),
                        layout.RATINGS_FILE, 3, "unknown id"),
    "duplicate user row": (replace_in(layout.USER_MAPPINGS_FILE, "1,bob,Bob", "1,alice,Alice"),
                           layout.USER_MAPPINGS_FILE, 3, "duplicate username"),
    "unknown user in the log": (replace_in(layout.USER_UPDATES_FILE, "\n2,carol,", "\n7,carol,"),
                                layout.USER_UPDATES_FILE, 4, "out of range"),
    "valid but grown edit": (replace_in(layout.RATINGS_FILE, "\n1,1,6\n", "\n1,1,10\n"),
                             layout.RATINGS_FILE, 6, "changed since it was saved"),
    "truncated mid-row": (cut_bytes(layout.RATINGS_FILE, 3), layout.RATINGS_FILE, 6,
                          "truncated"),
    "truncated log": (cut_bytes(layout.USER_UPDATES_FILE, 30), layout.USER_UPDATES_FILE, 4,
                      "truncated"),
    "missing film mappings": (delete(layout.FILM_MAPPINGS_FILE), layout.FILM_MAPPINGS_FILE,
                              None, "missing"),
    "missing state file": (delete(layout.STATE_FILE), layout.STATE_FILE, None, "missing"),
    # Numbers out of any range a later command can use.
    "film year above int64": (replace_in(layout.FILM_MAPPINGS_FILE, FILM_ROW,
                                         FILM_ROW.replace("2001", "99999999999999999999")),
                              layout.FILM_MAPPINGS_FILE, 2, "year 99999999999999999999 is "
                              "out of range (1870-2100 or empty)"),
    "film year before films": (replace_in(layout.FILM_MAPPINGS_FILE, FILM_ROW,
                                          FILM_ROW.replace("2001", "1850")),
                               layout.FILM_MAPPINGS_FILE, 2, "year 1850 is out of range"),
    "film year as a float": (replace_in(layout.FILM_MAPPINGS_FILE, FILM_ROW,
                                        FILM_ROW.replace("2001", "1e99")),
                             layout.FILM_MAPPINGS_FILE, 2, "year '1e99' is not a whole number"),
    "letterboxd id above int64": (replace_in(layout.FILM_MAPPINGS_FILE, FILM_ROW,
                                             FILM_ROW.replace(",4,", ",9223372036854775808,")),
                                  layout.FILM_MAPPINGS_FILE, 2, "letterboxd_id "
                                  "9223372036854775808 is out of range"),
    "user id above int64": (replace_in(layout.RATINGS_FILE, "\n1,1,6\n",
                                       "\n99999999999999999999,1,6\n"),
                            layout.RATINGS_FILE, 3, "user_id 99999999999999999999 is out of range"),
    "negative film id": (replace_in(layout.RATINGS_FILE, "\n1,1,6\n", "\n1,-1,6\n"),
                         layout.RATINGS_FILE, 3, "film_id -1 is an unknown id"),
    "a cell over 128 KiB": (replace_in(layout.FILM_MAPPINGS_FILE, ",Heat,", f",{'H' * 140_000},"),
                            layout.FILM_MAPPINGS_FILE, 2, "a title cell is longer than 131,072"),
    "negative members page": (edit_state(next_members_page=-3), layout.STATE_FILE, 13,
                              "next_members_page is -3"),
    "negative committed size": (edit_state(**{layout.RATINGS_FILE: -5}), layout.STATE_FILE, 5,
                                f"{layout.RATINGS_FILE} is -5"),
    "committed size as text": (edit_state(**{layout.RATINGS_FILE: "42"}), layout.STATE_FILE, 5,
                               f"{layout.RATINGS_FILE} is '42'"),
    "committed size inside the header": (edit_state(**{layout.UNRATED_FILE: 3}),
                                         layout.STATE_FILE, 9, f"{layout.UNRATED_FILE} is 3"),
    "batches NaN": (edit_state(batches=float("nan")), layout.STATE_FILE, None,
                    "NaN is not a number"),
    "compacting as text": (edit_state(compacting="false"), layout.STATE_FILE, 11,
                           "compacting is 'false'"),
    "state nested deeply": (write_state("[" * 5000 + "]" * 5000), layout.STATE_FILE, None,
                            "nested more than"),
    "state file of a megabyte": (write_state("{" + " " * 1_000_000 + "}"), layout.STATE_FILE,
                                 None, "larger than the 65,536 bytes"),
    # Rows after the last block that the update log records, the state raised to match.
    "ratings appended after the last block": (
        append_rows_and_raise_the_state(layout.RATINGS_FILE, "2,1,8\n"), layout.RATINGS_FILE,
        7, "holds rows after the last block"),
    "unrated films appended after the last block": (
        append_rows_and_raise_the_state(layout.UNRATED_FILE, "1,2\n2,1\n"),
        layout.UNRATED_FILE, 3, "holds rows after the last block"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_continue_on_a_broken_dataset_says_where_in_one_line_and_writes_nothing(
        case: str, dataset: Path, site: SimulatedSite, capsys: pytest.CaptureFixture) -> None:
    edit, name, line, message = BROKEN[case]
    edit(dataset)
    before = snapshot(dataset)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli.run(main, ["continue", "--output-dir", str(dataset), "--base-url", site.base_url,
                       "--rate", "0", "--users", "5"])
    assert exited.value.code == EXIT_BAD_INPUT
    err_lines = [text for text in capsys.readouterr().err.splitlines() if text.strip()]
    assert len(err_lines) == 1, err_lines
    where = f"ERROR: {dataset / name}" + (f", line {line}: " if line else ": ")
    assert err_lines[0].startswith(where) and message in err_lines[0], err_lines[0]
    assert snapshot(dataset) == before
    assert site.request_count() == 0  # refused before a single request

    if name != layout.STATE_FILE:
        with pytest.raises(DatasetError) as caught:
            load_ratings_dataset(dataset)
        assert Path(caught.value.path) == dataset / name and caught.value.line == line
        assert snapshot(dataset) == before


def test_translated_rows_appended_after_the_last_block_stop_the_builder(
        dataset: Path, site: SimulatedSite, capsys: pytest.CaptureFixture) -> None:
    """No reader parses the translated file, but compaction copies its blocks by the
    update log's counts: a row added by hand would shift every later block."""
    row = "mallory,Heat,2001,heat,4.5,9,false,https://letterboxd.com/film/heat/\n"
    append_rows_and_raise_the_state(layout.TRANSLATED_FILE, row)(dataset)
    before = snapshot(dataset)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli.run(main, ["continue", "--output-dir", str(dataset), "--base-url", site.base_url,
                       "--rate", "0", "--users", "5"])
    assert exited.value.code == EXIT_BAD_INPUT
    assert capsys.readouterr().err.splitlines() == [
        f"ERROR: {dataset / layout.TRANSLATED_FILE}, line 7: holds 6 rows where the update "
        "log records 5: edited by hand? restore it from backups/ or start over with `new`"]
    assert snapshot(dataset) == before and site.request_count() == 0


def test_the_command_line_prints_one_error_line_and_exits_2(dataset: Path,
                                                            site: SimulatedSite) -> None:
    BROKEN["rating out of range"][0](dataset)
    before = snapshot(dataset)
    finished = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "compile_training_data.py"), "continue",
         "--output-dir", str(dataset), "--base-url", site.base_url, "--rate", "0"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert finished.returncode == EXIT_BAD_INPUT
    assert finished.stderr.splitlines() == [
        f"ERROR: {dataset / layout.RATINGS_FILE}, line 3: rating 11 is out of range"]
    assert finished.stdout == ""
    assert snapshot(dataset) == before and site.request_count() == 0


def test_a_torn_tail_is_ignored_by_readers_and_cut_by_the_next_writer(dataset: Path) -> None:
    """kill -9 mid-batch leaves rows past the commit point: not data, and not an error."""
    clean = load_ratings_dataset(dataset)
    for name, tail in ((layout.USER_MAPPINGS_FILE, "3,dave,Dave\n4,e"),
                       (layout.RATINGS_FILE, "3,0,8\n3,1,"),
                       (layout.USER_UPDATES_FILE, "3,dave,2026-")):
        with open(dataset / name, "a", encoding="utf-8") as handle:
            handle.write(tail)
    loaded = load_ratings_dataset(dataset)
    assert loaded.usernames == clean.usernames == ["alice", "bob", "carol"]
    assert loaded.rating.tolist() == clean.rating.tolist()
    store = DatasetStore.open(dataset)
    assert store.user_count == 3 and not store.is_known("dave")
    store.commit_batch([scraped("dave", film("heat", 8))])
    assert read_rows(dataset / layout.USER_MAPPINGS_FILE)[-1] == ["3", "dave", "Dave"]
    assert load_ratings_dataset(dataset).usernames == ["alice", "bob", "carol", "dave"]


# --- names ----------------------------------------------------------------------

HOSTILE_NAMES = ["../x", "a/b", "a b", "https://letterboxd.com/x/", "", "//evil.example",
                 "..", "x\n", "%2e%2e", "caf\u00e9"]
UNSAFE_PATHS = ["/../x/films/", "https://letterboxd.com/x/", "//evil.example/x/", "",
                "/a b/films/", "/x\n/films/", "x/films/"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_are_refused_before_any_url_or_request(name: str,
                                                             site: SimulatedSite) -> None:
    with pytest.raises(InvalidNameError, match="not a Letterboxd username"):
        validate_username(name)
    with pytest.raises(InvalidNameError, match="not a Letterboxd film slug"):
        validate_slug(name)
    with Fetcher(Config(base_url=site.base_url, requests_per_second=0)) as fetcher:
        for attempt in (lambda: user_films_path(name), lambda: watchlist_path(name),
                        lambda: film_path(name), lambda: scrape_user_films(fetcher, name),
                        lambda: scrape_film(fetcher, name)):
            with pytest.raises(InvalidNameError):
                attempt()
    assert site.request_log == []  # not even robots.txt


REAL_SLUGS = ["cry_wolf", "jung_e", "cats_the_mewvie", "10-cloverfield-lane", "mulholland-drive",
              "unbelievable-2019", "the-zone-of-interest", "v-h-s-halloween", "m", "2001"]
SLUG_TRICKS = [".", "..", "a.b", "a/b", "a%2fb", "%2e%2e", "a\\b", "a--b", "-a", "a-", "Cry_Wolf",
               "a b", "a\tb", "caf\u00e9", "\uff41", "a\x00", "a?b", "a#b", "a;b", "a:b",
               "_/..", "a" * 201]


@pytest.mark.parametrize("slug", REAL_SLUGS)
def test_real_film_slugs_are_accepted(slug: str) -> None:
    """Letterboxd keeps a title's underscores in its slug (Cry_Wolf is /film/cry_wolf/)."""
    assert validate_slug(slug) == slug
    assert film_path(slug) == f"/film/{slug}/"


@pytest.mark.parametrize("slug", SLUG_TRICKS)
def test_every_path_trick_is_still_refused_as_a_slug(slug: str) -> None:
    with pytest.raises(InvalidNameError, match="not a Letterboxd film slug"):
        validate_slug(slug)


def test_every_name_in_the_real_sample_and_saved_pages_passes(shared_dataset_dir: Path) -> None:
    ratings = pd.read_csv(shared_dataset_dir / "ratings.csv.gz", dtype=str,
                          keep_default_na=False)
    movies = pd.read_csv(shared_dataset_dir / "movies.csv.gz", dtype=str, keep_default_na=False)
    for slug in set(ratings["movie_id"]) | set(movies["movie_id"]):
        validate_slug(slug)
    for username in set(ratings["user_id"]):
        validate_username(username)
    for page in ("youngjaek__user_films_page1_thebigal_RAW.html",
                 "sdl60660__user_films_samtestacct_page1_RENDERED.html",
                 "youngjaek__list_dave_official-top-250_page1_RAW.html"):
        grid = parse_film_grid(fixture_page(page))
        assert len(grid.films) == grid.tile_count  # no poster turned away
    members = parse_members_page(fixture_page(
        "sdl60660__members_popular_this-week_page1_RENDERED.html"))
    assert len(members.members) == members.row_count == 30


def test_paths_that_could_leave_the_site_are_never_requested(site: SimulatedSite) -> None:
    with Fetcher(Config(base_url=site.base_url, requests_per_second=0)) as fetcher:
        for path in UNSAFE_PATHS:
            with pytest.raises(InvalidNameError, match="not a site-relative path"):
                fetcher.get_html(path)
    assert site.request_log == []


def test_hostile_names_served_by_the_site_never_reach_a_request_or_the_dataset(
        site: SimulatedSite, tmp_path: Path) -> None:
    data = site.data
    victim = list(data.users)[1]
    # Bypass SiteData's own validation: this is what a compromised page could say.
    data.users["../evil"] = [SiteEntry(next(iter(data.films)), 8)]
    data.films["../../etc/passwd"] = SiteFilm("../../etc/passwd", "Passwd", 2001, 1, "zzzz")
    data.users[victim].insert(0, SiteEntry("../../etc/passwd", 10))
    assert main(["new", "--output-dir", str(tmp_path / "d"), "--base-url", site.base_url,
                 "--rate", "0", "--users", "1000", "-q"]) == 0
    assert not [path for _, path, _ in site.request_log if "evil" in path or ".." in path]
    loaded = load_ratings_dataset(tmp_path / "d")
    assert loaded.usernames == [user for user in data.users if user != "../evil"]
    assert triples(loaded) == {
        triple for triple in data.rating_triples() if ".." not in triple[0] + triple[1]}
    assert [path.name for path in tmp_path.iterdir()] == ["d"]


# --- response size ---------------------------------------------------------------

def test_pages_over_the_size_limit_are_refused_and_their_users_reported(
        site: SimulatedSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    limit = 40_000  # the members page and small grids fit, big grids do not
    monkeypatch.setenv("LETTERBOXD_MAX_RESPONSE_BYTES", str(limit))
    data_dir = tmp_path / "data"
    assert main(["new", "--output-dir", str(data_dir), "--base-url", site.base_url,
                 "--rate", "0", "--users", "1000"]) == 0
    first_pages = [path for _, path, _ in site.request_log if path.endswith("/films/")]
    assert len(first_pages) == len(set(first_pages))  # a refused page is not retried
    sizes = {path: len(site.reply(path).body) for path in first_pages}
    too_big = {path.split("/")[1] for path, size in sizes.items() if size > limit}
    fitting = {path.split("/")[1] for path, size in sizes.items() if size <= limit}
    assert too_big and fitting
    statuses = {row[1]: row[3] for row in read_rows(data_dir / layout.USER_UPDATES_FILE)[1:]}
    assert statuses == {**{user: "failed" for user in too_big}, **{user: "ok" for user in fitting}}
    assert f"skipped (failed): {len(too_big)}" in capsys.readouterr().out
    loaded = load_ratings_dataset(data_dir)
    assert triples(loaded) == {
        triple for triple in site.data.rating_triples() if triple[0] in fitting}

    # Later runs retry them, but a failure that keeps coming back is given up on.
    def tries(user: str) -> int:
        return sum(1 for _, path, _ in site.request_log if path == f"/{user}/films/")

    before = {user: tries(user) for user in too_big | fitting}
    for run in range(1, MAX_FAILED_SCRAPES + 1):
        assert main(["continue", "--output-dir", str(data_dir), "--base-url", site.base_url,
                     "--rate", "0", "--users", "0", "-q"]) == 0
        # The first failure was in `new`: runs 1 and 2 retry, run 3 leaves them alone.
        assert {tries(user) - before[user] for user in too_big} == {
            min(run, MAX_FAILED_SCRAPES - 1)}
    assert {tries(user) - before[user] for user in fitting} == {0}


def test_a_user_given_up_on_is_not_queued_again_from_the_members_list(
        site: SimulatedSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETTERBOXD_MAX_RESPONSE_BYTES", "40000")  # big grids always fail
    data_dir = tmp_path / "data"

    def build(mode: str, users: int) -> None:
        assert main([mode, "--output-dir", str(data_dir), "--base-url", site.base_url,
                     "--rate", "0", "--users", str(users), "--batch-size", "1", "-q"]) == 0

    build("new", 4)
    for _ in range(6):  # each run also takes a new member from the list
        build("continue", 1)
    scrapes = Counter(path.split("/")[1] for _, path, _ in site.request_log
                      if path.endswith("/films/"))
    failed = {row[1] for row in read_rows(data_dir / layout.USER_UPDATES_FILE)[1:]
              if row[3] == "failed"}
    assert failed and max(scrapes[user] for user in failed) == MAX_FAILED_SCRAPES


# --- spreadsheet formulas -------------------------------------------------------------

RISKY_TITLES = {"+cmd": "'+cmd", "@SUM(A1)": "'@SUM(A1)", "-2+3": "'-2+3", "\tTab": "'\tTab",
                "\rReturn": "' Return", "Two\nLines": "Two Lines", "Old\r\nMac": "Old Mac"}


def assert_human_and_machine_files(data_dir: Path, raw_titles: set[str],
                                   shown_titles: set[str]) -> None:
    translated_path = data_dir / layout.TRANSLATED_FILE
    translated = read_rows(translated_path)
    titles = {row[1] for row in translated[1:]}
    assert shown_titles <= titles
    assert not [title for title in titles if title[:1] in ("=", "+", "-", "@", "\t", "\r")]
    # One physical line per rating: compaction copies this file line by line.
    assert translated_path.read_bytes().count(b"\n") == len(translated)
    film_titles = {row[4] for row in read_rows(data_dir / layout.FILM_MAPPINGS_FILE)[1:]}
    assert raw_titles <= film_titles
    assert not [title for title in film_titles if title.startswith("'")]
    ratings = read_rows(data_dir / layout.RATINGS_FILE)
    assert all(cell.isdigit() for row in ratings[1:] for cell in row)
    loaded = load_ratings_dataset(data_dir)  # the raw titles do not break a reader
    assert raw_titles <= set(loaded.films["title"])


def test_formula_titles_are_neutralised_only_in_the_human_facing_file(
        site: SimulatedSite, tmp_path: Path) -> None:
    formula_title = "=1+1 Is Two"
    assert any(film.title == formula_title for film in site.data.films.values())
    data_dir = tmp_path / "data"
    assert main(["new", "--output-dir", str(data_dir), "--base-url", site.base_url,
                 "--rate", "0", "--users", "1000", "-q"]) == 0
    store = DatasetStore.open(data_dir)
    store.commit_batch([scraped("zed", *(film(f"risky-{i}", 6, title=title)
                                    for i, title in enumerate(RISKY_TITLES)))])
    assert_human_and_machine_files(data_dir, {formula_title, *RISKY_TITLES},
                                   {"'" + formula_title, *RISKY_TITLES.values()})
    DatasetStore.open(data_dir).commit_batch([scraped("zed", film("risky-0", 7))])  # a refresh
    assert DatasetStore.open(data_dir).compact() > 0
    assert_human_and_machine_files(data_dir, {formula_title, *RISKY_TITLES},
                                   {"'" + formula_title})


def test_imported_titles_get_the_same_treatment(tmp_path: Path) -> None:
    ratings = tmp_path / "ratings.csv"
    movies = tmp_path / "movies.csv"
    slugs = [f"film-{i}" for i in range(len(RISKY_TITLES))]
    with open(ratings, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("user_id", "movie_id", "rating_val"),
                                      *(("ann", slug, 8) for slug in slugs)])
    with open(movies, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("movie_id", "movie_title"), *zip(slugs, RISKY_TITLES)])
    assert main(["import", str(ratings), "--movies", str(movies),
                 "--output-dir", str(tmp_path / "data"), "-q"]) == 0
    assert_human_and_machine_files(tmp_path / "data", set(RISKY_TITLES),
                                   set(RISKY_TITLES.values()))


def test_a_truncated_gzip_import_is_a_one_line_error(tmp_path: Path) -> None:
    import gzip
    payload = gzip.compress(("user_id,movie_id,rating_val\n"
                             + "".join(f"u{i},film-{i % 7},{1 + i % 10}\n" for i in range(3000))
                             ).encode())
    source = tmp_path / "ratings.csv.gz"
    source.write_bytes(payload[:len(payload) // 2])
    with pytest.raises(DatasetError, match="cannot be read as CSV"):
        main(["import", str(source), "--output-dir", str(tmp_path / "data"), "-q"])


def test_an_import_with_a_cell_over_128_kib_is_one_line_and_keeps_the_dataset(
        dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """pandas reads cells of any length; the csv module stops at 128 KiB: so do we."""
    source = tmp_path / "ratings.csv"
    source.write_text("user_id,movie_id,rating_val\nann,heat,8\n"
                      f"{'b' * 140_000},heat,7\n")
    before = snapshot(dataset)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli.run(main, ["import", str(source), "--output-dir", str(dataset)])
    assert exited.value.code == EXIT_BAD_INPUT
    assert capsys.readouterr().err.splitlines() == [
        f"ERROR: {source}, line 3: a user_id cell is longer than 131,072 characters"]
    assert snapshot(dataset) == before
