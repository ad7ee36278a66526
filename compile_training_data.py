"""Build and extend the ratings dataset from Letterboxd's popular members.

    python compile_training_data.py                  # the MODE in config.py: continue
    python compile_training_data.py new --users 200
    python compile_training_data.py continue --users 500 --refresh-older-than 30
    python compile_training_data.py import ratings_export.csv --movies movie_data.csv
    python compile_training_data.py films --limit 500      # the films' own pages: metadata

Safe to stop at any moment: Ctrl-C finishes the users in hand and saves them;
even kill -9 loses only the batch in hand, which `continue` scrapes again.
"""
from __future__ import annotations

import argparse
import logging
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Sequence

import cli
from builder.film_pass import run_film_pass
from builder.scrape_run import Interrupts, build, check_site_answers, print_summary
from config import Config, configured_mode
from dataset.export import EXPORT_FORMATS, check_export_folder, export_dataset
from dataset.layout import utc_now
from dataset.loading import load_ratings_dataset
from dataset.summary import summarize
from errors import (EXIT_BLOCKED, BadInputError, FetchError, HostLookupError, MarkupError,
                    StopCrawlError, TransientError, exit_code_for)
from fetch_ratings import Fetcher
from load_save_and_translate_data import (DatasetStore, Scale, archive_dataset,
                                          dataset_exists, exclusive_writer,
                                          import_published_dataset)
from presentation.dataset_summary import FORMATS as SUMMARY_FORMATS
from presentation.dataset_summary import render as render_summary

logger = logging.getLogger("letterboxd.builder")

# A century: past it a timedelta overflows, and no scrape is that old.
MAX_REFRESH_DAYS = 36_500

REFUSAL = ("Letterboxd's Terms (Dec 2025, section 6.11) forbid automated collection and the "
           "site is refusing us; this tool does not get around that.")


def _subcommand(modes: argparse._SubParsersAction, name: str, summary: str
                ) -> argparse.ArgumentParser:
    return modes.add_parser(name, help=summary,
                            description=textwrap.fill(summary[0].upper() + summary[1:] + ".",
                                                      width=78),
                            epilog=cli.EXIT_CODES_HELP,
                            formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_scrape_arguments(sub: argparse.ArgumentParser) -> None:
    """What `new` and `continue` share: how many users, how often saved, which site."""
    sub.add_argument("--users", type=int, metavar="N",
                     help="new popular members to scrape this run (default 100; 10 in test "
                     "mode); vanished or private ones count towards N, users whose "
                     "scrape failed last time are retried on top")
    sub.add_argument("--batch-size", type=int, metavar="B",
                     help="users saved per batch (default 50; 5 in test mode)")


def _add_dataset_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--output-dir", type=Path, metavar="DIR",
                     help="dataset folder (default output/, or test_output/ in test mode)")


def _add_new_parser(modes: argparse._SubParsersAction) -> None:
    sub = _subcommand(modes, "new", "start a fresh dataset (an existing one is archived, "
                      "never deleted)")
    _add_scrape_arguments(sub)
    _add_dataset_arguments(sub)
    cli.add_common_arguments(sub)


def _add_continue_parser(modes: argparse._SubParsersAction) -> None:
    sub = _subcommand(modes, "continue", "resume and extend the dataset: skip users already "
                      "scraped, add the next popular members")
    _add_scrape_arguments(sub)
    sub.add_argument("--refresh-older-than", type=float, metavar="DAYS",
                     help="also re-scrape users whose last scrape is older than DAYS days, "
                     "replacing their old ratings")
    _add_dataset_arguments(sub)
    cli.add_common_arguments(sub)


def _add_import_parser(modes: argparse._SubParsersAction) -> None:
    sub = _subcommand(modes, "import", "build the dataset from a published ratings file "
                      "(Kaggle letterboxd-movie-ratings-data layout) instead of scraping")
    sub.add_argument("ratings", type=cli.existing_path,
                     help="ratings CSV (user_id,movie_id,rating_val) or a folder holding "
                     "ratings_export.csv / ratings.csv(.gz)")
    sub.add_argument("--movies", type=cli.existing_path,
                     help="film metadata CSV (movie_id,movie_title,year_released[,genres])")
    sub.add_argument("--people", type=cli.existing_path,
                     help="users CSV (username,display_name)")
    sub.add_argument("--scale", type=Scale, choices=list(Scale), metavar="{stars,ten}",
                     help="how the file writes ratings: ten = half stars 1-10 (7 = 3.5 stars, "
                     "the Kaggle layout), stars = 0.5-5; default: detected (halves and "
                     "nothing above 5 mean stars), a file with both is refused")
    _add_dataset_arguments(sub)
    cli.add_data_and_output_arguments(sub)


