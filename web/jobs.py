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
from dataclasses import dataclass
from enum import Enum
from typing import Callable

from errors import BadInputError, LetterboxdError, one_line
from progress import progress_reported_to

logger = logging.getLogger("letterboxd.web")

# Finished jobs are kept this many at most, the oldest forgotten first: a page polls its
# job for seconds, not hours.
KEPT_JOBS = 200
# Unfinished jobs at most: each waits on the model, the site or the disk, so more at once
# would only wait longer; past this a page says the server is busy.
MAX_UNFINISHED_JOBS = 16
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

    def __init__(self, title: str, cleanup_text: Callable[[str], str],
                 release: Callable[[], None] | None = None) -> None:
        self.id = secrets.token_urlsafe(12)
        self.title = title
        self._cleanup_text = cleanup_text
        self._release = release
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
        outcome = error = None
        try:
            with progress_reported_to(self.report):
                outcome = work(self)
        except LetterboxdError as problem:
            error = self._cleanup_text(one_line(str(problem)))
        except Exception:
            logger.exception("%s failed", self.title)
            error = UNEXPECTED
        self.release()  # before the page that waits is told: nothing is left behind then
        with self._lock:
            self._outcome, self._error = outcome, error
        self._finished.set()

    def release(self) -> None:
        """Free what the work holds (an upload's temporary folder), once: when it ends,
        or when the server stops first."""
        with self._lock:
            release, self._release = self._release, None
        if release is not None:
            release()

    def finished(self) -> bool:
        return self._finished.is_set()

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
    """Runs each job on a thread of its own and finds it again by id.

    A thread per job, not a fixed pool: profile reads waiting their turn for the site
    must not hold up a list that needs only the model. Daemon threads: Ctrl-C stops the
    server at once, not after the profile read in hand (what a job writes, a fitted
    model, is replaced atomically: whole or not at all).
    """

    def __init__(self, max_unfinished: int = MAX_UNFINISHED_JOBS) -> None:
        self._max_unfinished = max_unfinished
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False

    def start(self, title: str, work: Callable[[Job], Outcome], *,
              cleanup_text: Callable[[str], str] = str,
              release: Callable[[], None] | None = None) -> Job:
        """Run `work` in the background; `cleanup_text` rewrites its error message for the
        page (an upload's temporary folder is no business of the person's); `release`
        frees what the work holds once it ends, or once the server stops, or at once when
        the work is refused (BadInputError: the server is busy or stopping)."""
        job = Job(title, cleanup_text, release)
        with self._lock:
            refusal = self._refusal()
            if refusal is None:
                self._jobs[job.id] = job
                self._forget_finished()
        if refusal is not None:
            job.release()
            raise BadInputError(refusal)
        threading.Thread(target=job.run, args=(work,), name="web-job", daemon=True).start()
        return job

    def _refusal(self) -> str | None:
        if self._closed:
            return "the server is stopping"
        unfinished = sum(not job.finished() for job in self._jobs.values())
        if unfinished >= self._max_unfinished:
            return (f"too much work under way already ({unfinished} at once; profile reads "
                    "waiting their turn for the site, most likely): try again once one has "
                    "finished")
        return None

    def _forget_finished(self) -> None:
        """The oldest finished jobs beyond KEPT_JOBS; an unfinished one is kept, as its
        page still follows it."""
        excess = len(self._jobs) - KEPT_JOBS
        if excess > 0:
            for job_id in [key for key, job in self._jobs.items() if job.finished()][:excess]:
                del self._jobs[job_id]

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def close(self) -> None:
        """The server is stopping: free what unfinished work holds (their threads end
        with the process) and take no more."""
        with self._lock:
            self._closed = True
            unfinished = [job for job in self._jobs.values() if not job.finished()]
        for job in unfinished:
            job.release()
