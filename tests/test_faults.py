"""The builder against a misbehaving site: nothing is lost, nothing is silently dropped.

Every fault the simulated site can inject is switched on at once; the builder must
still finish, hold exactly the site's data for every user that can be scraped and
report the rest. Timeouts and backoff come from LETTERBOXD_* variables so the
retries take milliseconds, not minutes.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Iterator

import pytest

import cli
from dataset import layout
from compile_training_data import main
from errors import EXIT_BLOCKED, EXIT_UNAVAILABLE
from load_save_and_translate_data import load_ratings_dataset
from simulated_site import MEMBERS_PER_PAGE, FaultConfig, Reply, SiteData, SimulatedSite
from simulated_site.pages import challenge_page
from tests.conftest import PROJECT_ROOT

RETRIES = 10
WORKERS = 3
RETRY_AFTER = 1
# Quick retries; a request deadline well below the site's slow answers and slow headers.
FAST_RETRIES = {"LETTERBOXD_RETRIES": str(RETRIES), "LETTERBOXD_TIMEOUT": "0.3",
                "LETTERBOXD_CONNECT_TIMEOUT": "1", "LETTERBOXD_BACKOFF_INITIAL": "0.01",
                "LETTERBOXD_BACKOFF_MAX": "0.05"}
# A run that has not ended by then is hung: the test fails instead of waiting for it.
HARD_TIMEOUT_SECONDS = 120


def dataset_triples(data_dir: Path) -> set[tuple[str, str, int]]:
    data = load_ratings_dataset(data_dir)
    slugs = data.films["slug"].to_numpy()
    return {(data.usernames[u], slugs[f], int(r))
            for u, f, r in zip(data.user_index, data.film_index, data.rating)}


def site_triples(site_data: SiteData, users: set[str]) -> set[tuple[str, str, int]]:
    return {triple for triple in site_data.rating_triples() if triple[0] in users}


def update_log(data_dir: Path) -> list[dict[str, str]]:
    with open(data_dir / layout.USER_UPDATES_FILE, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def statuses_by_user(data_dir: Path) -> dict[str, list[str]]:
    statuses: dict[str, list[str]] = defaultdict(list)
    for row in update_log(data_dir):
        statuses[row["username"]].append(row["status"])
    return dict(statuses)


def build(mode: str, site: SimulatedSite, data_dir: Path, *extra: str) -> int:
    return main([mode, "--base-url", site.base_url, "--rate", "0", "--output-dir", str(data_dir),
                 "--workers", str(WORKERS), "-q", *extra])


def build_in_a_process(site: SimulatedSite, data_dir: Path, *extra: str
                       ) -> subprocess.CompletedProcess[str]:
    """`new` as its own process, killed (and the test failed) if it hangs."""
    command = [sys.executable, "compile_training_data.py", "new", "--base-url", site.base_url,
               "--rate", "0", "--output-dir", str(data_dir), "--workers", str(WORKERS), "-q",
               *extra]
    return subprocess.run(command, cwd=PROJECT_ROOT, env={**os.environ, **FAST_RETRIES},
                          capture_output=True, text=True, timeout=HARD_TIMEOUT_SECONDS)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAST_RETRIES.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def site_data() -> SiteData:
    return SiteData.generate(seed=11, n_users=24, n_films=200)


class SiteWithOutage(SimulatedSite):
    """Answers 503 under the path prefixes in `down` (an outage that outlasts every retry)
    and Cloudflare's challenge under those in `challenged`."""

    def __init__(self, data: SiteData, faults: FaultConfig | None = None) -> None:
        super().__init__(data, faults)
        self.down: set[str] = set()
        self.challenged: set[str] = set()

    def reply(self, target: str) -> Reply:
        """The real answer, replaced (the request log keeps the real status)."""
        reply = super().reply(target)
        if any(target.startswith(prefix) for prefix in self.challenged):
            return reply._replace(status=403, body=challenge_page("0-LHR").encode(),
                                  headers=reply.headers + (("cf-mitigated", "challenge"),),
                                  fault="challenge")
        if any(target.startswith(prefix) for prefix in self.down):
            return reply._replace(status=503, fault="5xx")
        return reply


@pytest.fixture
def outage_site() -> Iterator[SiteWithOutage]:
    with SiteWithOutage(SiteData.generate(seed=5, n_users=40, n_films=150,
                                          max_watched=60)) as site:
        yield site


EVERY_FAULT = {"429", "5xx", "reset", "truncated", "cut_page", "slow", "slow_headers"}


# Seeds for which every kind of fault is drawn at least once (fates are a pure function
# of the seed, the path and its attempt, so a seed's faults do not depend on timing).
@pytest.mark.parametrize("seed", [1, 3, 7])
def test_every_fault_at_once_still_yields_the_sites_data_and_never_hangs(
        site_data: SiteData, tmp_path: Path, seed: int) -> None:
    users = list(site_data.users)
    vanished, private = users[3], users[10]
    faults = FaultConfig(seed=seed, rate_429=0.04, retry_after=RETRY_AFTER, rate_5xx=0.05,
                         rate_reset=0.04, rate_truncated=0.05, rate_cut_page=0.08,
                         rate_slow=0.06, slow_seconds=1.0, rate_slow_headers=0.05,
                         header_byte_seconds=0.05, vanished_users=frozenset({vanished}),
                         private_users=frozenset({private}))
    data_dir = tmp_path / "data"
    with SimulatedSite(site_data, faults) as site:
        finished = build_in_a_process(site, data_dir, "--users", "1000", "--batch-size", "4")
        injected = site.fault_counts
        log = site.request_log
    assert finished.returncode == 0, finished.stderr
    assert EVERY_FAULT <= injected.keys(), injected

    scrapable = set(users) - {vanished, private}
    assert dataset_triples(data_dir) == site_triples(site_data, scrapable)
    data = load_ratings_dataset(data_dir)
    assert data.usernames == users  # the skipped ones keep their place and id
    unrated = {(data.usernames[u], data.films["slug"].iloc[f])
               for u, f in zip(data.unrated_user, data.unrated_film)}
    assert unrated == {(user, entry.slug) for user in scrapable
                       for entry in site_data.entries(user) if entry.rating is None}
    statuses = statuses_by_user(data_dir)
    assert statuses == {user: ["not_found" if user == vanished else
                               "private" if user == private else "ok"] for user in users}

    out = finished.stdout
    assert f"skipped (not found): 1: {vanished}" in out
    assert f"skipped (private): 1: {private}" in out
    assert "failed" not in out

    # Retry-After was honoured: nothing asked for a rate-limited path again too soon.
    by_path: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for arrived, path, status in log:
        by_path[path].append((arrived, status))
    waits = [later[0] - earlier[0] for answers in by_path.values()
             for earlier, later in zip(answers, answers[1:]) if earlier[1] == 429]
    assert waits and min(waits) >= RETRY_AFTER - 0.05


