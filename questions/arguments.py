"""The flags of the questions recommend.py answers beside the list, and the typed
requests they become. A person is named as USER is (recommending/people.py); the
questions are flags, never subcommands, so no word can shadow a username."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from datetime import date
from enum import Enum
from pathlib import Path

from errors import BadInputError
from letterboxd.film_lists import film_reference, read_film_list
from recommending.given_list import GivenListRequest
from recommending.group import GROUP_TOP, GroupRequest, GroupRule
from recommending.match import MatchRequest
from recommending.people import ExportPath, Person, person_named
from recommending.recent import check_since
from recommending.similar import LikeRequest

LIKE_TOP, MATCH_SHOWN, LIST_TOP = 20, 10, 50


class Question(Enum):
    LIST = "the list"
    STATS = "--stats"
    EVALUATE = "--evaluate"
    MATCH = "--match"
    GROUP = "--with"
    GIVEN_LIST = "--from-list"
    LIKE = "--like"


@dataclass(frozen=True)
class Output:
    format: str
    width: int | None  # None: as wide as the longest line (--wide)


@dataclass(frozen=True)
class People:
    """Whose tastes a question needs, the first being USER's, and how to read them."""

    named: tuple[Person, ...]
    refresh: bool
    since: date | None


def add_question_arguments(parser: argparse.ArgumentParser) -> None:
    asked = parser.add_argument_group("other questions (each instead of the list)")
    asked.add_argument("--match", metavar="PERSON",
                       help="how well USER's taste matches PERSON's (a username or an "
                       "export's path): a 0-100 score and what it means, films both loved, "
                       "the biggest disagreements, films both would love")
    asked.add_argument("--with", dest="with_people", action="append", default=[],
                       metavar="PERSON", help="films for USER and PERSON to watch together, "
                       "none of them logged by anyone (repeat for a bigger group); the "
                       "filters apply")
    asked.add_argument("--group-rule", choices=[rule.value for rule in GroupRule],
                       default=GroupRule.LEAST_MISERY.value,
                       help="with --with: order by the lowest member's predicted stars "
                       "(least-misery, the default) or by their mean (average)")
    asked.add_argument("--from-list", type=str, metavar="FILE",
                       help="rank only the films of FILE for USER: a Letterboxd list export, "
                       "a list-import CSV or a text file with one \"Title (Year)\", "
                       "letterboxd.com/film/ or boxd.it link a line; films USER logged are "
                       "marked, not dropped")
    asked.add_argument("--like", metavar="FILM",
                       help="films like FILM (a slug, a Letterboxd link or \"Title (Year)\"), "
                       "nearest first, with how many of its fans loved each; no USER")
    asked.add_argument("--since", metavar="DATE",
                       help="fold in only the ratings logged on or after DATE (YYYY-MM-DD): "
                       "dated by an export; a member's or profile's ratings carry no dates, "
                       "so they count as of when they were read")


def question_of(args: argparse.Namespace) -> Question:
    """The one question the flags ask (check_question_arguments made sure of one)."""
    for question, asked in ((Question.EVALUATE, args.evaluate is not None),
                            (Question.LIKE, args.like is not None),
                            (Question.STATS, args.stats),
                            (Question.MATCH, args.match is not None),
                            (Question.GROUP, bool(args.with_people)),
                            (Question.GIVEN_LIST, args.from_list is not None)):
        if asked:
            return question
    return Question.LIST


def check_question_arguments(parser: argparse.ArgumentParser,
                             args: argparse.Namespace) -> None:
    """One question at a time, and only the flags it uses."""
    asked = [name for name, given in (
        ("--evaluate", args.evaluate is not None), ("--like", args.like is not None),
        ("--stats", args.stats), ("--match", args.match is not None),
        ("--with", bool(args.with_people)), ("--from-list", args.from_list is not None))
        if given]
    if len(asked) > 1:
        parser.error(f"ask one question at a time: {' and '.join(asked[:2])} together")
    question = question_of(args)
    if question is Question.LIKE and (args.username or args.export):
        parser.error("--like needs no USER: it asks which films are like FILM for anyone")
    if args.group_rule != GroupRule.LEAST_MISERY.value and question is not Question.GROUP:
        parser.error("--group-rule orders a group's films: add --with PERSON")
    if args.since is not None and question not in (Question.LIST, Question.MATCH,
                                                   Question.GROUP, Question.GIVEN_LIST):
        parser.error(f"--since chooses the ratings folded in; {question.value} does not "
                     "fold any in")
    if question is not Question.LIST:
        for flag, given in (("--watchlist-only", args.watchlist_only),
                            ("--boost-watchlist", args.boost_watchlist),
                            ("--letterboxd-list", args.letterboxd_list is not None)):
            if given:
                parser.error(f"{flag} is for USER's own list, not {question.value}")
    if question is Question.MATCH and args.format == "csv":
        parser.error("--match prints a table or json, not csv")


def top_of(args: argparse.Namespace, default: int) -> int:
    return default if args.top is None else args.top


def since_date(text: str | None, today: date) -> date | None:
    """--since as a date; one clear error for any other text or a date to come."""
    if text is None:
        return None
    try:
        since = date.fromisoformat(text.strip())
    except ValueError:
        raise BadInputError(f"--since {text!r} is not a date: write it YYYY-MM-DD") from None
    check_since(since, today)
    return since


def people_of(args: argparse.Namespace, today: date) -> People:
    """USER and everyone --match or --with names, each checked before any work."""
    first = ExportPath(args.export) if args.export is not None else person_named(args.username)
    others = ([args.match] if args.match is not None else []) + list(args.with_people)
    return People(named=(first, *(person_named(text) for text in others)),
                  refresh=args.refresh, since=since_date(args.since, today))


def match_request(args: argparse.Namespace) -> MatchRequest:
    return MatchRequest(film_filter=args.request.film_filter,
                        shown=top_of(args, MATCH_SHOWN))


def group_request(args: argparse.Namespace) -> GroupRequest:
    return GroupRequest(film_filter=args.request.film_filter,
                        rule=GroupRule(args.group_rule), top=top_of(args, GROUP_TOP))


def like_request(args: argparse.Namespace) -> LikeRequest:
    reference = film_reference(args.like)
    if reference is None or not (reference.title or reference.slug or reference.lid):
        raise BadInputError(f"--like {args.like!r} names no film: give a slug, a "
                            "letterboxd.com/film/ or boxd.it link, or \"Title (Year)\"")
    return LikeRequest(film=reference, film_filter=args.request.film_filter,
                       top=top_of(args, LIKE_TOP))


def given_list_request(args: argparse.Namespace) -> GivenListRequest:
    """The file's films (read now: a bad file costs no model), with the filters given;
    the list chose its films, so series stay in."""
    listed = read_film_list(Path(args.from_list))
    return GivenListRequest(lines=listed.lines,
                            film_filter=replace(args.request.film_filter, include_tv=True))
