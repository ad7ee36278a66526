"""Long work run beside the requests: a first model fit, a profile read from the site.

A page that starts such work gets a job id at once and polls its progress, so the
server keeps answering other requests meanwhile. Progress comes from the same bars the
terminal shows (progress.py), reported to the job from its own thread.
"""
from __future__ import annotations

import logging
import secrets
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import Callable

from errors import LetterboxdError, one_line
from progress import progress_reported_to

logger = logging.getLogger("letterboxd.web")

# Finished jobs are kept this many at most, the oldest forgotten first: a page polls its
# job for seconds, not hours.
KEPT_JOBS = 200
UNEXPECTED = ("something unexpected went wrong (a bug): the server's log says what; "
              "please report it with that log")


class JobState(Enum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    """What a finished job leads to: the page to show next."""

    next_url: str


@dataclass(frozen=True)
class JobView:
    """A job as a page sees it at one moment."""

    id: str
    title: str
    state: JobState
    stage: str
    share: float | None   # 0 to 1; None while the total is unknown
    next_url: str | None  # where to go once done
    error: str | None     # one line for the person, once failed


class Job:
    """One piece of long work: its stage and share done, then its outcome or error."""

    def __init__(self, title: str, cleanup_text: Callable[[str], str]) -> None:
        self.id = secrets.token_urlsafe(12)
        self.title = title
        self._cleanup_text = cleanup_text
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._stage = "starting"
        self._share: float | None = None
        self._outcome: Outcome | None = None
        self._error: str | None = None

    def report(self, stage: str, share: float | None) -> None:
        """A `ProgressListener`: what is being done and how far it is."""
        with self._lock:
            self._stage, self._share = stage, share

    def run(self, work: Callable[["Job"], Outcome]) -> None:
        try:
            with progress_reported_to(self.report):
                outcome = work(self)
        except LetterboxdError as error:
            self._finish(None, self._cleanup_text(one_line(str(error))))
        except Exception:
            logger.exception("%s failed", self.title)
            self._finish(None, UNEXPECTED)
        else:
            self._finish(outcome, None)

    def _finish(self, outcome: Outcome | None, error: str | None) -> None:
        with self._lock:
            self._outcome, self._error = outcome, error
        self._finished.set()

    def wait(self, seconds: float) -> bool:
        """Whether the job finished within `seconds`."""
        return self._finished.wait(seconds)

    def view(self) -> JobView:
        with self._lock:
            if self._error is not None:
                state = JobState.FAILED
            elif self._outcome is not None:
                state = JobState.DONE
            else:
                state = JobState.RUNNING
            return JobView(id=self.id, title=self.title, state=state, stage=self._stage,
                           share=self._share,
                           next_url=self._outcome.next_url if self._outcome else None,
                           error=self._error)


class JobBoard:
    """Runs jobs on a few threads of its own and finds them again by id."""

    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="web-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, title: str, work: Callable[[Job], Outcome], *,
              cleanup_text: Callable[[str], str] = str) -> Job:
        """Run `work` in the background; `cleanup_text` rewrites its error message for the
        page (an upload's temporary folder is no business of the person's)."""
        job = Job(title, cleanup_text)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEPT_JOBS:
                self._jobs.popitem(last=False)
        self._pool.submit(job.run, work)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def close(self) -> None:
        """Drop the work not started; the work in hand ends on its own."""
        self._pool.shutdown(wait=False, cancel_futures=True)