def test_a_challenge_mid_run_stops_at_once_saves_what_is_done_and_says_why(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """One challenged page is enough: no further page is asked for, even ones that would work.

    A rate limit keeps the three workers roughly in step, so when the challenge comes
    an earlier user still has pages to go; asking for them would be the crawl going on.
    How many users were finished by then depends on thread timing, so the test checks
    that those saved are whole and in order, not how many there are.
    """
    site_data = SiteData.generate(seed=1, n_users=12, n_films=700, min_watched=200,
                                  max_watched=700)
    users = list(site_data.users)
    data_dir = tmp_path / "data"
    with SiteWithOutage(site_data) as site:
        challenged = f"/{users[4]}/films/page/2/"
        site.challenged = {challenged}
        assert build("new", site, data_dir, "--users", "1000", "--batch-size", "2",
                     "--rate", "150") == EXIT_BLOCKED
        paths = [path for _, path, _ in site.request_log]
        # Only requests already past the rate limiter when the challenge came may follow it.
        assert len(paths) - paths.index(challenged) - 1 <= WORKERS - 1

        saved = load_ratings_dataset(data_dir).usernames
        assert saved == users[:len(saved)] and users[4] not in saved
        assert dataset_triples(data_dir) == site_triples(site_data, set(saved))
        assert all(status == ["ok"] for status in statuses_by_user(data_dir).values())
        captured = capsys.readouterr()
        assert f"users added: {len(saved)}" in captured.out
        assert "Cloudflare challenge" in captured.err and "Terms" in captured.err
        assert "does not get around" in captured.err

        # Once the site lets us in again, `continue` completes the dataset.
        site.challenged.clear()
        assert build("continue", site, data_dir, "--users", "1000") == 0
    assert load_ratings_dataset(data_dir).usernames == users
    assert dataset_triples(data_dir) == site_triples(site_data, set(users))


def test_users_whose_retries_ran_out_are_marked_failed_and_retried_by_continue(
        outage_site: SiteWithOutage, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    site_data = outage_site.data
    users = list(site_data.users)
    assert len(users) > 30  # two members pages: one failed user on each
    down = {users[2], users[34]}
    outage_site.down = {f"/{user}/" for user in down}
    data_dir = tmp_path / "data"
    assert build("new", outage_site, data_dir, "--users", "1000", "--batch-size", "4") == 0
    assert capsys.readouterr().out.count("skipped (failed): 2: ") == 1
    statuses = statuses_by_user(data_dir)
    assert {user: statuses[user] for user in down} == {user: ["failed"] for user in down}
    for user in down:
        assert outage_site.request_count(f"/{user}/films/") == RETRIES
    assert dataset_triples(data_dir) == site_triples(site_data, set(users) - down)

    outage_site.down.clear()
    outage_site.clear_log()
    assert build("continue", outage_site, data_dir, "--users", "5") == 0
    assert dataset_triples(data_dir) == site_triples(site_data, set(users))
    statuses = statuses_by_user(data_dir)
    assert {user: statuses[user] for user in down} == {user: ["failed", "ok"] for user in down}
    assert all(statuses[user] == ["ok"] for user in set(users) - down)
    scraped_again = {path.split("/")[1] for _, path, _ in outage_site.request_log
                     if path.split("/")[2:3] == ["films"]}
    assert scraped_again == down  # users already saved are not fetched again


def test_a_members_page_that_stays_down_ends_the_run_but_keeps_the_finished_users(
        outage_site: SiteWithOutage, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    site_data = outage_site.data
    users = list(site_data.users)
    outage_site.down = {"/members/popular/page/2/"}
    data_dir = tmp_path / "data"
    with pytest.raises(SystemExit) as exited:
        cli.run(main, ["new", "--base-url", outage_site.base_url, "--rate", "0",
                       "--output-dir", str(data_dir), "--users", "1000", "--batch-size", "4",
                       "-q"])
    assert exited.value.code == EXIT_UNAVAILABLE
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR")]
    assert errors == [f"ERROR: stopped early: server error (HTTP 503): "
                      f"{outage_site.base_url}/members/popular/page/2/. The users finished "
                      f"before it are saved; try `continue` later"]
    first_page = users[:MEMBERS_PER_PAGE]
    assert len(first_page) % 4  # a part batch was in hand when the listing failed
    assert load_ratings_dataset(data_dir).usernames == first_page
    assert dataset_triples(data_dir) == site_triples(site_data, set(first_page))

    outage_site.down.clear()
    assert build("continue", outage_site, data_dir, "--users", "1000") == 0
    assert dataset_triples(data_dir) == site_triples(site_data, set(users))
