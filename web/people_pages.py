"""Choosing whose taste: a username (a dataset member, or a public profile read politely
from the site) or an uploaded export ZIP; and the progress page of that work."""
from __future__ import annotations

from typing import Callable
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for

from errors import BadInputError, one_line
from names import validate_username
from recommender.cache import CachedModel
from recommending.people import ExportPath, Person, Username, member_id, taste_of_person
from recommending.taste import taste_from_dataset, unmatched_details
from web.jobs import Job, JobState, Outcome
from web.state import LoadedPerson, Server, server_state
from web.uploads import SavedUpload, save_upload

blueprint = Blueprint("people", __name__)

# How long a form post waits for its job before it shows the progress page instead: a
# list from a cached model comes back in a fraction of this, a first fit or a profile
# read from the site takes longer.
FAST_ANSWER_SECONDS = 1.0


def home_with_error(message: str | None, status: int = 200, *, username: str = "") -> Response:
    """The start page, with a message above the form when something went wrong."""
    return Response(render_template("home.html", error=message, username=username),
                    status=status, mimetype="text/html")


@blueprint.get("/")
def home() -> Response:
    return home_with_error(None)


def _person_from_form(state: Server) -> tuple[Person, SavedUpload | None]:
    username = request.form.get("username", "").strip()
    upload = request.files.get("export")
    if upload is not None and not upload.filename:
        upload = None  # the file field left empty
    if username and upload is not None:
        raise BadInputError("give a username or an export ZIP, not both")
    if upload is not None:
        saved = save_upload(upload, state.max_upload_bytes)
        return ExportPath(saved.path), saved
    if not username:
        raise BadInputError("type a Letterboxd username, or choose your export ZIP")
    return Username(validate_username(username)), None


def load_person(state: Server, job: Job, person: Person, *, refresh: bool) -> LoadedPerson:
    """Read the person's taste against the model (fitting it first if need be), as the
    CLI does; a profile read from the site waits for any other read to finish."""
    job.report("loading the model", None)
    model = state.holder.current()
    reads_site = isinstance(person, Username) and (
        refresh or taste_from_dataset(model, person.username) is None)
    if reads_site:
        job.report("waiting for another profile read to finish", None)
        with state.site_lock:
            job.report(f"reading the profile of {person.username} from the site", None)
            model, taste = taste_of_person(model, person, state.config, refresh=refresh)
    else:
        job.report("reading the export" if isinstance(person, ExportPath)
                   else "reading the stored ratings", None)
        model, taste = taste_of_person(model, person, state.config, refresh=refresh)
    state.holder.adopt(model)
    taste.require_films(rated=False)
    return state.people.add(taste, member_id(model, person), model.fingerprint)


def _next_page(show: str, together: list[str]) -> Callable[[str], str]:
    """Where the new person's token leads: their list or statistics, or a match or a
    group with the people already chosen (`together`, tokens of loaded people)."""
    state = server_state()
    if any(state.people.get(token) is None for token in together):
        raise BadInputError("someone chosen before is no longer loaded: start again")
    if show == "match" and len(together) == 1:
        base = url_for("together.match")
        return lambda token: f"{base}?{urlencode({'person': together[0], 'other': token})}"
    if show == "group" and together:
        base = url_for("together.group")
        return lambda token: f"{base}?" + urlencode(
            [("person", together[0]), *(("member", other) for other in together[1:]),
             ("member", token)])
    page = url_for("statistics.statistics" if show == "statistics" else "lists.picks")
    return lambda token: f"{page}?{urlencode({'person': token})}"


@blueprint.post("/people")
def add_person() -> Response:
    state = server_state()
    try:
        person, upload = _person_from_form(state)
    except BadInputError as error:
        return home_with_error(one_line(str(error)), 400,
                               username=request.form.get("username", ""))
    refresh = request.form.get("refresh") == "on"
    try:
        next_page = _next_page(request.form.get("show", "picks"), request.form.getlist("with"))
    except BadInputError as error:
        if upload is not None:
            upload.remove()
        return home_with_error(one_line(str(error)), 400)

    def work(job: Job) -> Outcome:
        return Outcome(next_page(load_person(state, job, person, refresh=refresh).token))

    title = (f"reading the films of {person.username}" if isinstance(person, Username)
             else "reading the export")
    try:
        job = state.jobs.start(title, work, cleanup_text=upload.shown if upload else str,
                               release=upload.remove if upload else None)
    except BadInputError as error:  # busy: the upload is removed already
        return home_with_error(one_line(str(error)), 503,
                               username=request.form.get("username", ""))
    if job.wait(FAST_ANSWER_SECONDS):
        view = job.view()
        if view.state is JobState.FAILED:
            return home_with_error(view.error, 400, username=request.form.get("username", ""))
        return redirect(view.next_url, 303)
    return redirect(url_for("people.job_page", job_id=job.id), 303)


@blueprint.get("/jobs/<job_id>")
def job_page(job_id: str) -> Response:
    job = server_state().jobs.get(job_id)
    if job is None:
        return home_with_error("that work is no longer known (the server restarted?): start "
                               "it again", 404)
    view = job.view()
    if view.state is JobState.DONE:
        return redirect(view.next_url, 303)
    return Response(render_template("job.html", job=view), mimetype="text/html")


@blueprint.get("/jobs/<job_id>/progress")
def job_progress(job_id: str) -> Response:
    """What the progress page polls: the job's stage, share done and outcome."""
    job = server_state().jobs.get(job_id)
    if job is None:
        return jsonify(state="gone"), 404
    view = job.view()
    return jsonify(state=view.state.value, stage=view.stage, share=view.share,
                   next=view.next_url, error=view.error)


def unmatched_lines(person: LoadedPerson) -> list[str]:
    """Every logged film the dataset could not be told of, with the reason: for the page's
    fold-out list."""
    return unmatched_details(person.taste.unmatched)


def people_in_request(*names: str) -> tuple[list[LoadedPerson], CachedModel]:
    """The people the page's query names (each of `names` may be repeated), with the
    model their films belong to; BadInputError when the server no longer knows one of
    them or the dataset changed since."""
    state = server_state()
    people = []
    for token in (token for name in names for token in request.args.getlist(name)):
        person = state.people.get(token)
        if person is None:
            raise BadInputError("someone this page names is no longer loaded (the server "
                                "restarted, or many others were loaded since): choose them "
                                "again")
        people.append(person)
    if not people:
        raise BadInputError("this page needs a person: choose one first")
    model = state.holder.loaded()
    for person in people:
        if (model is None or model.fingerprint != person.fingerprint
                or state.holder.dataset_changed(person.fingerprint)):
            raise BadInputError(f"the dataset changed since {person.taste.name} was loaded: "
                                "choose them again")
    return people, model


def person_in_request() -> tuple[LoadedPerson, CachedModel]:
    """The person the page's `person` token names, as `people_in_request` finds them."""
    people, model = people_in_request("person")
    return people[0], model
