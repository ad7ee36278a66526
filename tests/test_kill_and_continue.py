"""kill -9 and Ctrl-C at random moments: `continue` always ends with the clean run's dataset.

The builder runs as a real subprocess against the simulated site (served from this
process). It is killed again and again, seeded-randomly: during start-up, while
scraping, in the middle of a batch commit and just after one. After every kill the
committed part of each file must be a byte prefix of what an uninterrupted run
writes; after the final `continue` the files must be the same bytes.
"""
from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from dataset import layout
from load_save_and_translate_data import load_ratings_dataset
from simulated_site import SiteData, SimulatedSite

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEED = 6
KILLS = 20
DATA_FILES = (layout.RATINGS_FILE, layout.USER_MAPPINGS_FILE, layout.FILM_MAPPINGS_FILE,
              layout.TRANSLATED_FILE, layout.UNRATED_FILE)
BACKUP_NAME = re.compile(r"raw_user_ratings_\d{8}T\d{6}Z_b(\d{6})\.csv")


@dataclass(frozen=True)
class CleanRun:
    data_dir: Path
    startup_seconds: float  # from spawning the builder to its first request
    total_seconds: float
    startup_requests: int  # robots.txt and the members list, before the first user's page
    requests_per_batch: float


def start_builder(mode: str, site: SimulatedSite, data_dir: Path,
                  *extra: str) -> subprocess.Popen[str]:
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("LETTERBOXD_")}
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "compile_training_data.py"), mode,
         "--base-url", site.base_url, "--rate", "0", "--batch-size", "3", "--users", "1000",
         "--workers", "3", "--output-dir", str(data_dir), "-q", *extra],
        cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def finish(process: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    return out, err


def read_state(data_dir: Path) -> dict | None:
    try:
        return json.loads((data_dir / layout.STATE_FILE).read_bytes())
    except FileNotFoundError:
        return None


def log_without_times(data: bytes) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    time_column = rows[0].index("last_scraped")
    return [row[:time_column] + row[time_column + 1:] for row in rows]


def stray_temp_files(data_dir: Path) -> list[Path]:
    return [path for folder in (data_dir, data_dir / layout.BACKUP_DIR) if folder.is_dir()
            for path in folder.iterdir() if path.name.startswith(".")]


@pytest.fixture(scope="module")
def site_data() -> SiteData:
    return SiteData.generate(seed=SEED, n_users=40, n_films=300)


@pytest.fixture(scope="module")
def site(site_data: SiteData) -> Iterator[SimulatedSite]:
    with SimulatedSite(site_data) as running:
        yield running


@pytest.fixture(scope="module")
def clean_run(site: SimulatedSite, tmp_path_factory: pytest.TempPathFactory) -> CleanRun:
    data_dir = tmp_path_factory.mktemp("clean") / "data"
    site.clear_log()
    started = time.monotonic()
    finish(start_builder("new", site, data_dir))
    total = time.monotonic() - started
    log = site.request_log
    startup = next(number for number, (_, path, _) in enumerate(log)
                   if not path.startswith(("/robots.txt", "/members/")))
    batches = read_state(data_dir)["batches"]
    return CleanRun(data_dir, log[0][0] - started, total, startup,
                    (len(log) - startup) / batches)


def assert_committed_part_is_a_prefix_of_the_clean_run(data_dir: Path, clean: CleanRun) -> bool:
    """What a killed run left is valid, readable, and could only grow into the clean dataset.

    Returns whether the run left appends it had not committed.
    """
    state = read_state(data_dir)
    if state is None:
        return False
    uncommitted = False
    for name in DATA_FILES:
        committed = state["committed_bytes"][name]
        content = (data_dir / name).read_bytes()
        uncommitted |= len(content) > committed
        assert content[:committed] == (clean.data_dir / name).read_bytes()[:committed], name
    committed_log = log_without_times(
        (data_dir / layout.USER_UPDATES_FILE).read_bytes()[
            :state["committed_bytes"][layout.USER_UPDATES_FILE]])
    clean_log = log_without_times((clean.data_dir / layout.USER_UPDATES_FILE).read_bytes())
    assert committed_log == clean_log[:len(committed_log)]
    # The read-only loader must cope with a torn tail the next `continue` will cut off.
    loaded = load_ratings_dataset(data_dir)
    committed_users = (data_dir / layout.USER_MAPPINGS_FILE).read_bytes()[
        :state["committed_bytes"][layout.USER_MAPPINGS_FILE]].count(b"\n") - 1
    assert loaded.usernames == load_ratings_dataset(clean.data_dir).usernames[:committed_users]
    return uncommitted


class Killer:
    """Chooses a moment to kill -9 a builder, spread over everything a run does."""

    MOMENTS = ("start-up", "scraping", "mid-commit", "after-commit")

    def __init__(self, rng: random.Random, clean: CleanRun, data_dir: Path,
                 site: SimulatedSite) -> None:
        self._rng = rng
        self._clean = clean
        self._data_dir = data_dir
        self._site = site
        self.moments: list[str] = []

    def kill(self, process: subprocess.Popen[str]) -> bool:
        """True if the process was killed, False if it finished first."""
        moment = self._rng.choice(self.MOMENTS)
        started = time.monotonic()
        if moment == "start-up":
            self._wait(process, lambda: False, self._rng.uniform(0, self._clean.startup_seconds))
        elif moment == "scraping":
            # Within the run's first batch, counted in requests rather than seconds: a
            # machine busier during the clean run than now must not let kills land so late
            # that the dataset is complete before every kind of kill has happened.
            requests = (self._site.request_count() + self._clean.startup_requests
                        + self._rng.randint(1, max(1, int(self._clean.requests_per_batch))))
            self._wait(process, lambda: self._site.request_count() >= requests,
                       self._clean.total_seconds)
        else:
            batches = (read_state(self._data_dir) or {}).get("batches", 0)
            if moment == "mid-commit":
                self._wait(process, self._commit_in_progress(), self._clean.total_seconds)
            else:
                self._wait(process, lambda: self._batches() > batches, self._clean.total_seconds)
                time.sleep(self._rng.uniform(0, 0.005))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        _, err = process.communicate(timeout=30)
        if process.returncode == 0:  # it finished before the signal
            return False
        assert process.returncode == -signal.SIGKILL, err
        self.moments.append(f"{moment}@{time.monotonic() - started:.3f}s")
        return True

    def _batches(self) -> int:
        return (read_state(self._data_dir) or {}).get("batches", 0)

    def _commit_in_progress(self) -> Callable[[], bool]:
        """Rows are appended (and fsynced) before the state file makes them count.

        Rows a previous kill left are ignored: the run cuts them off when it opens the dataset.
        """
        tail_cut = False

        def appended_but_not_committed() -> bool:
            nonlocal tail_cut
            state = read_state(self._data_dir)
            if state is None:
                return False
            path = self._data_dir / layout.USER_MAPPINGS_FILE
            grown = path.stat().st_size > state["committed_bytes"][layout.USER_MAPPINGS_FILE]
            tail_cut = tail_cut or not grown
            return grown and tail_cut

        return appended_but_not_committed

    @staticmethod
    def _wait(process: subprocess.Popen[str], condition: Callable[[], bool],
              timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None and not condition():
            time.sleep(0.0002)


def test_kill_minus_9_at_random_moments_then_continue_gives_the_clean_dataset(
        site: SimulatedSite, clean_run: CleanRun, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    killer = Killer(random.Random(SEED), clean_run, data_dir, site)
    deadline = time.monotonic() + 60
    runs = torn = 0
    while True:
        runs += 1
        assert runs <= 2 * KILLS and time.monotonic() < deadline, killer.moments
        mode = "continue" if read_state(data_dir) is not None else "new"
        process = start_builder(mode, site, data_dir)
        if len(killer.moments) < KILLS:
            if killer.kill(process):
                torn += assert_committed_part_is_a_prefix_of_the_clean_run(data_dir, clean_run)
            continue
        finish(process)
        break
    kinds = {moment.split("@")[0] for moment in killer.moments}
    assert kinds == set(Killer.MOMENTS), killer.moments
    assert torn >= 1, killer.moments  # some kills did land between appends and commit point

    for name in DATA_FILES:
        assert (data_dir / name).read_bytes() == (clean_run.data_dir / name).read_bytes(), name
    assert log_without_times((data_dir / layout.USER_UPDATES_FILE).read_bytes()) == \
        log_without_times((clean_run.data_dir / layout.USER_UPDATES_FILE).read_bytes())
    data = load_ratings_dataset(data_dir)
    pairs = list(zip(data.user_index.tolist(), data.film_index.tolist()))
    assert len(pairs) == len(set(pairs)) == len(site.data.rating_triples())

    state, clean_state = read_state(data_dir), read_state(clean_run.data_dir)
    assert state is not None and clean_state is not None
    assert {key: value for key, value in state.items() if key != "pending_backup"} == \
        {key: value for key, value in clean_state.items() if key != "pending_backup"}
    backups = sorted((data_dir / layout.BACKUP_DIR).iterdir())
    numbers = [int(BACKUP_NAME.fullmatch(path.name).group(1)) for path in backups]
    assert numbers == list(range(1, state["batches"] + 1))
    backed_up_rows = [line for path in backups for line in path.read_bytes().splitlines()[1:]]
    assert backed_up_rows == (data_dir / layout.RATINGS_FILE).read_bytes().splitlines()[1:]
    assert stray_temp_files(data_dir) == []


def test_ctrl_c_saves_the_users_in_hand_and_continue_completes_the_dataset(
        site: SimulatedSite, clean_run: CleanRun, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    site.clear_log()
    # A modest rate so the run is still busy when the signal comes.
    process = start_builder("new", site, data_dir, "--rate", "60")
    deadline = time.monotonic() + 20
    while (read_state(data_dir) or {}).get("batches", 0) < 1:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.001)
    interrupted_at = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert time.monotonic() - interrupted_at < 5
    assert "finishing the users in hand" in err
    assert "users added:" in out

    saved = load_ratings_dataset(data_dir).usernames
    users = list(site.data.users)
    assert 3 <= len(saved) < len(users) and saved == users[:len(saved)]
    requested = {path.split("/")[1]: arrived for arrived, path, _ in reversed(site.request_log)
                 if "/films/" in path}
    started_before_signal = {user for user, arrived in requested.items()
                             if arrived < interrupted_at}
    assert started_before_signal <= set(saved) <= set(requested)
    assert all(row == "ok" for row in (
        line.split(",")[3] for line in
        (data_dir / layout.USER_UPDATES_FILE).read_text().splitlines()[1:]))
    assert_committed_part_is_a_prefix_of_the_clean_run(data_dir, clean_run)

    finish(start_builder("continue", site, data_dir))
    for name in DATA_FILES:
        assert (data_dir / name).read_bytes() == (clean_run.data_dir / name).read_bytes(), name
    assert log_without_times((data_dir / layout.USER_UPDATES_FILE).read_bytes()) == \
        log_without_times((clean_run.data_dir / layout.USER_UPDATES_FILE).read_bytes())
    assert stray_temp_files(data_dir) == []
