"""The commands against pages cut short, slow heads, an offline machine and unusable pages.

One test per kind of trouble, each through the command a user runs: its exit code,
the first line it prints, and, where nothing should change, every dataset file
byte for byte. Runs that could hang are separate processes with a hard timeout.
"""
from __future__ import annotations

import csv
import os
import re
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import pytest

import cli
from compile_training_data import main as build_main
from dataset import layout
from errors import EXIT_UNAVAILABLE
from recommend import main as recommend_main
from simulated_site import RESET, Reply, SiteData, SimulatedSite
from tests.conftest import PROJECT_ROOT
from tests.helpers import dataset_triples, read_dicts, snapshot

FAST = {"LETTERBOXD_RETRIES": "3", "LETTERBOXD_TIMEOUT": "0.3",
        "LETTERBOXD_CONNECT_TIMEOUT": "1", "LETTERBOXD_BACKOFF_INITIAL": "0.01",
        "LETTERBOXD_BACKOFF_MAX": "0.02"}
HARD_TIMEOUT_SECONDS = 60

Breakage = Callable[[Reply], Reply]


class SiteWithBrokenPages(SimulatedSite):
    """Answers a path in `broken` with the page its function makes of the real answer,
    the first `times` requests for it (None: always)."""

    def __init__(self, data: SiteData) -> None:
        super().__init__(data)
        self.broken: dict[str, tuple[Breakage, int | None]] = {}
        self._asked: Counter[str] = Counter()
        self._asked_lock = threading.Lock()

    def reply(self, target: str) -> Reply:
        reply = super().reply(target)
        if target not in self.broken:
            return reply
        breakage, times = self.broken[target]
        with self._asked_lock:
            asked = self._asked[target]
            self._asked[target] += 1
        return breakage(reply) if times is None or asked < times else reply


def cut_before_pagination(reply: Reply) -> Reply:
    """The document stops before its pagination: a first page that looks like the last."""
    return reply._replace(body=reply.body[:reply.body.index(b'class="pagination"')])


def grid_left_out(reply: Reply) -> Reply:
    """A whole document whose grid failed to render: every poster gone, the count still there."""
    return reply._replace(body=re.sub(rb'<li class="griditem">.*?</li>\n', b"", reply.body,
                                      flags=re.S))


def body(content: bytes) -> Breakage:
    return lambda reply: reply._replace(body=content)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def site_data() -> SiteData:
    return SiteData.generate(seed=3, n_users=12, n_films=250, min_watched=80, max_watched=200)


@pytest.fixture
def site(site_data: SiteData) -> Iterator[SiteWithBrokenPages]:
    with SiteWithBrokenPages(site_data) as running:
        yield running


def build(mode: str, site: SimulatedSite, data_dir: Path, *extra: str) -> int:
    """A builder run as a user runs it: exit code from cli.run, output on the terminal."""
    with pytest.raises(SystemExit) as exited:
        cli.run(build_main, [mode, "--base-url", site.base_url, "--rate", "0", "--output-dir",
                             str(data_dir), "--workers", "2", "-q", "--users", "1000", *extra])
    return exited.value.code


def first_error(captured: pytest.CaptureResult[str]) -> str:
    return next(line for line in captured.err.splitlines() if line.startswith("ERROR"))