SUBCOMMANDS = ("new", "continue", "import", "films", "stats", "export")


def _with_mode(argv: Sequence[str] | None) -> tuple[list[str], bool]:
    """The arguments with a subcommand first: MODE from config.py when none is named
    (`python compile_training_data.py [options]`), and whether that happened."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] and (arguments[0] in SUBCOMMANDS or arguments[0] in ("-h", "--help")):
        return arguments, False
    return [configured_mode(), *arguments], True


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="compile_training_data.py",
        usage="%(prog)s [-h] [SUBCOMMAND] [options]",
        description="Collect the public star ratings of Letterboxd's popular members into\n"
        "an incremental, crash-safe CSV dataset.\n\nWith no subcommand it runs the mode set "
        "by MODE in config.py (or the\nLETTERBOXD_MODE variable): `continue` unless changed, "
        "which starts a\ndataset when there is none. `SUBCOMMAND --help` lists its options.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=cli.EXIT_CODES_HELP)
    modes = parser.add_subparsers(dest="mode", required=True,
                                  metavar="{" + ",".join(SUBCOMMANDS) + "}")
    _add_new_parser(modes)
    _add_continue_parser(modes)
    _add_import_parser(modes)
    _add_films_parser(modes)
    add_data_user_modes(modes)
    arguments, from_config = _with_mode(argv)
    args = parser.parse_args(arguments)
    args.mode_from_config = from_config
    for name in ("users", "batch_size", "workers", "limit"):
        value = getattr(args, name, None)
        if value is not None and value < (0 if name == "users" else 1):
            parser.error(f"--{name.replace('_', '-')} is out of range: {value}")
    days = getattr(args, "refresh_older_than", None)
    if days is not None and not 0 <= days <= MAX_REFRESH_DAYS:  # also refuses nan
        parser.error(f"--refresh-older-than must be between 0 and {MAX_REFRESH_DAYS} days")
    return args


def _add_films_parser(modes: argparse._SubParsersAction) -> None:
    films = _subcommand(modes, "films", "read the films' own pages for their metadata "
                        "(genres, runtime, language, countries, series or film, average "
                        "rating), one page at a time")
    films.add_argument("--limit", type=int, metavar="N",
                       help="read at most N film pages this run (default: every film that "
                       "needs it)")
    films.add_argument("--refresh-older-than", type=float, metavar="DAYS",
                       help="also read again the pages read more than DAYS days ago")
    films.add_argument("--batch-size", type=int, metavar="B",
                       help="films saved per batch (default 50; 5 in test mode)")
    _add_dataset_arguments(films)
    cli.add_site_arguments(films, workers=False)
    cli.add_data_and_output_arguments(films)


def run_films(args: argparse.Namespace, config: Config) -> int:
    """`films`: the film pages of films without metadata (or with old metadata)."""
    older_than = (timedelta(days=args.refresh_older_than)
                  if args.refresh_older_than is not None else None)
    started = time.monotonic()
    store = DatasetStore.open(config.data_dir)
    with Fetcher(config) as fetcher, Interrupts() as interrupts:
        summary = run_film_pass(store, fetcher, limit=args.limit, older_than=older_than,
                                batch_size=config.batch_users, stop=interrupts.stop,
                                progress=cli.verbosity(args) >= 0)
        stats = fetcher.stats()
    print(f"film pages read: {summary.read:,}; gone from the site: {summary.gone:,}; "
          f"failed (read again next run): {len(summary.failed):,}\n"
          f"pages fetched: {stats.requests:,} ({stats.retries} retries) in "
          f"{time.monotonic() - started:.1f} s; films left to read: "
          f"{len(store.films_to_read(older_than)):,}")
    if summary.stopped_by is not None:
        logger.error("stopped: %s. %s The film pages read so far are saved; run `films` "
                     "again much later.", summary.stopped_by, REFUSAL)
        return EXIT_BLOCKED
    return 0


DATA_USER_MODES = ("stats", "export")


def add_data_user_modes(modes: argparse._SubParsersAction) -> None:
    """`stats` and `export`, for people who use the dataset rather than build it."""
    stats = modes.add_parser("stats", help="print a summary of the dataset: users, films, "
                             "ratings, density, rating histogram, most-rated films, age of "
                             "scrapes", epilog=cli.EXIT_CODES_HELP,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    stats.add_argument("--format", choices=SUMMARY_FORMATS, default="text")
    export = modes.add_parser("export", help="write the dataset as Parquet or CSV files with "
                              "readable columns, for pandas, DuckDB or Spark",
                              epilog=cli.EXIT_CODES_HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_argument("folder", type=Path, metavar="DIR",
                        help="folder to write ratings.* and watched_unrated.* into (made if "
                        "missing; files of those names are replaced)")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="parquet",
                        help="parquet (typed, compact; default) or csv")
    for sub in (stats, export):
        sub.add_argument("--data-dir", "--output-dir", dest="output_dir", type=Path,
                         metavar="DIR", help="the dataset folder to read (default output/, or "
                         "test_output/ in test mode)")
        cli.add_data_and_output_arguments(sub)


def run_for_data_users(args: argparse.Namespace, config: Config) -> int:
    """`stats` and `export` read the dataset (never write it), so they take no lock and
    may run beside a builder: they see its last committed batch."""
    if args.mode == "export":
        check_export_folder(args.folder, args.format)
    data = load_ratings_dataset(config.data_dir, likes=args.mode == "export",
                                scrape_times=args.mode == "stats")
    if args.mode == "stats":
        print(render_summary(summarize(data, utc_now()), str(config.data_dir), args.format))
        return 0
    started = time.monotonic()
    written = export_dataset(data, args.folder, args.format)
    print(f"Wrote {', '.join(f'{name} ({rows:,} rows)' for name, rows in written.items())} "
          f"into {args.folder} in {time.monotonic() - started:.1f} s")
    return 0


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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    cli.configure_logging(cli.verbosity(args))
    config = cli.config_from_args(args, output_dir=args.output_dir,
                                  users=getattr(args, "users", None),
                                  batch_size=getattr(args, "batch_size", None))
    data_dir = config.data_dir
    if data_dir.exists() and not data_dir.is_dir():
        raise BadInputError(f"{data_dir} is a file, not a dataset folder")
    if args.mode in DATA_USER_MODES:
        return run_for_data_users(args, config)
    if args.mode_from_config:
        args.mode = _announce_configured_mode(args.mode, data_dir)
    elif args.mode in ("continue", "films") and not dataset_exists(data_dir):
        raise BadInputError(f"{data_dir} holds no dataset to {args.mode}; start one with "
                            "`new` or `import`")
    with exclusive_writer(data_dir):
        if args.mode == "import":
            return run_import(args, config)
        if args.mode == "films":
            return run_films(args, config)
        return run_scrape(args, config)


def _announce_configured_mode(mode: str, data_dir: Path) -> str:
    """Say which mode the bare command runs and how to pick the other; the mode to run
    (`continue` with no dataset yet starts one, as `new` would)."""
    if mode == "continue":
        if dataset_exists(data_dir):
            logger.info("mode continue (MODE in config.py): extending the dataset in %s; "
                        "`compile_training_data.py new` starts a fresh one", data_dir)
            return mode
        logger.info("mode continue (MODE in config.py): %s holds no dataset yet, so "
                    "starting one", data_dir)
        return "new"
    logger.info("mode new (MODE in config.py): starting a fresh dataset in %s (the old one, "
                "if any, is archived); `compile_training_data.py continue` extends it instead",
                data_dir)
    return mode


def run_scrape(args: argparse.Namespace, config: Config) -> int:
    """`new` or `continue`: crawl, save batch by batch, print the summary."""
    data_dir = config.data_dir
    days = getattr(args, "refresh_older_than", None)
    refresh = timedelta(days=days) if days is not None else None
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
            passing = isinstance(error, (TransientError, HostLookupError))
            later = "; try `continue` later" if passing else ""
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
