"""Build and extend the ratings dataset from Letterboxd's popular members.

    python compile_training_data.py new --users 200
    python compile_training_data.py continue --users 500 --refresh-older-than 30
    python compile_training_data.py import ratings_export.csv --movies movie_data.csv

Safe to stop at any moment: Ctrl-C finishes the users in hand and saves them;
even kill -9 loses only the batch in hand, which `continue` scrapes again.
"""
from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Iterator, Sequence

import cli
from config import Config
from errors import (EXIT_BLOCKED, BadInputError, FetchError, MarkupError, NotFoundError,
                    PrivateError, StopCrawlError, TransientError, exit_code_for)
from fetch_ratings import Fetcher
from load_save_and_translate_data import (MAX_FAILED_SCRAPES, DatasetStore, Scale, ScrapedFilm,
                                          ScrapeStatus, UserScrapeRecord, archive_dataset,
                                          dataset_exists, exclusive_writer,
                                          import_published_dataset)
from read_in_data import (FilmTile, MembersPage, UserResult, iter_popular_members,
                          parse_members_page, popular_members_path, scrape_users)

logger = logging.getLogger("letterboxd.builder")

# A century: past it a timedelta overflows, and no scrape is that old.
MAX_REFRESH_DAYS = 36_500

REFUSAL = ("Letterboxd's Terms (Dec 2025, section 6.11) forbid automated collection and the "
           "site is refusing us; this tool does not get around that.")


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


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="compile_training_data.py",
        description="Collect the public star ratings of Letterboxd's popular members into "
        "an incremental, crash-safe CSV dataset.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=cli.EXIT_CODES_HELP)
    modes = parser.add_subparsers(dest="mode", required=True, metavar="{new,continue,import}")
    new = modes.add_parser("new", help="start a fresh dataset (an existing one is archived, "
                           "never deleted)", epilog=cli.EXIT_CODES_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    cont = modes.add_parser("continue", help="resume and extend the dataset: skip users "
                            "already scraped, add the next popular members",
                            epilog=cli.EXIT_CODES_HELP,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    imp = modes.add_parser("import", help="build the dataset from a published ratings file "
                           "(Kaggle letterboxd-movie-ratings-data layout) instead of scraping",
                           epilog=cli.EXIT_CODES_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    for sub in (new, cont):
        sub.add_argument("--users", type=int, metavar="N",
                         help="new popular members to scrape this run (default 100; 10 in test "
                         "mode); vanished or private ones count towards N, users whose "
                         "scrape failed last time are retried on top")
        sub.add_argument("--batch-size", type=int, metavar="B",
                         help="users saved per batch (default 50; 5 in test mode)")
        sub.add_argument("--refresh-older-than", type=float, metavar="DAYS",
                         help="also re-scrape users whose last scrape is older than DAYS days, "
                         "replacing their old ratings")
    imp.add_argument("ratings", type=cli.existing_path,
                     help="ratings CSV (user_id,movie_id,rating_val) or a folder holding "
                     "ratings_export.csv / ratings.csv(.gz)")
    imp.add_argument("--movies", type=cli.existing_path,
                     help="film metadata CSV (movie_id,movie_title,year_released[,genres])")
    imp.add_argument("--people", type=cli.existing_path,
                     help="users CSV (username,display_name)")
    imp.add_argument("--scale", type=Scale, choices=list(Scale), metavar="{stars,ten}",
                     help="how the file writes ratings: ten = half stars 1-10 (7 = 3.5 stars, "
                     "the Kaggle layout), stars = 0.5-5; default: detected (halves and "
                     "nothing above 5 mean stars), a file with both is refused")
    for sub in (new, cont, imp):
        sub.add_argument("--output-dir", type=Path, metavar="DIR",
                         help="dataset folder (default output/, or test_output/ in test mode)")
        cli.add_common_arguments(sub)
    args = parser.parse_args(argv)
    for name in ("users", "batch_size", "workers"):
        value = getattr(args, name, None)
        if value is not None and value < (0 if name == "users" else 1):
            parser.error(f"--{name.replace('_', '-')} is out of range: {value}")
    days = getattr(args, "refresh_older_than", None)
    if days is not None and not 0 <= days <= MAX_REFRESH_DAYS:  # also refuses nan
        parser.error(f"--refresh-older-than must be between 0 and {MAX_REFRESH_DAYS} days")
    return args


def _find_in_folder(folder: Path, names: Sequence[str]) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def run_import(args: argparse.Namespace, config: Config) -> int:
    ratings, movies, people = args.ratings, args.movies, args.people
    if ratings.is_dir():
        folder = ratings
        ratings = _find_in_folder(folder, ("ratings_export.csv", "ratings.csv", "ratings.csv.gz"))
        if ratings is None:
            raise BadInputError(f"{folder} holds no ratings_export.csv or ratings.csv(.gz)")
        movies = movies or _find_in_folder(folder, ("movie_data.csv", "movies.csv",
                                                    "movies.csv.gz"))
        people = people or _find_in_folder(folder, ("users_export.csv",))
    data_dir = config.data_dir
    started = time.monotonic()
    # Archives the previous dataset only once the new one is complete beside it.
    summary = import_published_dataset(ratings, data_dir, movies_path=movies, users_path=people,
                                       archive_existing=True, scale=args.scale,
                                       show_progress=not args.quiet)
    if summary.archived:
        logger.info("the previous dataset is kept in %s", summary.archived)
    print(f"Imported {summary.ratings:,} ratings by {summary.users:,} users of "
          f"{summary.films:,} films into {data_dir} in {time.monotonic() - started:.1f} s"
          + (f" ({summary.rows_dropped:,} invalid or repeated rows dropped)"
             if summary.rows_dropped else "")
          + (f"; {summary.years_dropped:,} impossible release years left out"
             if summary.years_dropped else "")
          + ("; ratings on the 0.5-5 star scale, doubled to half stars"
             if summary.scale is Scale.STARS else ""))
    return 0


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


class _Interrupts:
    """First Ctrl-C: finish the users in hand and save. Second: stop at once."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._previous = None

    def __enter__(self) -> "_Interrupts":
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

    with _Interrupts() as interrupts:
        try:
            for result in scrape_users(fetcher, candidates, config.workers,
                                       stop=interrupts.stop, progress=True):
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
    return parse_members_page(fetcher.get_html(popular_members_path(1)))


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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    cli.configure_logging(cli.verbosity(args))
    config = cli.config_from_args(args, output_dir=args.output_dir,
                                  users=getattr(args, "users", None),
                                  batch_size=getattr(args, "batch_size", None))
    data_dir = config.data_dir
    if data_dir.exists() and not data_dir.is_dir():
        raise BadInputError(f"{data_dir} is a file, not a dataset folder")
    if args.mode == "continue" and not dataset_exists(data_dir):
        raise BadInputError(f"{data_dir} holds no dataset to continue; start one with `new`")
    with exclusive_writer(data_dir):
        if args.mode == "import":
            return run_import(args, config)
        return run_scrape(args, config)


def run_scrape(args: argparse.Namespace, config: Config) -> int:
    """`new` or `continue`: crawl, save batch by batch, print the summary."""
    data_dir = config.data_dir
    refresh = (timedelta(days=args.refresh_older_than)
               if args.refresh_older_than is not None else None)
    started = time.monotonic()
    first_members_page = None
    with Fetcher(config) as fetcher:
        if args.mode == "new":
            try:
                first_members_page = check_site_answers(fetcher)
            except (FetchError, MarkupError) as error:
                logger.error("not started: %s. Nothing was changed in %s%s", error, data_dir,
                             f". {REFUSAL}" if isinstance(error, StopCrawlError) else "")
                return exit_code_for(error)
            archived = archive_dataset(data_dir)
            if archived:
                logger.info("the previous dataset is kept in %s", archived)
        store = DatasetStore.open(data_dir, create=args.mode == "new")
        try:
            summary = build(store, fetcher, config, refresh, first_members_page)
        except (FetchError, MarkupError) as error:
            later = "; try `continue` later" if isinstance(error, TransientError) else ""
            logger.error("stopped early: %s. The users finished before it are saved%s", error,
                         later)
            return exit_code_for(error)
        print_summary(summary, store, fetcher, time.monotonic() - started)
    if summary.stopped_by is not None:
        logger.error("stopped: %s. %s Everything scraped so far is saved; try `continue` much "
                     "later, or use `import` with a published dataset.", summary.stopped_by,
                     REFUSAL)
        return EXIT_BLOCKED
    return 0


if __name__ == "__main__":
    cli.run(main)
