"""Recommend films a user has not seen, from the dataset's collaborative-filtering model.

    python recommend.py USERNAME                  # a dataset member, or anyone public (read live)
    python recommend.py letterboxd-me-2026-01-21-11-21-utc.zip   # an export: no network at all
    python recommend.py USERNAME --stats --plot ratings.png      # their statistics, and a chart
    python recommend.py USERNAME --match FRIEND   # how well two tastes match, 0-100
    python recommend.py USERNAME --with FRIEND [--with ...]      # films for a group
    python recommend.py USERNAME --from-list festival.txt        # a given list, ranked
    python recommend.py USERNAME --since 2025-01-01              # recent taste only
    python recommend.py --like "Toy Story 2 (1999)"              # films like one film
    python recommend.py --evaluate [RATINGS_CSV]  # quality against plain baselines
    python recommend.py --serve                   # all of it as a local web page

The model is fitted once on every rating of the dataset and cached next to it;
each user is folded into it in closed form, so a list takes well under a second.
"""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Sequence

import cli
from config import Config
from dataset.loading import load_ratings_dataset
from errors import BadInputError, DiskFullError
from letterboxd.list_import import list_import_csv
from letterboxd.urls import LIST_IMPORT_PAGE
from presentation.picks import FORMATS, list_entries, render, table_width
from progress import ShareBar
from presentation.statistics import FORMATS as STATISTICS_FORMATS
from presentation.statistics import render as render_statistics
from questions import commands
from questions.arguments import (LIST_TOP, Output, Question, add_question_arguments,
                                 check_question_arguments, given_list_request, group_request,
                                 like_request, match_request, people_of, question_of, top_of)
from recommender.cache import load_or_fit
from recommending.community_cache import community_figures_or_refit
from recommending.filters import FilmFilter, allowed_films, listable_by_default
from recommending.picks import WatchlistUse, recommend
from recommending.people import Person, member_id, taste_of_person
from recommending.statistics import taste_statistics
from safe_files import check_output_target, write_atomically

logger = logging.getLogger("letterboxd.recommend")


@dataclass(frozen=True)
class ListRequest:
    """What the flags ask for, as the logic takes it."""

    film_filter: FilmFilter
    top: int
    watchlist: WatchlistUse
    output_format: str
    table_width: int | None  # None: as wide as the longest line (--wide)
    letterboxd_list: Path | None


def list_request(args: argparse.Namespace) -> ListRequest:
    watchlist = (WatchlistUse.ONLY if args.watchlist_only else
                 WatchlistUse.BOOST if args.boost_watchlist else WatchlistUse.EXCLUDE)
    return ListRequest(
        film_filter=FilmFilter(min_ratings=args.min_ratings, max_ratings=args.max_ratings,
                               obscurity=args.obscurity,
                               year_from=args.year_from, year_to=args.year_to,
                               genres=tuple(args.genre),
                               excluded_genres=tuple(args.exclude_genre),
                               languages=tuple(args.language), countries=tuple(args.country),
                               min_runtime=args.min_runtime, max_runtime=args.max_runtime,
                               include_tv=args.include_tv),
        top=top_of(args, LIST_TOP), watchlist=watchlist, output_format=args.format,
        table_width=None if args.wide else table_width(), letterboxd_list=args.letterboxd_list)

