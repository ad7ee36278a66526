"""Progress bars: drawn on a terminal with a total, a percentage and the time left;
never drawn into a pipe or a log, nor with -q."""
from __future__ import annotations

import fcntl
import logging
import os
import pty
import struct
import termios
from contextlib import redirect_stderr

import pytest

import progress


class _Terminal:
    """A pseudo-terminal's far end as a file: isatty() is true, and what is written can be
    read back from the near end."""

    def __init__(self) -> None:
        self.near, far = pty.openpty()
        # 24 rows of 80 columns: a new pseudo-terminal has no size, and a bar no room.
        fcntl.ioctl(far, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.file = os.fdopen(far, "w", buffering=1, encoding="utf-8")

    def text(self) -> str:
        self.file.flush()
        chunks = []
        os.set_blocking(self.near, False)
        try:
            while True:
                chunks.append(os.read(self.near, 65536))
        except BlockingIOError:
            pass
        return b"".join(chunks).decode("utf-8", "replace")

    def close(self) -> None:
        self.file.close()
        os.close(self.near)


@pytest.fixture
def terminal():
    """A pseudo-terminal; a test sends stderr to it inside its body (pytest's capture
    replaces sys.stderr again after the fixtures have run)."""
    opened = _Terminal()
    yield opened
    opened.close()


@pytest.fixture
def info_shown():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    yield
    root.setLevel(level)


def test_a_counting_bar_on_a_terminal_shows_total_percentage_and_time_left(
        terminal, info_shown) -> None:
    with redirect_stderr(terminal.file), progress.progress_bar(8, "users", unit="user") as bar:
        for _ in range(8):
            bar.update(1)
    text = terminal.text()
    assert "users: 100%" in text and "8/8" in text and "<00:00" in text


def test_a_share_bar_follows_stages_and_never_goes_back(terminal, info_shown) -> None:
    with redirect_stderr(terminal.file), progress.ShareBar("fitting", leave=True) as bar:
        bar("first stage", 0.25)
        bar("stars", 0.1)  # late report of an earlier share: ignored
        bar("stars", 0.6)
        part = progress.share_of(bar, 0.6, 1.0)
        part("second stage", 1.0)
    text = terminal.text()
    assert "fitting: 100%" in text and "second stage" in text
    # The late report of an earlier share drew no frame below the share already shown.
    shown = [int(frame.split("%")[0][-3:]) for frame in text.split("fitting:")[1:]]
    assert shown == sorted(shown)


def test_no_bar_without_a_terminal_or_with_warnings_only(capsys, info_shown) -> None:
    assert not progress.bars_shown()  # pytest's captured stderr is no terminal
    with progress.progress_bar(3, "users") as bar:
        bar.update(3)
    assert capsys.readouterr().err == ""


def test_quiet_hides_bars_even_on_a_terminal(terminal) -> None:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)
    try:
        with redirect_stderr(terminal.file):
            assert not progress.bars_shown()
            with progress.progress_bar(3, "users") as bar:
                bar.update(3)
    finally:
        root.setLevel(level)
    assert terminal.text() == ""


def test_bars_report_to_a_listener_in_their_own_thread_only(capsys) -> None:
    """The web page follows work through the same bars, drawn or not."""
    import threading

    heard: list[tuple[str, float | None]] = []
    elsewhere = threading.Event()

    def other_thread() -> None:
        with progress.ShareBar("someone else's fit") as other:
            other("stage", 0.5)
        elsewhere.set()

    with progress.progress_reported_to(lambda stage, share: heard.append((stage, share))):
        pages = progress.progress_bar(None, "reading pages", unit="page")
        pages.total, pages.n = 4, 1
        pages.refresh()
        pages.update(2)
        pages.close()
        with progress.ShareBar("fitting the model") as bar:
            bar("ranking", 0.25)
            bar("stars", 1.0)
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    progress.progress_bar(3, "after").update(1)
    assert elsewhere.is_set()
    assert heard == [("reading pages", None), ("reading pages", 0.25), ("reading pages", 0.75),
                     ("fitting the model: ranking", 0.25), ("fitting the model: stars", 1.0)]
    assert capsys.readouterr().err == ""  # no terminal: nothing drawn


def test_a_first_model_fit_reports_its_stages(tmp_path) -> None:
    from recommender.cache import load_or_fit
    from tests.web_support import build_dataset

    data_dir = build_dataset(tmp_path)
    heard: list[tuple[str, float | None]] = []
    with progress.progress_reported_to(lambda stage, share: heard.append((stage, share))):
        load_or_fit(data_dir)
    assert len({stage for stage, _ in heard}) >= 3
    assert all(stage.startswith("fitting the model: ") for stage, _ in heard)
    shares = [share for _, share in heard]
    assert shares[-1] == pytest.approx(1.0) and shares == sorted(shares)
