"""What the toolkit writes: only regular files, a full disk as one line, a closed pipe quietly.

Every refusal is checked end to end where a person would meet it: the exit code, the
one line on stderr, and every file byte-identical afterwards.
"""
from __future__ import annotations

import errno
import os
import resource
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

import cli
import safe_files
from compile_training_data import main as build_main
from dataset import layout
from errors import EXIT_BAD_INPUT, EXIT_DISK_FULL, EXIT_PIPE_CLOSED, UnusableFileError
from load_save_and_translate_data import DatasetStore, load_ratings_dataset
from simulated_site import SiteData, SimulatedSite
from tests.helpers import snapshot, triples

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A subprocess that hangs on a FIFO fails the test instead of the suite.
HANG_LIMIT = 60
DISK_FULL_TAIL = "; nothing was lost, free space and run `continue`"


def command(script: str, *args: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PROJECT_ROOT / script), *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=HANG_LIMIT, **options)


def write_ratings_csv(path: Path, users: int = 12, films: int = 12) -> Path:
    """Each user rates two films in three, so that every one has films left to recommend."""
    path.write_text("user_id,movie_id,rating_val\n" + "".join(
        f"u{user},film-{index},{1 + (user + index) % 10}\n"
        for user in range(users) for index in range(films) if (user + index) % 3))
    return path


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    """A small imported dataset (no model yet)."""
    data_dir = tmp_path / "data"
    assert build_main(["import", str(write_ratings_csv(tmp_path / "ratings.csv")),
                       "--output-dir", str(data_dir), "-q"]) == 0
    return data_dir


@pytest.fixture
def site() -> Iterator[SimulatedSite]:
    with SimulatedSite(SiteData.generate(seed=5, n_users=16, n_films=150)) as running:
        yield running


# --- 4. outputs are regular files, never written through or over anything else -----------

def special_file(kind: str, path: Path, victim: Path) -> Path:
    """Make `path` a file of `kind`; `victim` is what a symlink points to."""
    if kind == "symlink":
        path.symlink_to(victim)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:  # a character device like /dev/null (root may make one; others skip)
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("this account may not make device nodes")
    return path


KINDS = {"symlink": "a symbolic link", "fifo": "a FIFO", "folder": "a folder",
         "device": "a device"}


@pytest.mark.parametrize("kind", KINDS)
def test_the_letterboxd_list_is_never_written_over_a_special_file(
        kind: str, imported: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    target = special_file(kind, tmp_path / "picks.csv", victim)
    before = snapshot(imported)
    finished = command("recommend.py", "u1", "--data-dir", str(imported),
                       "--letterboxd-list", str(target))
    assert finished.returncode == EXIT_BAD_INPUT
    assert finished.stderr.splitlines() == [
        f"ERROR: {target} is {KINDS[kind]}, not a regular file: refusing to write over it"]
    assert victim.read_text() == "keep me\n"
    assert KINDS[kind] == {stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a FIFO",
                           stat.S_IFDIR: "a folder", stat.S_IFCHR: "a device"}[
                               stat.S_IFMT(os.lstat(target).st_mode)]
    assert snapshot(imported) == before  # refused before any model was fitted or cached
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        ["data", "ratings.csv", "victim.txt", "picks.csv"])  # no temporary file left


def test_a_symlink_put_in_place_during_a_replacement_is_not_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race: the target turns into a symlink after the first check, while the new
    content is being written. The check just before the rename sees it."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    target = tmp_path / "picks.csv"
    original_fsync = os.fsync

    def fsync_then_swap(fd: int) -> None:
        original_fsync(fd)
        if not target.is_symlink():
            target.symlink_to(victim)

    monkeypatch.setattr(os, "fsync", fsync_then_swap)
    with pytest.raises(UnusableFileError, match="is a symbolic link"):
        safe_files.write_atomically(target, b"new\n")
    assert victim.read_text() == "keep me\n" and target.is_symlink()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["picks.csv", "victim.txt"]