def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="recommend.py",
        description="List the films a Letterboxd user will most likely love and has not seen.\n\n"
        "The list is ordered by how well each film matches the user's taste; the stars\n"
        "beside a film are the rating they would likely give it. The two come from\n"
        "different models, so a film with fewer stars can rank above one with more.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=cli.EXIT_CODES_HELP)
    who = parser.add_argument_group("whose taste")
    who.add_argument("username", nargs="?", metavar="USER", help="a Letterboxd username (a "
                     "member of the dataset, or any public user, read live through the polite "
                     "fetch layer) or the path of the user's export ZIP or folder (a path "
                     "holds '.' or '/', a username never does)")
    who.add_argument("--export", type=cli.existing_path, metavar="PATH",
                     help="the same as giving the export's path as USER")
    who.add_argument("--refresh", action="store_true",
                     help="scrape a dataset member's ratings anew instead of using stored ones")
    pick = parser.add_argument_group("what to list")
    pick.add_argument("-n", "--top", type=int, metavar="N",
                      help="how many films (default 50; 20 for --with and --like, 10 in "
                      "each part of --match)")
    pick.add_argument("--min-ratings", type=int, metavar="K",
                      help="only films with at least K ratings in the dataset")
    pick.add_argument("--max-ratings", type=int, metavar="K",
                      help="only films with at most K ratings in the dataset (obscure picks)")
    pick.add_argument("--year-from", type=int, metavar="YEAR",
                      help="only films released in YEAR or later")
    pick.add_argument("--year-to", type=int, metavar="YEAR",
                      help="only films released in YEAR or earlier")
    pick.add_argument("--genre", action="append", default=[], metavar="G",
                      help="only films of this genre (repeatable; needs genre metadata, "
                      "e.g. from an imported dataset)")
    pick.add_argument("--exclude-genre", action="append", default=[], metavar="G",
                      help="leave out films of this genre (repeatable)")
    pick.add_argument("--language", action="append", default=[], metavar="CODE",
                      help="only films whose original language is this (ISO 639-1 code such "
                      "as ja, or a name; repeatable)")
    pick.add_argument("--country", action="append", default=[], metavar="C",
                      help="only films made in this country (ISO code such as FR, or a name; "
                      "repeatable)")
    pick.add_argument("--min-runtime", type=int, metavar="MIN",
                      help="only films of at least MIN minutes")
    pick.add_argument("--max-runtime", type=int, metavar="MIN",
                      help="only films of at most MIN minutes")
    pick.add_argument("--obscurity", type=float, metavar="P",
                      help="leave out the P%% most-rated films of the dataset (e.g. 50 keeps "
                      "the less rated half; see also --max-ratings)")
    pick.add_argument("--include-tv", action="store_true",
                      help="list series too (by default only films; series are left out "
                      "where the metadata says what a title is)")
    watchlist = pick.add_mutually_exclusive_group()
    watchlist.add_argument("--watchlist-only", action="store_true",
                           help="pick only from the user's watchlist")
    watchlist.add_argument("--boost-watchlist", action="store_true",
                           help="include watchlist films and rank them higher "
                           "(by default they are left out, since you know of them)")
    out = parser.add_argument_group("output and evaluation")
    out.add_argument("--format", choices=FORMATS, default="table",
                     help="table (default: fits the terminal, 80 columns when piped), csv or "
                     "json (every field, the predicted rating 1-10 too)")
    out.add_argument("--wide", action="store_true",
                     help="a table with whole titles and every reason, however wide")
    out.add_argument("--letterboxd-list", type=Path, metavar="FILE",
                     help="also write a CSV that Letterboxd's list import accepts")
    out.add_argument("--data-dir", type=Path, metavar="DIR",
                     help="dataset folder (default output/, or test_output/ in test mode)")
    out.add_argument("--evaluate", nargs="?", const="", metavar="RATINGS_CSV",
                     help="measure quality against baselines on the dataset, or on a ratings "
                     "file in the Kaggle layout (user_id,movie_id,rating_val)")
    out.add_argument("--seed", type=int, default=0,
                     help="seed of the evaluation split (default 0)")
    add_statistics_arguments(parser)
    add_question_arguments(parser)
    add_serve_arguments(parser)
    cli.add_site_arguments(parser, workers=False)  # one profile is read page after page
    cli.add_data_and_output_arguments(parser)
    args = parser.parse_args(argv)
    chosen = sum(x is not None and x is not False for x in (args.username, args.export,
                                                            args.evaluate, args.like,
                                                            args.serve))
    if chosen != 1 and not (args.like is not None and chosen == 2):
        parser.error("give exactly one of USER, --export PATH, --evaluate, --like FILM "
                     "or --serve")
    check_question_arguments(parser, args)
    check_statistics_arguments(parser, args)
    check_serve_arguments(parser, args)
    if args.top is not None and args.top < 1:
        parser.error("--top must be at least 1")
    if args.letterboxd_list is not None and not args.letterboxd_list.parent.is_dir():
        parser.error(f"--letterboxd-list: cannot write a file at {args.letterboxd_list}")
    try:
        args.request = list_request(args)
    except BadInputError as error:
        parser.error(str(error))
    return args


def add_statistics_arguments(parser: argparse.ArgumentParser) -> None:
    stats = parser.add_argument_group("statistics instead of a list")
    stats.add_argument("--stats", action="store_true",
                       help="the user's rating statistics against the community (the "
                       "dataset's other members): mean, rating style, obscurity, genres, "
                       "decades; --format json for scripts")
    stats.add_argument("--plot", type=Path, metavar="FILE.png",
                       help="with --stats, also draw the rating histogram against the "
                       "community's as a PNG")


def check_statistics_arguments(parser: argparse.ArgumentParser,
                               args: argparse.Namespace) -> None:
    if args.plot is not None and not args.stats:
        parser.error("--plot draws the statistics: add --stats")
    if args.stats and args.evaluate is not None:
        parser.error("--stats describes one user: give USER, not --evaluate")
    if args.stats and args.format not in STATISTICS_FORMATS:
        parser.error(f"--stats prints {' or '.join(STATISTICS_FORMATS)}, not {args.format}")
    if args.stats and args.letterboxd_list is not None:
        parser.error("--stats makes no list: drop --letterboxd-list")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    web = parser.add_argument_group("a local web page instead")
    web.add_argument("--serve", action="store_true",
                     help="serve every list and statistic as a web page on this computer "
                     "(the same model, cache and dataset), until Ctrl-C")
    web.add_argument("--port", type=int, metavar="N",
                     help="with --serve, the port (default 8765, or a free one if it is "
                     "taken; 0 takes a free one)")
    web.add_argument("--host", metavar="H",
                     help="with --serve, the address to listen on (default 127.0.0.1, this "
                     "computer only; another opens the page, with no login, to the network)")


