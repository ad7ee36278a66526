"""Scraping many users at once: an ordered pool with bounded look-ahead.

The pool only decides how many users are in flight and in which order results come
back; each user's pages are walked by `scraping.walk`, politely by the shared
fetcher. Results come back in input order so that the caller commits
deterministically, whatever the thread timing.
"""
from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar

from errors import (InvalidNameError, LetterboxdError, MarkupError, NotFoundError,
                    PageUnavailableError, PrivateError, ResponseTooLargeError,
                    RobotsDisallowedError, TransientError)
from letterboxd.records import FilmTile
from progress import progress_bar
from scraping.walk import HtmlFetcher, scrape_user_films

_Read = TypeVar("_Read")


@dataclass(frozen=True, slots=True)
class UserResult:
    """One user's outcome; exactly one of `films` and `error` is None."""

    username: str
    films: tuple[FilmTile, ...] | None
    error: LetterboxdError | None
    pages_fetched: int


# Failures that concern one user only: a missing (404/410) or private profile, an outage
# that outlasted the retries, any other status such as 451, a redirect off the site, a
# page robots.txt forbids, markup we cannot read (a page that stayed cut short is a
# TransientError). Anything else ends the crawl: a StopCrawlError (the site wants us
# gone), a failed name lookup (this machine is offline), a closed fetcher, a bug.
USER_LEVEL_ERRORS = (NotFoundError, PrivateError, TransientError, ResponseTooLargeError,
                     RobotsDisallowedError, PageUnavailableError, MarkupError, InvalidNameError)


class _Skipped(Exception):
    """A user's work was dropped because the crawl is ending; never reaches callers."""


class _Crawl:
    """State shared by the generator and its workers.

    Users are numbered in input order. After a fatal failure only the users *after* the
    failing one are dropped: everything before it still finishes, so the results yielded
    before the error is raised do not depend on thread timing.
    """

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.abandoned = threading.Event()  # the consumer left: drop work at the next page
        self.failed_at: int | None = None
        self.failure: BaseException | None = None
        self.pages = 0
        self._lock = threading.Lock()

    def fail(self, index: int, error: BaseException) -> None:
        with self._lock:
            if self.failed_at is None or index < self.failed_at:
                self.failed_at, self.failure = index, error

    def count_page(self) -> None:
        with self._lock:
            self.pages += 1

    def accepting(self) -> bool:
        return not self.stop.is_set() and self.failed_at is None

    def may_start(self, index: int) -> bool:
        return not self.stop.is_set() and self.may_continue(index)

    def may_continue(self, index: int) -> bool:
        failed_at = self.failed_at
        return not self.abandoned.is_set() and (failed_at is None or index < failed_at)


class _UserFetcher:
    """Counts one user's pages and stops asking for more once the user is no longer wanted."""

    def __init__(self, fetcher: HtmlFetcher, crawl: _Crawl, index: int) -> None:
        self._fetcher = fetcher
        self._crawl = crawl
        self._index = index
        self.pages = 0

    def get_page(self, path: str, read: Callable[[str], _Read]) -> _Read:
        if not self._crawl.may_continue(self._index):
            raise _Skipped(path)
        page = self._fetcher.get_page(path, read)
        self.pages += 1
        self._crawl.count_page()
        return page


def _scrape_user(fetcher: HtmlFetcher, index: int, username: str, crawl: _Crawl) -> UserResult:
    if not crawl.may_start(index):
        raise _Skipped(username)
    counted = _UserFetcher(fetcher, crawl, index)
    try:
        films = scrape_user_films(counted, username)
    except _Skipped:
        raise
    except USER_LEVEL_ERRORS as error:
        return UserResult(username=username, films=None, error=error, pages_fetched=counted.pages)
    except BaseException as error:
        crawl.fail(index, error)
        raise
    return UserResult(username=username, films=films.films, error=None,
                      pages_fetched=films.pages_fetched)


def scrape_users(fetcher: HtmlFetcher, usernames: Iterable[str], workers: int, *,
                 stop: threading.Event | None = None, progress: bool = True,
                 total: int | None = None) -> Iterator[UserResult]:
    """Scrape users `workers` at a time and yield their results in input order.

    In-order results let the caller commit deterministically. At most 2*workers users
    are submitted ahead of the one being waited for, so a lazy `usernames` (popular
    members fetched on demand) is not drained far ahead. A StopCrawlError (or any other
    unexpected error, also from `usernames` itself) stops new work; every user before
    the failing one still finishes and is yielded, then the error is raised. Setting
    `stop` drops the users not yet started, yields the rest in order and returns.

    `progress` draws a bar of users done (see progress.py); its total is
    `total`, or the length of `usernames` when it has one: a lazy queue knows how many
    users it plans, and without a total a bar has no percentage or time left.

    Leaving early does not wait for requests in progress. The pool's threads are not
    daemons, so the process exits only once they return: the caller must close the
    fetcher (Fetcher.close() cuts its retry and rate-limit waits short) for that to be soon.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    crawl = _Crawl(stop or threading.Event())
    names = iter(usernames)
    in_flight: deque[Future[UserResult]] = deque()
    submitted = 0
    if total is None and hasattr(usernames, "__len__"):
        total = len(usernames)
    bar = progress_bar(total, "scraping users", unit="user", wanted=progress)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scrape-user")
    try:
        while True:
            while crawl.accepting() and len(in_flight) < 2 * workers:
                try:
                    username = next(names)
                except StopIteration:
                    break
                except Exception as error:  # e.g. blocked while listing members
                    crawl.fail(submitted, error)
                    break
                in_flight.append(pool.submit(_scrape_user, fetcher, submitted, username, crawl))
                submitted += 1
            if crawl.stop.is_set():
                for future in in_flight:
                    future.cancel()  # only those not started; running ones finish
            if not in_flight:
                if not crawl.stop.is_set() and crawl.failure is None:
                    bar.total = bar.n  # fewer users to be had than planned: all done
                break
            try:
                # exception() rather than result(): a Ctrl-C raised here must propagate.
                error = in_flight[0].exception()
            except CancelledError:
                break
            if error is not None:
                break  # dropped, or the failure the worker recorded in crawl (raised below)
            result = in_flight.popleft().result()
            bar.update(1)
            bar.set_postfix(pages=crawl.pages, refresh=False)
            yield result
        if crawl.failure is not None:
            raise crawl.failure
    finally:
        # Users still running are no longer wanted: they stop before their next page. We
        # do not wait for a request in progress, so the generator's close() and a Ctrl-C
        # return at once; the threads end when the fetcher lets their request go (see above).
        crawl.abandoned.set()
        pool.shutdown(wait=False, cancel_futures=True)
        bar.close()
