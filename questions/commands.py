"""How recommend.py answers each question: the model and the tastes it needs, the
question's one function, and the rendering printed. The logic lives in recommending/,
the rendering in presentation/; nothing here decides anything of its own."""
from __future__ import annotations

import logging
from datetime import date
from typing import Sequence

import pandas as pd

from config import Config
from dataset.loading import last_scraped_times
from presentation.given_list import render_given_list
from presentation.group import render_group
from presentation.match import render_match
from presentation.similar import render_similar
from recommender.cache import CachedModel, load_or_fit
from recommending.filters import FilmFilter, allowed_films
from recommending.given_list import GivenListRequest, rank_given_list
from recommending.group import GroupRequest, group_picks
from recommending.match import MatchRequest, taste_match
from recommending.match_cache import cached_match_calibration
from recommending.people import Person, member_id, taste_of_person
from recommending.recent import SinceRequest, recent_taste
from recommending.similar import LikeRequest, films_like
from recommending.taste import TasteSource, UserTaste, describe_unmatched, unmatched_details
from questions.arguments import Output, People

logger = logging.getLogger("letterboxd.recommend")

UNMATCHED_LINES_SHOWN = 10


def _read_on(data: CachedModel, person: Person, taste: UserTaste, config: Config
             ) -> date | None:
    """When a member's stored ratings were read: their latest scrape."""
    if taste.source is not TasteSource.DATASET:
        return None
    user = member_id(data, person)
    times = last_scraped_times(config.data_dir)
    if user is None or user >= len(times) or pd.isna(times[user]):
        return None
    return times[user].date()


def model_for(config: Config, film_filter: FilmFilter) -> CachedModel:
    """The cached model, with the filters checked against its films before any profile
    is read: a mistyped genre costs no request."""
    data = load_or_fit(config.data_dir)
    allowed_films(data, film_filter)
    return data


def tastes_of(data: CachedModel, people: People, config: Config, today: date
              ) -> tuple[CachedModel, list[UserTaste]]:
    """Each named person's taste (only what they logged since `people.since`, when
    given), in the order they were named, and the model in use with them."""
    tastes = []
    for person in people.named:
        data, taste = taste_of_person(data, person, config, refresh=people.refresh)
        logger.info("%s: %s", taste.name, taste.source_note)
        if taste.unmatched:
            logger.info("%s", describe_unmatched(taste.unmatched))
            for line in unmatched_details(taste.unmatched):
                logger.debug("%s", line)
        if people.since is not None:
            recent = recent_taste(taste, SinceRequest(
                people.since, _read_on(data, person, taste, config)), today)
            logger.info("%s", recent.note)
            taste = recent.taste
        tastes.append(taste)
    return data, tastes


def _log_notes(notes: Sequence[str]) -> None:
    for note in notes:
        logger.warning("%s", note)


def answer_match(people: People, request: MatchRequest, output: Output, config: Config,
                 today: date) -> int:
    data = model_for(config, request.film_filter)
    data, (first, second) = tastes_of(data, people, config, today)
    match = taste_match(data, first, second, request,
                        cached_match_calibration(data, config.data_dir))
    _log_notes(match.notes)
    print(render_match(match, output.format, output.width))
    return 0


def answer_group(people: People, request: GroupRequest, output: Output, config: Config,
                 today: date) -> int:
    data = model_for(config, request.film_filter)
    data, tastes = tastes_of(data, people, config, today)
    group = group_picks(data, tastes, request)
    _log_notes(group.notes)
    if not group.picks:
        logger.warning("no film passes the filters")
    print(render_group(group, output.format, output.width))
    return 0


def answer_given_list(people: People, request: GivenListRequest, output: Output,
                      config: Config, today: date) -> int:
    data = model_for(config, request.film_filter)
    data, (taste,) = tastes_of(data, people, config, today)
    ranked = rank_given_list(data, taste, request)
    if ranked.unmatched:
        logger.warning("%d lines of the list match no film of the dataset (listed below)",
                       len(ranked.unmatched))
    for missing in ranked.unmatched[:UNMATCHED_LINES_SHOWN]:
        closest = f" (closest: {missing.closest})" if missing.closest else ""
        logger.warning("line %d, %s: %s%s", missing.line, missing.text, missing.reason,
                       closest)
    if len(ranked.unmatched) > UNMATCHED_LINES_SHOWN:
        logger.warning("and %d more lines", len(ranked.unmatched) - UNMATCHED_LINES_SHOWN)
    if ranked.filtered_out:
        logger.info("%d films of the list are left out by the filters: %s",
                    len(ranked.filtered_out),
                    "; ".join(film.label for film in ranked.filtered_out[:5])
                    + ("…" if len(ranked.filtered_out) > 5 else ""))
    if ranked.cold_start:
        logger.warning("too few of %s's ratings match the dataset: the list is ordered by "
                       "how loved each film is instead", taste.name)
    print(render_given_list(ranked, output.format, output.width))
    return 0


def answer_like(request: LikeRequest, output: Output, config: Config) -> int:
    similar = films_like(load_or_fit(config.data_dir), request)
    print(render_similar(similar, output.format, output.width))
    return 0