def check_serve_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.serve:
        if args.port is not None or args.host is not None:
            parser.error("--port and --host are for --serve")
        return
    if question_of(args) is not Question.LIST:
        parser.error("--serve asks its questions on the page: drop "
                     f"{question_of(args).value}")
    if args.letterboxd_list is not None or args.format != "table":
        parser.error("--serve shows lists and statistics on the page: drop "
                     "--letterboxd-list and --format")
    if args.port is not None and not 0 <= args.port <= 65535:
        parser.error("--port is from 0 (any free port) to 65535")


# --- the command ----------------------------------------------------------------------

def run_evaluation(args: argparse.Namespace, config: Config) -> int:
    from recommender import evaluation  # only this path needs it

    started = time.monotonic()
    # A published ratings file has no watched-unrated films, and no metadata to filter by.
    watched = listable = None
    if args.evaluate:
        table = evaluation.load_ratings_table(Path(args.evaluate))
    else:
        data = load_ratings_dataset(config.data_dir)
        table = (data.user_index, data.film_index, data.rating, data.n_users, data.n_films)
        watched = (data.unrated_user, data.unrated_film)
        listable = listable_by_default(data.films)
    try:
        with ShareBar("evaluating") as bar:
            report = evaluation.evaluate(*table, seed=args.seed, watched=watched,
                                         listable=listable, progress=bar)
    except ValueError as error:  # too few ratings or users for the protocol
        raise BadInputError(f"cannot evaluate: {error}") from None
    print(evaluation.format_report(report))
    logger.info("evaluation took %.1f s", time.monotonic() - started)
    return 0


def run_statistics(args: argparse.Namespace, person: Person, config: Config) -> int:
    """--stats: the person's figures against the community, and the chart if asked."""
    if args.plot is not None:
        check_output_target(args.plot)
    data = load_or_fit(config.data_dir)
    data, taste = taste_of_person(data, person, config, refresh=args.refresh)
    logger.info("%s: %s", taste.name, taste.source_note)
    taste.require_films()
    data, community = community_figures_or_refit(
        data, config.data_dir, lambda: load_or_fit(config.data_dir, refit=True))
    stats = taste_statistics(data, community, taste, member_id(data, person))
    print(render_statistics(stats, args.format))
    if args.plot is not None:
        from presentation.charts import rating_histogram_png  # matplotlib: only when asked

        try:
            write_atomically(args.plot, rating_histogram_png(stats))
        except OSError as error:
            raise BadInputError(f"cannot write {args.plot}: {error.strerror or error}") from None
        logger.info("wrote the rating histogram to %s", args.plot)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    cli.configure_logging(cli.verbosity(args))
    config = cli.config_from_args(args, output_dir=args.data_dir)
    question = question_of(args)
    if question is Question.EVALUATE:
        return run_evaluation(args, config)
    if args.serve:
        from web.server import DEFAULT_HOST, ServeOptions, serve  # Flask: only here

        return serve(config, ServeOptions(host=args.host or DEFAULT_HOST, port=args.port))
    output = Output(args.format, args.request.table_width)
    if question is Question.LIKE:
        return commands.answer_like(like_request(args), output, config)
    today = date.today()
    people = people_of(args, today)  # every name checked before any work
    if question is Question.STATS:
        return run_statistics(args, people.named[0], config)
    if question is Question.MATCH:
        return commands.answer_match(people, match_request(args), output, config, today)
    if question is Question.GROUP:
        return commands.answer_group(people, group_request(args), output, config, today)
    if question is Question.GIVEN_LIST:
        return commands.answer_given_list(people, given_list_request(args), output, config,
                                          today)
    request: ListRequest = args.request
    if request.letterboxd_list is not None:  # refused before the work, not after it
        check_output_target(request.letterboxd_list)
    data = load_or_fit(config.data_dir)
    allowed = allowed_films(data, request.film_filter)
    data, (taste,) = commands.tastes_of(data, people, config, today)
    taste.require_films(rated=False)
    picks, note = recommend(data, taste, allowed, top=request.top, watchlist=request.watchlist)
    if note:
        logger.warning("%s", note)
    if not picks:
        logger.warning("no film passes the filters")
    if request.letterboxd_list is not None:  # first: a reader of stdout may stop early
        try:
            write_atomically(request.letterboxd_list,
                             list_import_csv(list_entries(picks)).encode())
        except DiskFullError:
            raise DiskFullError(request.letterboxd_list, then="run the command again") from None
        except OSError as error:
            raise BadInputError(f"cannot write {request.letterboxd_list}: "
                                f"{error.strerror or error}") from None
        logger.info("wrote %s: import it at %s", request.letterboxd_list, LIST_IMPORT_PAGE)
    if picks or request.output_format != "table":  # an empty JSON list or CSV header parses
        print(render(picks, request.output_format, width=request.table_width,
                     own_average=taste.average_stars))
    return 0


if __name__ == "__main__":
    cli.run(main)
