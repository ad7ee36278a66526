"""Progress bars for long work: a total, a percentage and the time left, where a person looks.

Bars go to stderr, so stdout stays the command's output (a table, CSV or JSON that may be
piped). They are drawn only when stderr is a terminal and info messages are shown: `-q`
hides them with the info lines, and a log file or a pipe never fills with bar frames.
Log lines pass above a bar rather than through it (cli.py writes them with tqdm.write).

Two kinds: `progress_bar` counts things (users, pages, bytes, films); `ShareBar` follows
work measured in shares of a whole, such as the stages of a model fit, each weighted by
the time it usually takes so that the time left holds from stage to stage.

A person may be looking elsewhere: the local web page shows the progress of work it
runs in a thread of its own. Inside `progress_reported_to(listener)`, every bar that
thread makes also tells the listener how far it is, drawn on a terminal or not.
"""
from __future__ import annotations

import logging
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from tqdm import tqdm

# Told what is being done and the share of the whole done so far (0 to 1).
ShareProgress = Callable[[str, float], None]
# Told what is being done and the share done, None while the total is unknown.
ProgressListener = Callable[[str, float | None], None]

_listening = threading.local()


@contextmanager
def progress_reported_to(listener: ProgressListener) -> Iterator[None]:
    """Within it, the bars this thread makes also report to `listener` (the bars of
    other threads do not: each job of the web page has its own)."""
    previous = getattr(_listening, "listener", None)
    _listening.listener = listener
    try:
        yield
    finally:
        _listening.listener = previous


def _listener() -> ProgressListener | None:
    return getattr(_listening, "listener", None)


class _ReportingBar(tqdm):
    """A counting bar that also reports to a listener; it counts even where it is not
    drawn (tqdm stops counting when disabled)."""

    def __init__(self, listener: ProgressListener, description: str, **options: object
                 ) -> None:
        self._listener = listener
        self._description = description
        super().__init__(desc=description, **options)
        self._report()

    def update(self, n: float | None = 1) -> bool | None:
        if self.disable:
            self.n += n or 0
            shown = None
        else:
            shown = super().update(n)
        self._report()
        return shown

    def refresh(self, *args: object, **kwargs: object) -> None:
        if not self.disable:
            super().refresh(*args, **kwargs)
        self._report()

    def _report(self) -> None:
        self._listener(self._description,
                       min(self.n / self.total, 1.0) if self.total else None)

# The stage last, after the time left: a stage's name may be long, the rest never moves.
_SHARE_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"


def bars_shown() -> bool:
    """Whether a bar would be drawn now: stderr is a terminal and info lines are shown."""
    try:
        terminal = sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        terminal = False
    return terminal and logging.getLogger().isEnabledFor(logging.INFO)


def progress_bar(total: float | None, description: str, *, unit: str = "it",
                 unit_scale: bool = False, leave: bool = True, wanted: bool = True) -> tqdm:
    """A counting bar on stderr: with a total it shows the percentage and the time left.

    `unit_scale` suits bytes (1.2 MB rather than 1234567 B). The bar is a no-op object
    where `bars_shown()` is false or the caller does not want it, so callers update it
    unconditionally.
    """
    options = dict(total=total, unit=unit, unit_scale=unit_scale, leave=leave,
                   file=sys.stderr, disable=not (wanted and bars_shown()),
                   dynamic_ncols=True, mininterval=0.25)
    listener = _listener()
    if listener is not None and wanted:
        return _ReportingBar(listener, description, **options)
    return tqdm(desc=description, **options)


class ShareBar:
    """A bar over one job's share done, its current stage beside it; call it as a
    `ShareProgress`. Use as a context manager so the bar is always closed."""

    def __init__(self, description: str, *, leave: bool = False) -> None:
        self._bar = tqdm(total=100, desc=description, bar_format=_SHARE_FORMAT, leave=leave,
                         file=sys.stderr, disable=not bars_shown(), dynamic_ncols=True,
                         mininterval=0.25)
        self._stage = ""
        self._description = description
        self._listener = _listener()

    def __call__(self, stage: str, share: float) -> None:
        if self._listener is not None:
            self._listener(f"{self._description}: {stage}" if stage else self._description,
                           min(max(share, 0.0), 1.0))
        if stage != self._stage:
            self._stage = stage
            self._bar.set_postfix_str(stage, refresh=False)
        target = 100 * min(max(share, 0.0), 1.0)
        if target > self._bar.n:  # a share never goes back
            self._bar.update(target - self._bar.n)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "ShareBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def share_of(progress: ShareProgress | None, start: float, end: float, *,
             stage: str | None = None) -> ShareProgress | None:
    """A sub-job's progress (its own 0 to 1) as the part `start` to `end` of `progress`;
    with `stage`, all of it shown under that name rather than the sub-job's own."""
    if progress is None:
        return None
    return lambda own, share: progress(stage or own, start + (end - start) * share)