def statuses(data_dir: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for row in read_dicts(data_dir / layout.USER_UPDATES_FILE):
        found.setdefault(row["username"], []).append(row["status"])
    return found


def site_triples(site_data: SiteData, users: set[str]) -> set[tuple[str, str, int]]:
    return {triple for triple in site_data.rating_triples() if triple[0] in users}


@pytest.fixture
def existing_dataset(site: SiteWithBrokenPages, tmp_path: Path) -> Path:
    """A dataset already in place, which a failed `new` must leave exactly as it was."""
    data_dir = tmp_path / "data"
    assert build("new", site, data_dir, "--users", "3") == 0
    return data_dir


# --- 1. pages cut short ----------------------------------------------------------------

def test_pages_cut_short_are_read_again_and_every_user_is_saved_whole(
        site: SiteWithBrokenPages, site_data: SiteData, tmp_path: Path) -> None:
    """The two losses seen: a first page cut before its pagination (pages 2 on lost) and a
    whole page whose grid failed to render (a member saved with 0 ratings)."""
    users = list(site_data.users)
    cut_user, empty_user = users[1], users[4]
    assert len(site_data.entries(cut_user)) > 72 and site_data.entries(empty_user)
    site.broken = {f"/{cut_user}/films/": (cut_before_pagination, 2),
                   f"/{empty_user}/films/": (grid_left_out, 2),
                   "/members/popular/": (cut_before_pagination, 1)}
    data_dir = tmp_path / "data"
    assert build("new", site, data_dir) == 0
    assert dataset_triples(data_dir) == site_triples(site_data, set(users))
    assert statuses(data_dir) == {user: ["ok"] for user in users}
    asked = Counter(path for _, path, _ in site.request_log)
    assert asked[f"/{cut_user}/films/"] == asked[f"/{empty_user}/films/"] == 3


def test_a_page_that_stays_cut_fails_its_user_instead_of_saving_it_short(
        site: SiteWithBrokenPages, site_data: SiteData, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    users = list(site_data.users)
    victim = users[2]
    site.broken = {f"/{victim}/films/": (grid_left_out, None)}
    data_dir = tmp_path / "data"
    assert build("new", site, data_dir) == 0
    assert statuses(data_dir)[victim] == ["failed"]
    assert dataset_triples(data_dir) == site_triples(site_data, set(users) - {victim})
    captured = capsys.readouterr()
    assert f"skipped (failed): 1: {victim}" in captured.out
    pages = -(-len(site_data.entries(victim)) // 72)
    assert (f"WARNING: skipping {victim}: page cut short (page 1 of {pages} holds 0 films, not "
            f"a full page of 72): {site.base_url}/{victim}/films/") in captured.err

    site.broken = {}
    assert build("continue", site, data_dir, "--users", "0") == 0
    assert dataset_triples(data_dir) == site_triples(site_data, set(users))
    assert statuses(data_dir)[victim] == ["failed", "ok"]


def test_a_members_page_that_stays_cut_stops_new_before_anything_changes(
        site: SiteWithBrokenPages, existing_dataset: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(existing_dataset)
    capsys.readouterr()
    site.broken = {"/members/popular/": (cut_before_pagination, None)}
    assert build("new", site, existing_dataset) == EXIT_UNAVAILABLE
    assert first_error(capsys.readouterr()) == (
        f"ERROR: not started: page cut short (the document has no closing </html>): "
        f"{site.base_url}/members/popular/. Nothing was changed in {existing_dataset}")
    assert snapshot(existing_dataset) == before


def test_a_live_profile_is_read_from_whole_pages_only(
        site: SiteWithBrokenPages, site_data: SiteData, existing_dataset: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    outsider = list(site_data.users)[-1]
    run = [outsider, "--base-url", site.base_url, "--rate", "0", "--data-dir",
           str(existing_dataset), "-q", "--format", "csv"]
    site.broken = {f"/{outsider}/films/": (cut_before_pagination, 1)}
    assert recommend_main(run) == 0  # the cut page was read again
    before = snapshot(existing_dataset)
    capsys.readouterr()
    site.broken = {f"/{outsider}/films/": (cut_before_pagination, None)}
    with pytest.raises(SystemExit) as exited:
        cli.run(recommend_main, run)
    assert exited.value.code == EXIT_UNAVAILABLE
    assert first_error(capsys.readouterr()) == (
        f"ERROR: page cut short (the document has no closing </html>): "
        f"{site.base_url}/{outsider}/films/")
    assert snapshot(existing_dataset) == before


# --- 2. real film slugs ----------------------------------------------------------------

def test_films_whose_slugs_hold_underscores_are_scraped_and_imported(
        site: SiteWithBrokenPages, site_data: SiteData, tmp_path: Path) -> None:
    underscored = {"cry_wolf", "cats_the_mewvie"}
    assert underscored <= site_data.films.keys()
    data_dir = tmp_path / "data"
    assert build("new", site, data_dir) == 0
    films = {row["slug"] for row in read_dicts(data_dir / layout.FILM_MAPPINGS_FILE)}
    rated = {slug for _, slug, _ in site_data.rating_triples()}
    assert underscored & rated and underscored & rated <= films
    assert dataset_triples(data_dir) == site_triples(site_data, set(site_data.users))

    export = tmp_path / "ratings_export.csv"
    export.write_text("user_id,movie_id,rating_val\nann,cry_wolf,7\nann,jung_e,6\n"
                      "ann,..%2fetc,8\nbob,cats_the_mewvie,9\n", encoding="utf-8")
    imported = tmp_path / "imported"
    with pytest.raises(SystemExit) as exited:
        cli.run(build_main, ["import", str(export), "--output-dir", str(imported), "-q"])
    assert exited.value.code == 0
    assert dataset_triples(imported) == {("ann", "cry_wolf", 7), ("ann", "jung_e", 6),
                                         ("bob", "cats_the_mewvie", 9)}


def test_a_poster_whose_slug_is_a_path_trick_is_skipped_and_the_rest_kept(
        site: SiteWithBrokenPages, site_data: SiteData, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    users = list(site_data.users)
    victim = users[0]
    entries = site_data.entries(victim)
    last_page = f"/{victim}/films/page/{-(-len(entries) // 72)}/"
    trick = entries[-1].slug

    def poison(reply: Reply) -> Reply:
        return reply._replace(body=reply.body.replace(f'data-item-slug="{trick}"'.encode(),
                                                      b'data-item-slug="..%2f..%2fetc"'))
    site.broken = {last_page: (poison, None)}
    data_dir = tmp_path / "data"
    assert build("new", site, data_dir) == 0
    expected = site_triples(site_data, set(users)) - {
        (victim, trick, entries[-1].rating)}
    assert dataset_triples(data_dir) == expected
    assert "skipping a poster whose film slug is not valid: '..%2f..%2fetc'" in (
        capsys.readouterr().err)


# --- 3. one deadline per request -------------------------------------------------------

def slow_headers_site_process(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    site = subprocess.Popen(
        [sys.executable, "-m", "simulated_site", "--generate-users", "6", "--films", "60",
         "--rate-slow-headers", "1", "--header-byte-seconds", "0.2", *extra],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = site.stdout.readline()
    match = re.fullmatch(r"Simulated Letterboxd at (http://127\.0\.0\.1:\d+)\n", line)
    assert match, line
    return site, match.group(1)


def test_a_site_sending_its_headers_a_byte_at_a_time_cannot_hang_the_run(
        tmp_path: Path) -> None:
    """Every answer's status line and headers trickle, one byte every 0.2 s (a minute per
    page): each request ends at its 0.3 s deadline, the run ends with exit 4."""
    data_dir = tmp_path / "data"
    site, base_url = slow_headers_site_process(tmp_path)
    try:
        finished = subprocess.run(
            [sys.executable, "compile_training_data.py", "new", "--base-url", base_url,
             "--rate", "0", "--output-dir", str(data_dir), "-q"],
            cwd=PROJECT_ROOT, env={**os.environ, **FAST}, capture_output=True, text=True,
            timeout=HARD_TIMEOUT_SECONDS)
    finally:
        site.kill()
        site.wait(timeout=10)
    assert finished.returncode == EXIT_UNAVAILABLE
    errors = [line for line in finished.stderr.splitlines() if line.startswith("ERROR")]
    assert errors == [f"ERROR: not started: no complete answer within 0.3 s: "
                      f"{base_url}/members/popular/. Nothing was changed in {data_dir}"]
    assert not data_dir.exists() or not any(data_dir.iterdir())


# --- 4. offline, empty and binary pages ---------------------------------------------------

def test_offline_is_one_short_line_exit_4_and_no_retry(
        existing_dataset: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    lookups: list[str] = []

    def offline(host: str, *args: object, **kwargs: object) -> list:
        lookups.append(host)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    before = snapshot(existing_dataset)
    capsys.readouterr()
    monkeypatch.setattr(socket, "getaddrinfo", offline)
    monkeypatch.setenv("LETTERBOXD_BASE_URL", "https://letterboxd.invalid")
    with pytest.raises(SystemExit) as exited:
        cli.run(build_main, ["new", "--output-dir", str(existing_dataset), "-q"])
    assert exited.value.code == EXIT_UNAVAILABLE
    line = first_error(capsys.readouterr())
    assert line == ("ERROR: not started: cannot look up letterboxd.invalid: no network or no "
                    "DNS ([Errno -3] Temporary failure in name resolution): "
                    f"https://letterboxd.invalid/robots.txt. Nothing was changed in "
                    f"{existing_dataset}")
    assert lookups == ["letterboxd.invalid"]
    assert snapshot(existing_dataset) == before


def test_going_offline_mid_run_stops_at_once_and_marks_nobody_failed(
        site: SiteWithBrokenPages, site_data: SiteData, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The connection drops as the machine goes offline; reconnecting needs a lookup."""
    users = list(site_data.users)
    offline = threading.Event()
    lookup = socket.getaddrinfo

    def unless_offline(host: str, *args: object, **kwargs: object) -> list:
        if offline.is_set():
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return lookup(host, *args, **kwargs)

    def unplug(reply: Reply) -> Reply:
        offline.set()
        return reply._replace(status=RESET, body=b"", headers=(), fault="reset")

    monkeypatch.setattr(socket, "getaddrinfo", unless_offline)
    site.broken = {f"/{users[5]}/films/": (unplug, None)}
    data_dir = tmp_path / "data"
    assert build("new", site, data_dir, "--batch-size", "2") == EXIT_UNAVAILABLE
    line = first_error(capsys.readouterr())
    assert line.startswith("ERROR: stopped early: cannot look up 127.0.0.1: no network or no "
                           "DNS ([Errno -3] Temporary failure in name resolution): ")
    assert line.endswith(". The users finished before it are saved; try `continue` later")
    found = statuses(data_dir)
    saved = set(found)
    assert all(status == ["ok"] for status in found.values())  # nobody marked failed
    assert users[5] not in saved and saved == set(users[:len(saved)])
    assert dataset_triples(data_dir) == site_triples(site_data, saved)

    offline.clear()
    site.broken = {}
    assert build("continue", site, data_dir) == 0
    assert dataset_triples(data_dir) == site_triples(site_data, set(users))


@pytest.mark.parametrize("content, message", [
    (b"", "the page came back empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 40, "the page is binary data, not text"),
], ids=["empty", "binary"])
def test_an_empty_or_binary_members_page_is_exit_4_with_its_url(
        site: SiteWithBrokenPages, existing_dataset: Path, capsys: pytest.CaptureFixture[str],
        content: bytes, message: str) -> None:
    before = snapshot(existing_dataset)
    capsys.readouterr()
    site.broken = {"/members/popular/": (body(content), None)}
    assert build("new", site, existing_dataset) == EXIT_UNAVAILABLE
    assert first_error(capsys.readouterr()) == (
        f"ERROR: not started: {message}: {site.base_url}/members/popular/. Nothing was "
        f"changed in {existing_dataset}")
    assert snapshot(existing_dataset) == before


def test_the_members_list_cut_mid_run_keeps_the_users_finished(
        site: SiteWithBrokenPages, site_data: SiteData, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`continue` resumes after a members page that stayed cut: nothing saved short."""
    data_dir = tmp_path / "data"
    assert build("new", site, data_dir, "--users", "2") == 0
    site.broken = {"/members/popular/": (body(b"<html><body><table class='member-table'>"),
                                         None)}
    assert build("continue", site, data_dir, "--users", "5") == EXIT_UNAVAILABLE
    assert first_error(capsys.readouterr()).startswith(
        "ERROR: stopped early: page cut short (the document has no closing </html>): ")
    saved = {row["username"] for row in csv.DictReader(
        (data_dir / layout.USER_MAPPINGS_FILE).open(encoding="utf-8"))}
    assert dataset_triples(data_dir) == site_triples(site_data, saved)