@pytest.mark.parametrize("write", [
    lambda path: safe_files.write_durably(path, b"x\n"),
    lambda path: safe_files.append_durably(path, b"x\n"),
    lambda path: safe_files.truncate_to(path, 0),
    lambda path: safe_files.write_atomically(path, b"x\n"),
], ids=["write_durably", "append_durably", "truncate_to", "write_atomically"])
@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_every_writer_refuses_a_symlink_or_a_fifo_without_waiting(
        write: Callable[[Path], None], kind: str, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    target = special_file(kind, tmp_path / "file.csv", victim)
    with pytest.raises(UnusableFileError, match=f"is {KINDS[kind]}"):
        write(target)  # a FIFO opened for writing would wait for a reader
    assert victim.read_text() == "keep me\n"


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_a_dataset_file_that_is_not_a_regular_file_stops_the_builder(
        kind: str, imported: Path, tmp_path: Path) -> None:
    ratings = imported / layout.RATINGS_FILE
    moved = tmp_path / "elsewhere.csv"
    ratings.rename(moved)
    special_file(kind, ratings, moved)
    before = snapshot(imported)
    moved_before = moved.read_bytes()
    finished = command("compile_training_data.py", "continue", "--output-dir", str(imported),
                       "--base-url", "http://127.0.0.1:9", "--rate", "0", "--users", "1")
    assert finished.returncode == EXIT_BAD_INPUT
    assert finished.stderr.splitlines() == [
        f"ERROR: {ratings} is {KINDS[kind]}, where the dataset keeps a file; move it away"]
    assert snapshot(imported) == before and moved.read_bytes() == moved_before


# --- 9. a full disk --------------------------------------------------------------------

def file_size_limit(limit: int) -> Callable[[], None]:
    """For a child process: files may not grow past `limit` bytes. Writing past it fails
    with EFBIG (SIGXFSZ ignored), as a full disk fails with ENOSPC."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_an_import_that_fills_the_disk_keeps_the_previous_dataset(
        imported: Path, tmp_path: Path) -> None:
    bigger = write_ratings_csv(tmp_path / "bigger.csv", users=300, films=40)
    before = snapshot(imported)
    largest = max(len(content) for content in before.values())
    finished = command("compile_training_data.py", "import", str(bigger), "--output-dir",
                       str(imported), preexec_fn=file_size_limit(largest + 100))
    assert finished.returncode == EXIT_DISK_FULL, finished.stderr
    lines = finished.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"ERROR: disk full while writing {imported / '.incoming'}/")
    assert lines[0].endswith(DISK_FULL_TAIL)
    assert snapshot(imported) == before and not (imported / ".incoming").exists()


def test_a_batch_that_fills_the_disk_is_given_back_and_continue_finishes_it(
        site: SimulatedSite, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    args = ["--output-dir", str(data_dir), "--base-url", site.base_url, "--rate", "0", "-q"]
    assert build_main(["new", "--users", "3", *args]) == 0
    before = snapshot(data_dir)
    largest = max(len(content) for content in before.values())
    finished = command("compile_training_data.py", "continue", "--users", "20", *args,
                       preexec_fn=file_size_limit(largest + 200))
    assert finished.returncode == EXIT_DISK_FULL, finished.stderr
    lines = finished.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: disk full while writing "), lines
    assert lines[0].endswith(DISK_FULL_TAIL)
    assert snapshot(data_dir) == before  # the uncommitted appends were cut again
    assert build_main(["continue", "--users", "20", *args]) == 0
    assert triples(load_ratings_dataset(data_dir)) == site.data.rating_triples()


def test_no_space_at_an_fsync_is_the_same_one_line(
        imported: Path, site: SimulatedSite, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    """ENOSPC as a network filesystem reports it: at fsync, after the writes went through."""
    DatasetStore.open(imported)  # any recovery done before the snapshot
    before = snapshot(imported)

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli.run(build_main, ["continue", "--output-dir", str(imported), "--base-url",
                             site.base_url, "--rate", "0", "--users", "2", "-q"])
    assert exited.value.code == EXIT_DISK_FULL
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: disk full while writing "), lines
    assert lines[0].endswith(DISK_FULL_TAIL)
    monkeypatch.undo()
    assert snapshot(imported) == before


def test_the_disk_full_exit_code_is_documented() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert f"| {EXIT_DISK_FULL} | the disk" in readme
    assert f"  {EXIT_DISK_FULL}    the disk" in cli.EXIT_CODES_HELP
    assert EXIT_DISK_FULL not in (0, 1, 2, 3, 4, 130, EXIT_PIPE_CLOSED)


# --- 10. a reader that stops reading -----------------------------------------------------

def run_with_closed_stdout(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run with stdout a pipe whose reader has already gone, as `| head -1` leaves it."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, str(PROJECT_ROOT / script), *args],
                              cwd=PROJECT_ROOT, stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=HANG_LIMIT)
    finally:
        os.close(write_end)


def test_recommend_into_a_closed_pipe_ends_quietly(imported: Path, tmp_path: Path) -> None:
    listed = tmp_path / "picks.csv"
    finished = run_with_closed_stdout("recommend.py", "u1", "--data-dir", str(imported), "-q",
                                      "--letterboxd-list", str(listed))
    assert finished.returncode == EXIT_PIPE_CLOSED
    assert finished.stderr == ""
    assert listed.read_text().startswith("LetterboxdURI,Title,Year,Review\n")  # written first


def test_recommend_piped_into_head_prints_one_line_and_no_traceback(imported: Path) -> None:
    command_line = (f"{sys.executable} recommend.py u1 --data-dir {imported} -q -n 200 "
                    "--format csv | head -1")
    finished = subprocess.run(["bash", "-c", command_line], cwd=PROJECT_ROOT,
                              capture_output=True, text=True, timeout=HANG_LIMIT)
    assert finished.returncode == 0
    assert len(finished.stdout.splitlines()) == 1
    assert finished.stderr == ""


def test_the_builder_into_a_closed_pipe_ends_quietly_with_its_work_saved(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    finished = run_with_closed_stdout("compile_training_data.py", "import",
                                      str(write_ratings_csv(tmp_path / "ratings.csv")),
                                      "--output-dir", str(data_dir), "-q")
    assert finished.returncode == EXIT_PIPE_CLOSED
    assert finished.stderr == ""
    assert len(load_ratings_dataset(data_dir).rating) == 12 * 8  # two in three of 12 x 12
