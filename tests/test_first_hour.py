"""What a new user meets first: the bare builder command, help that lists only what
applies, a simulated site that names members to try, and progress bars on a terminal."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

import config
from compile_training_data import main as build_main
from dataset import layout
from load_save_and_translate_data import load_ratings_dataset
from recommend import main as recommend_main
from simulated_site import SiteData, SimulatedSite
from simulated_site.command import next_steps
from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def site_data() -> SiteData:
    return SiteData.generate(seed=5, n_users=40, n_films=200)


@pytest.fixture(scope="module")
def site(site_data: SiteData):
    with SimulatedSite(site_data) as running:
        yield running


@pytest.fixture
def site_settings(site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment a bare command reads: the simulated site, test mode, a dataset
    folder of the test's own. Returns that folder."""
    data_dir = tmp_path / "data"
    for name, value in {"LETTERBOXD_BASE_URL": site.base_url, "LETTERBOXD_RATE": "0",
                        "LETTERBOXD_TEST_MODE": "1", "LETTERBOXD_OUTPUT_DIR": str(data_dir)
                        }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LETTERBOXD_MODE", raising=False)
    return data_dir


# --- the bare command -------------------------------------------------------------------

def test_the_bare_command_runs_continue_which_starts_a_dataset_when_there_is_none(
        site_settings: Path, site_data: SiteData, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MODE", "continue")
    assert build_main([]) == 0
    first = capsys.readouterr().err
    assert "mode continue (MODE in config.py)" in first and "starting one" in first
    assert load_ratings_dataset(site_settings).n_users == 10  # test mode's 10 users
    assert build_main([]) == 0
    second = capsys.readouterr().err
    assert "extending the dataset" in second and "`compile_training_data.py new`" in second
    data = load_ratings_dataset(site_settings)
    assert data.usernames == list(site_data.users)[:20]  # ten more popular members
    assert not (site_settings / layout.ARCHIVE_DIR).exists()


def test_the_bare_command_runs_new_when_mode_is_new(
        site_settings: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MODE", "continue")
    assert build_main(["--users", "3", "-q"]) == 0  # flags alone: still the bare command
    before = (site_settings / layout.RATINGS_FILE).read_bytes()
    monkeypatch.setattr(config, "MODE", "new")
    capsys.readouterr()
    assert build_main(["--users", "2"]) == 0
    err = capsys.readouterr().err
    assert "mode new (MODE in config.py)" in err and "`compile_training_data.py continue`" in err
    archived = list((site_settings / layout.ARCHIVE_DIR).iterdir())
    assert [(path / layout.RATINGS_FILE).read_bytes() for path in archived] == [before]
    assert load_ratings_dataset(site_settings).n_users == 2


def test_the_mode_can_come_from_the_environment_and_a_bad_one_is_one_line(
        site_settings: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETTERBOXD_MODE", "New")
    assert build_main(["--users", "1", "-q"]) == 0
    assert load_ratings_dataset(site_settings).n_users == 1
    monkeypatch.setenv("LETTERBOXD_MODE", "import")  # needs a file: not a mode to default to
    with pytest.raises(Exception, match="must be new or continue") as caught:
        build_main([])
    assert getattr(caught.value, "exit_code", None) == 2


def test_a_named_continue_still_needs_a_dataset(site_settings: Path) -> None:
    with pytest.raises(Exception, match="no dataset to continue"):
        build_main(["continue", "-q"])


# --- help that lists only what applies ------------------------------------------------------

def help_flags(main, argv: list[str], capsys: pytest.CaptureFixture) -> set[str]:
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--help"])
    assert stopped.value.code == 0
    return set(re.findall(r"(?<![\w-])--?[a-z][a-z-]*", capsys.readouterr().out))


@pytest.mark.parametrize("main, argv, ignored", [
    (build_main, ["import"], {"--base-url", "--rate", "--workers", "--users", "--batch-size",
                              "--refresh-older-than"}),
    (build_main, ["new"], {"--refresh-older-than", "--movies", "--people"}),
    (build_main, ["continue"], {"--movies", "--people"}),
    (recommend_main, [], {"--workers", "--users", "--batch-size", "--output-dir"}),
])
def test_each_help_lists_no_flag_its_command_ignores(main, argv: list[str], ignored: set[str],
                                                     capsys: pytest.CaptureFixture) -> None:
    flags = help_flags(main, argv, capsys)
    assert "--test-mode" in flags and "--quiet" in flags  # the help was read
    assert flags & ignored == set()


def test_the_builders_help_says_what_the_bare_command_does(
        capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps to the terminal's width
    with pytest.raises(SystemExit):
        build_main(["--help"])
    out = capsys.readouterr().out
    assert "With no subcommand it runs the mode set by MODE in config.py" in out
    assert max(len(line) for line in out.splitlines()) <= 80


# --- the simulated site names members to try ---------------------------------------------

def test_the_simulated_site_names_members_a_dataset_holds_and_one_read_live(
        site_data: SiteData) -> None:
    text = next_steps(site_data, "http://127.0.0.1:8000")
    popular, live = re.search(r"Members to try: (.+?) \(", text), re.search(r"and (\S+) \(", text)
    names = popular.group(1).split(", ")
    assert names == list(site_data.users)[:3]  # the first any dataset built from it holds
    assert live.group(1) in site_data.users and live.group(1) not in list(site_data.users)[:20]
    assert f"python recommend.py {names[0]} --test-mode --base-url http://127.0.0.1:8000" in text
    assert max(len(line) for line in text.splitlines()) <= 80


# --- progress bars: on a terminal only ------------------------------------------------------

def run_command(command: list[str], stderr_on_terminal: bool) -> str:
    """A command as a new user runs it, stderr on a pseudo-terminal or a pipe; its stderr."""
    command = [sys.executable, *command]
    if not stderr_on_terminal:
        done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stderr
    near, far = pty.openpty()
    fcntl.ioctl(far, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    chunks: list[bytes] = []

    def read_until_closed() -> None:
        while True:
            try:
                chunk = os.read(near, 65536)
            except OSError:  # EIO once the child's end is closed
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read_until_closed)
    reader.start()
    try:
        process = subprocess.run(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                                 stderr=far, timeout=120)
    finally:
        os.close(far)
        reader.join(timeout=10)
        os.close(near)
    assert process.returncode == 0, b"".join(chunks).decode()
    return b"".join(chunks).decode("utf-8", "replace")


def run_builder(site, data_dir: Path, stderr_on_terminal: bool, *extra: str) -> str:
    return run_command(["compile_training_data.py", "new", "--base-url", site.base_url,
                        "--rate", "0", "--users", "12", "--output-dir", str(data_dir), *extra],
                       stderr_on_terminal)


def test_a_bar_with_a_total_shows_on_a_terminal(site, tmp_path: Path) -> None:
    err = run_builder(site, tmp_path / "data", True)
    assert re.search(r"scraping users: +0%\|.*\| 0/12 \[", err)
    assert re.search(r"scraping users: 100%\|.*\| 12/12 \[\d\d:\d\d<00:00", err)
    assert "INFO: saved a batch of" in err  # log lines still reach the terminal


def test_no_bar_into_a_pipe_nor_with_quiet(site, tmp_path: Path) -> None:
    piped = run_builder(site, tmp_path / "piped", False)
    assert "INFO: saved a batch of" in piped
    assert "scraping users" not in piped and "\r" not in piped
    quiet = run_builder(site, tmp_path / "quiet", True, "-q")
    assert "scraping users" not in quiet and "INFO" not in quiet


def test_a_first_fit_and_a_live_profile_show_bars_on_a_terminal(
        site, site_data: SiteData, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    run_builder(site, data_dir, False)
    outsider = list(site_data.users)[-5]  # not among the 12 most popular
    err = run_command(["recommend.py", outsider, "--base-url", site.base_url, "--rate", "0",
                       "--data-dir", str(data_dir), "-n", "5"], True)
    assert re.search(r"no model yet: fitting one \(about \d+ s for [\d,]+ ratings\)", err)
    assert re.search(r"fitting the model: +\d+%\|", err)
    assert re.search(rf"reading the films of {outsider}: +\d+%\|.*\| \d+/\d+ ", err)
    piped = run_command(["recommend.py", outsider, "--base-url", site.base_url, "--rate", "0",
                         "--data-dir", str(data_dir), "-n", "5"], False)
    assert "%|" not in piped and "reading their profile" in piped


# --- the README's offline commands ---------------------------------------------------------

def test_the_shipped_examples_import_and_recommend_with_nothing_downloaded(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    examples = PROJECT_ROOT / "examples"
    data_dir = tmp_path / "data"
    assert build_main(["import", str(examples / "published"), "--output-dir", str(data_dir),
                       "-q"]) == 0
    capsys.readouterr()
    assert recommend_main(["--export", str(examples / "letterboxd-export-example.zip"),
                           "--data-dir", str(data_dir), "-n", "20", "-q"]) == 0
    header, *rows, footer = capsys.readouterr().out.strip("\n").splitlines()
    assert header.split()[:2] == ["#", "Film"] and len(rows) == 20
    assert "your average" in footer
