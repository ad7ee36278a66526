"""The list of picks with its filters, and the same list as Letterboxd's list-import CSV.

Both answer from the model in memory and the person's stored taste, through the CLI's
own functions: `allowed_films` for the filters, `recommend` for the list, and
`list_import_csv` for the file.
"""
from __future__ import annotations

from pathlib import PurePath

from flask import Blueprint, Response, render_template, request
from werkzeug.utils import secure_filename

from errors import BadInputError, one_line
from letterboxd.list_import import list_import_csv
from letterboxd.urls import LIST_IMPORT_PAGE, film_url
from presentation.picks import list_entries, stars
from recommender.cache import CachedModel
from recommending.filters import allowed_films
from recommending.picks import Recommendation, recommend
from questions.arguments import LIST_TOP
from web.forms import MAX_TOP, ListChoice, list_choice
from web.people_pages import person_in_request, unmatched_lines
from web.state import LoadedPerson

blueprint = Blueprint("lists", __name__)


def picks_for(person: LoadedPerson, model: CachedModel, choice: ListChoice
              ) -> tuple[list[Recommendation], str | None]:
    """The list as `recommend.py` makes it, for a person already loaded."""
    allowed = allowed_films(model, choice.film_filter)
    return recommend(model, person.taste, allowed, top=choice.top, watchlist=choice.watchlist)


@blueprint.get("/picks")
def picks() -> Response:
    person, model = person_in_request()
    error = note = None
    found: list[Recommendation] = []
    try:
        choice = list_choice(request.args)
        found, note = picks_for(person, model, choice)
    except BadInputError as problem:
        error = one_line(str(problem))
    page = render_template(
        "picks.html", person=person, picks=found, note=note, error=error,
        form=request.args, default_top=LIST_TOP, max_top=MAX_TOP,
        unmatched=unmatched_lines(person), stars=stars, film_url=film_url,
        csv_query=request.query_string.decode("ascii", "replace"),
        import_page=LIST_IMPORT_PAGE)
    return Response(page, status=400 if error else 200, mimetype="text/html")


@blueprint.get("/picks.csv")
def picks_csv() -> Response:
    """The list as a file Letterboxd's list import accepts."""
    person, model = person_in_request()
    found, _ = picks_for(person, model, list_choice(request.args))
    name = secure_filename(f"{PurePath(person.taste.name).stem}-picks.csv") or "picks.csv"
    return Response(list_import_csv(list_entries(found)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
