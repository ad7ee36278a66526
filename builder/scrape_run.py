"""One scraping run of the builder: who to scrape, in what order, saved batch by batch.

`compile_training_data.py new` and `continue` turn their flags into a Config and call
`build`; everything between the members list and the saved batches happens here.
"""
from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Iterator

from config import Config
from errors import FetchError, MarkupError, NotFoundError, PrivateError, StopCrawlError
from fetch_ratings import Fetcher
from load_save_and_translate_data import (MAX_FAILED_SCRAPES, DatasetStore, ScrapedFilm,
                                          ScrapeStatus, UserScrapeRecord)
from read_in_data import (FilmTile, MembersPage, UserResult, iter_popular_members,
                          read_members_page, scrape_users)

logger = logging.getLogger("letterboxd.builder")


@dataclass
class RunSummary:
    users_added: int = 0
    users_refreshed: int = 0
    ratings_written: int = 0
    films_added: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)
    stopped_by: StopCrawlError | None = None

    def skip(self, status: ScrapeStatus, username: str) -> None:
        self.skipped.setdefault(status.value, []).append(username)


class CandidateQueue:
    """Who to scrape, in a deterministic order: stale users first, then new popular members.

    `refresh` also holds the users whose every scrape so far failed for a passing
    reason: the members list resumes past them, so they would otherwise never be retried.
    """

    def __init__(self, store: DatasetStore, fetcher: Fetcher, new_users: int,
                 refresh: list[str], first_members_page: MembersPage | None = None) -> None:
        self._store = store
        self._fetcher = fetcher
        self._new_users = new_users
        self._refresh = refresh
        self._first_members_page = first_members_page
        self.page_of: dict[str, int] = {}
        self.display_names: dict[str, str] = {}

    @property
    def planned(self) -> int:
        """Users this queue yields at most: the progress bar's total."""
        return len(self._refresh) + self._new_users

    def __iter__(self) -> Iterator[str]:
        queued: set[str] = set()
        for username in self._refresh:
            queued.add(username)
            yield username
        if self._new_users == 0:
            return
        added = 0
        for page, member in iter_popular_members(self._fetcher, self._store.next_members_page,
                                                 self._first_members_page):
            username = member.username.lower()
            if (username in queued or self._store.is_known(username)
                    or self._store.is_abandoned(username)):
                continue
            queued.add(username)
            self.page_of[username] = page
            self.display_names[username] = member.display_name
            yield username
            added += 1
            if added >= self._new_users:
                return


def _scraped_film(tile: FilmTile) -> ScrapedFilm:
    """What the store keeps of a poster the parser read: the store knows no page records."""
    return ScrapedFilm(slug=tile.slug, lid=tile.lid, letterboxd_id=tile.letterboxd_id,
                       title=tile.title, year=tile.year, rating=tile.rating, liked=tile.liked)


def _record_for(result: UserResult, display_name: str) -> UserScrapeRecord:
    if result.error is None:
        return UserScrapeRecord(result.username, ScrapeStatus.OK,
                                tuple(_scraped_film(tile) for tile in result.films or ()),
                                display_name)
    if isinstance(result.error, NotFoundError):
        status = ScrapeStatus.NOT_FOUND
    elif isinstance(result.error, PrivateError):
        status = ScrapeStatus.PRIVATE
    else:
        status = ScrapeStatus.FAILED
    logger.warning("skipping %s: %s", result.username, result.error)
    return UserScrapeRecord(result.username, status, (), display_name)


class Interrupts:
    """First Ctrl-C: finish the users in hand and save. Second: stop at once."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._previous = None

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        logger.warning("stopping: finishing the users in hand and saving them "
                       "(press Ctrl-C again to quit at once)")
        self.stop.set()

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def build(store: DatasetStore, fetcher: Fetcher, config: Config,
          refresh_older_than: timedelta | None,
          first_members_page: MembersPage | None = None) -> RunSummary:
    """Scrape and save batch by batch; a block ends the run after saving what is done."""
    summary = RunSummary()
    refresh = store.unfinished_users()
    if store.abandoned_user_count:
        logger.info("%d users are no longer retried: their last %d scrapes all failed",
                    store.abandoned_user_count, MAX_FAILED_SCRAPES)
    if refresh_older_than is not None:
        refresh += store.stale_users(refresh_older_than)
    candidates = CandidateQueue(store, fetcher, config.user_count, refresh,
                                first_members_page)
    batch: list[UserScrapeRecord] = []
    batch_page: int | None = None

    def commit() -> None:
        nonlocal batch, batch_page
        if not batch:
            return
        saved = store.commit_batch(batch, next_members_page=batch_page)
        summary.users_added += saved.users_added
        summary.users_refreshed += saved.users_refreshed
        summary.ratings_written += saved.ratings_written
        summary.films_added += saved.films_added
        logger.info("saved a batch of %d users (%d ratings)", len(batch), saved.ratings_written)
        batch, batch_page = [], None

    with Interrupts() as interrupts:
        try:
            for result in scrape_users(fetcher, candidates, config.workers,
                                       stop=interrupts.stop, total=candidates.planned):
                record = _record_for(result, candidates.display_names.get(result.username, ""))
                if record.status is not ScrapeStatus.OK:
                    summary.skip(record.status, record.username)
                batch.append(record)
                batch_page = candidates.page_of.get(result.username, batch_page)
                if len(batch) >= config.batch_users:
                    commit()
        except StopCrawlError as error:
            # Report the block itself, not a request another thread had in flight.
            summary.stopped_by = fetcher.stop_reason or error
        except (FetchError, MarkupError):
            commit()  # the members list cannot be read: keep the users already finished
            raise
        commit()
    if store.dead_rating_rows:
        store.compact()
    return summary


def check_site_answers(fetcher: Fetcher) -> MembersPage:
    """Read the first members page, so that `new` archives nothing when the site is
    blocking us or down: the dataset in place stays the live one. The crawl starts
    from this page rather than asking for it twice."""
    return read_members_page(fetcher, 1)


def _others(count: int) -> str:
    return f" (and {count:,} private, gone or not yet read)" if count else ""


def print_summary(summary: RunSummary, store: DatasetStore, fetcher: Fetcher,
                  seconds: float) -> None:
    stats = fetcher.stats()
    lines = [
        f"users added: {summary.users_added}, refreshed: {summary.users_refreshed}",
        f"ratings saved this run: {summary.ratings_written:,}; new films: {summary.films_added:,}",
        f"dataset now: {store.rated_user_count:,} users with ratings"
        f"{_others(store.user_count - store.rated_user_count)}, {store.film_count:,} films, "
        f"{store.rating_count:,} ratings in {store.data_dir}",
        f"pages fetched: {stats.requests:,} ({stats.retries} retries) in {seconds:.1f} s",
    ]
    for status, names in sorted(summary.skipped.items()):
        shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
        lines.append(f"skipped ({status.replace('_', ' ')}): {len(names)}: {shown}")
    print("\n".join(lines))
