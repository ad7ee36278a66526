"""Two or more people at once: how well two tastes match, and one list for a group.

The answers are recommending/match.py's and recommending/group.py's, as the CLI gives
them; the page only chooses the people (each loaded as on the start page) and shows
what comes back.
"""
from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Response, render_template, request

from errors import BadInputError, one_line
from letterboxd.urls import film_url
from presentation.picks import stars
from recommender.cache import CachedModel
from recommending.group import GroupPicks, GroupRequest, group_picks
from recommending.match import MatchCalibration, MatchRequest, TasteMatch, taste_match
from recommending.match_cache import cached_match_calibration
from recommending.group import GROUP_TOP
from web.forms import MAX_TOP, group_rule, list_choice
from web.people_pages import people_in_request
from web.state import server_state

blueprint = Blueprint("together", __name__)

CALIBRATION = "match calibration"


def _calibration(model: CachedModel) -> MatchCalibration:
    """The match's calibration, from memory, else from next to the model, else computed."""
    state = server_state()
    calibration = state.figure_once(
        CALIBRATION, model.fingerprint,
        lambda: cached_match_calibration(model, state.holder.data_dir))
    return calibration


@blueprint.get("/match")
def match() -> Response:
    people, model = people_in_request("person", "other")
    result: TasteMatch | None = None
    error = None
    if len(people) >= 2:
        try:
            result = taste_match(model, people[0].taste, people[1].taste, MatchRequest(),
                                 _calibration(model))
        except BadInputError as problem:
            error = one_line(str(problem))
    return Response(render_template(
        "match.html", person=people[0], other=people[1] if len(people) > 1 else None,
        result=result, error=error, stars=stars, film_url=film_url),
        status=400 if error else 200, mimetype="text/html")


def _without(token: str) -> str:
    """This page's query with one member fewer."""
    kept = [(name, value) for name, value in request.args.items(multi=True)
            if not (name == "member" and value == token)]
    return urlencode(kept)


@blueprint.get("/group")
def group() -> Response:
    people, model = people_in_request("person", "member")
    result: GroupPicks | None = None
    error = None
    if len(people) >= 2:
        try:
            choice = list_choice(request.args, default_top=GROUP_TOP)
            result = group_picks(model, [person.taste for person in people], GroupRequest(
                film_filter=choice.film_filter, rule=group_rule(request.args),
                top=choice.top))
        except BadInputError as problem:
            error = one_line(str(problem))
    return Response(render_template(
        "group.html", person=people[0], members=people, result=result, error=error,
        form=request.args, default_top=GROUP_TOP, max_top=MAX_TOP,
        removal={person.token: _without(person.token) for person in people[1:]},
        stars=stars, film_url=film_url), status=400 if error else 200, mimetype="text/html")
