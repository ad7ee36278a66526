"""A person's statistics against the community, with the charts drawn in the page: the
rating histogram as the CLI's own PNG (presentation/charts.py), the decades and genres
as bars of the page."""
from __future__ import annotations

from flask import Blueprint, Response, render_template

from recommender.cache import CachedModel
from recommender.params import MAX_RATING, MIN_RATING
from recommending.community_cache import community_figures_or_refit
from recommending.statistics import (MIN_GENRE_FILMS, MIN_REFERENCE_RATINGS, Community,
                                      TasteStatistics, taste_statistics)
from presentation.text import star_label
from web.people_pages import person_in_request
from web.state import LoadedPerson, server_state

blueprint = Blueprint("statistics", __name__)

COMMUNITY = "community"
SHOWN_SHARE = 0.005  # a decade under half a percent on both sides is not drawn


def _community(model: CachedModel) -> tuple[CachedModel, Community]:
    """The community's figures, from memory, else from the file next to the model, else
    summed up; a damaged cache is refitted once, as the CLI does."""
    state = server_state()
    refitted: list[CachedModel] = []

    def make() -> Community:
        fitted, community = community_figures_or_refit(
            model, state.holder.data_dir, lambda: state.holder.current(refit=True))
        refitted.append(fitted)
        return community

    community = state.figure_once(COMMUNITY, model.fingerprint, make)
    if refitted:
        return refitted[0], community
    # A visit that waited while another refitted a damaged cache takes the refitted model,
    # which the holder keeps: the figures were summed from it.
    loaded = state.holder.loaded()
    return (loaded if loaded is not None and loaded.fingerprint == model.fingerprint
            else model), community


def statistics_of(person: LoadedPerson, model: CachedModel) -> TasteStatistics:
    person.taste.require_films()
    model, community = _community(model)
    return taste_statistics(model, community, person.taste, person.member)


def _shares(counts: tuple[int, ...]) -> list[float]:
    total = sum(counts)
    return [count / total if total else 0.0 for count in counts]


@blueprint.get("/statistics")
def statistics() -> Response:
    person, model = person_in_request()
    stats = statistics_of(person, model)
    ratings = list(zip([star_label(value) + "★" for value in range(MIN_RATING, MAX_RATING + 1)],
                       _shares(stats.histogram), _shares(stats.community_histogram)))
    decades = [(f"{decade.decade}s", decade.share, decade.community_share)
               for decade in stats.decades or ()
               if max(decade.share, decade.community_share) >= SHOWN_SHARE]
    return Response(render_template(
        "statistics.html", person=person, stats=stats, ratings=ratings, decades=decades,
        min_genre_films=MIN_GENRE_FILMS, min_reference_ratings=MIN_REFERENCE_RATINGS),
        mimetype="text/html")


@blueprint.get("/statistics/chart.png")
def chart() -> Response:
    """The rating histogram against the community's, as `--stats --plot` draws it."""
    from presentation.charts import rating_histogram_png  # matplotlib: only when drawn

    person, model = person_in_request()
    return Response(rating_histogram_png(statistics_of(person, model)), mimetype="image/png")
