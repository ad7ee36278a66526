"""The dataset's status: how big it is, how fresh its ratings are, when its model was
fitted. The figures are `compile_training_data.py stats`'s own (dataset/summary.py),
summed up once per dataset in a job, as they need a pass over every rating."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from flask import Blueprint, Response, redirect, render_template, url_for

from dataset.layout import MODEL_DIR, utc_now
from dataset.loading import dataset_fingerprint, load_ratings_dataset
from dataset.summary import DatasetSummary, summarize
from errors import BadInputError
from presentation.text import star_label
from letterboxd.urls import film_url
from recommender.model_file import META_FILE
from web.jobs import Job, JobState, Outcome
from web.people_pages import FAST_ANSWER_SECONDS
from web.state import Server, server_state

blueprint = Blueprint("status", __name__)

SUMMARY, SUMMARY_JOB = "summary", "summary job"


def model_saved_at(data_dir: Path) -> datetime | None:
    """When the cached model was last written: its description is written last."""
    try:
        return datetime.fromtimestamp((data_dir / MODEL_DIR / META_FILE).stat().st_mtime,
                                      tz=timezone.utc)
    except OSError:
        return None


def _summary_job(state: Server, fingerprint: str) -> Job:
    """The job summing up the dataset as it is, started once per dataset (again only
    after one failed)."""
    status_page = url_for("status.status")

    def work(job: Job) -> Outcome:
        job.report("reading every rating of the dataset", None)
        data = load_ratings_dataset(state.holder.data_dir, scrape_times=True)
        state.remember(SUMMARY, fingerprint, summarize(data, utc_now()))
        return Outcome(status_page)

    job = state.figure_once(
        SUMMARY_JOB, fingerprint, lambda: state.jobs.start("summing up the dataset", work),
        usable=lambda running: running.view().state is not JobState.FAILED)
    return job


@blueprint.get("/status")
def status() -> Response:
    state = server_state()
    data_dir = state.holder.data_dir
    fingerprint = dataset_fingerprint(data_dir)
    summary = state.figure(SUMMARY, fingerprint)
    if not isinstance(summary, DatasetSummary):
        job = _summary_job(state, fingerprint)
        job.wait(FAST_ANSWER_SECONDS)
        view = job.view()
        if view.state is JobState.FAILED:  # the next visit starts another
            raise BadInputError(view.error or f"{data_dir} cannot be read")
        summary = state.figure(SUMMARY, fingerprint)
        if not isinstance(summary, DatasetSummary):
            return redirect(url_for("people.job_page", job_id=job.id), 303)
    model = state.holder.loaded()
    total = sum(summary.histogram) or 1
    return Response(render_template(
        "status.html", summary=summary, data_dir=str(data_dir),
        model_saved_at=model_saved_at(data_dir),
        model_current=model is not None and model.fingerprint == fingerprint,
        histogram=[(star_label(value) + "★", count / total)
                   for value, count in enumerate(summary.histogram, start=1)],
        base_url=state.config.base_url, film_url=film_url), mimetype="text/html")
