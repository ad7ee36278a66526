"""The page on its real threaded server: long work (a profile read politely from the site)
shows its progress while every other page keeps answering; and `recommend.py --serve`
itself, from start to Ctrl-C."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urljoin

import lxml.html
import pytest
import requests

from compile_training_data import main as build_main
from config import Config
from recommend import main as recommend_main
from errors import BadInputError
from simulated_site import SiteData, SimulatedSite
from tests.web_support import OUTSIDER, build_dataset, outsider_site, running_page
from web.jobs import KEPT_JOBS, JobBoard, JobState, Outcome

ROOT = Path(__file__).resolve().parent.parent
DATASET_USERS = 30


@pytest.fixture(scope="module")
def site_data() -> SiteData:
    return SiteData.generate(seed=11, n_users=40, n_films=200)


@pytest.fixture(scope="module")
def dataset(site_data: SiteData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("web-live") / "data"
    with SimulatedSite(site_data) as site:
        assert build_main(["new", "--base-url", site.base_url, "--rate", "0", "--output-dir",
                           str(data_dir), "--users", str(DATASET_USERS), "-q"]) == 0
    return data_dir


def post_person(session: requests.Session, url: str, username: str) -> requests.Response:
    return session.post(f"{url}/people", data={"username": username},
                        headers={"Origin": url}, allow_redirects=False, timeout=30)


def follow_job(session: requests.Session, url: str, job_page: str
               ) -> tuple[dict, list[tuple[str, float | None]]]:
    """Poll a job as the page's script does, until it ends: its last answer, and every
    (stage, share) seen on the way."""
    progress = urljoin(url, job_page) + "/progress"
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = session.get(progress, timeout=10).json()
        seen.append((job["stage"], job["share"]))
        if job["state"] != "running":
            return job, seen
        time.sleep(0.02)
    raise AssertionError(f"the job did not end: {seen[-5:]}")


def test_a_profile_read_from_the_site_shows_progress_while_other_pages_answer(
        site_data: SiteData, dataset: Path) -> None:
    member = list(site_data.users)[0]
    # Outside the dataset (the least popular members), with a page or two of films.
    outsider = min(list(site_data.users)[-8:],
                   key=lambda name: abs(len(site_data.entries(name)) - 80))
    with SimulatedSite(site_data) as site:
        # Ten requests a second: slow enough to watch, as the real site's one a second is.
        config = Config(base_url=site.base_url, requests_per_second=10, output_dir=dataset)
        with running_page(dataset, config=config) as page:
            session = page.session()
            first = post_person(session, page.url, member)
            if first.headers["Location"].startswith("/jobs/"):  # a first fit, taking long
                assert follow_job(session, page.url, first.headers["Location"])[0]["state"] \
                    == "done"
            with page.state.site_lock:  # another profile is being read
                waiting = post_person(session, page.url, outsider)
                assert waiting.status_code == 303
                job_page = waiting.headers["Location"]
                assert job_page.startswith("/jobs/")
                shown = session.get(urljoin(page.url, job_page), timeout=10)
                assert "<progress" in shown.text
                # Meanwhile every other page answers.
                assert session.get(f"{page.url}/", timeout=10).status_code == 200
                assert session.get(f"{page.url}/status", timeout=30).status_code == 200
                assert post_person(session, page.url, member).status_code == 303
                job = session.get(urljoin(page.url, job_page) + "/progress", timeout=10).json()
                assert (job["state"], job["stage"]) == (
                    "running", "waiting for another profile read to finish")
                assert site.request_count(f"/{outsider}/") == 0
            job, seen = follow_job(session, page.url, job_page)
            assert job["state"] == "done", job
            stages = {stage for stage, _ in seen}
            assert f"reading the films of {outsider}" in stages
            picks = session.get(urljoin(page.url, job["next"]), timeout=10)
            assert "scraped" in picks.text and site.request_count(f"/{outsider}/films/") >= 1
    titles = lxml.html.fromstring(picks.text).xpath("//li[contains(@class, 'pick')]//a/@href")
    seen_slugs = {entry.slug for entry in site_data.entries(outsider)}
    assert titles and not {href.rstrip("/").rsplit("/", 1)[1] for href in titles} & seen_slugs


@pytest.mark.parametrize("host", [None, "127.0.0.2"])  # the default, another loopback one
def test_serve_runs_until_ctrl_c_and_says_where_to_look(tmp_path: Path, host: str | None
                                                        ) -> None:
    data_dir = build_dataset(tmp_path)
    server = subprocess.Popen(
        [sys.executable, "recommend.py", "--serve", "--port", "0", "--data-dir", str(data_dir),
         *(["--host", host] if host else [])],
        cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = []
        for line in server.stderr:
            lines.append(line)
            if "open http://" in line:
                break
        address = lines[-1].split("open ", 1)[1].split()[0]
        assert address.startswith(f"http://{host or '127.0.0.1'}:")
        assert "Films you will love" in requests.get(address, timeout=10).text
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=20) == 0
        assert "stopped" in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


@pytest.mark.parametrize("arguments, message", [
    (["--port", "8000", "someone"], "--port and --host are for --serve"),
    (["--serve", "--stats"], "--serve asks its questions on the page: drop --stats"),
    (["--serve", "--match", "friend"], "--serve asks its questions on the page: drop --match"),
    (["--serve", "--format", "json"], "--serve shows lists and statistics on the page"),
    (["--serve", "--port", "70000"], "--port is from 0 (any free port) to 65535"),
    (["--serve", "someone"], "give exactly one of USER, --export PATH, --evaluate, --like"),
])
def test_serve_flags_that_cannot_work_are_refused(arguments: list[str], message: str,
                                                  capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        recommend_main(arguments)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_serve_on_a_folder_without_a_dataset_is_one_line_and_exit_2(
        tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    import cli

    with pytest.raises(SystemExit) as exited:
        cli.run(recommend_main, ["--serve", "--port", "0", "--data-dir", str(tmp_path)])
    assert exited.value.code == 2
    error = capfd.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "holds no dataset" in error[0], error
    assert list(tmp_path.iterdir()) == []


def test_a_taken_port_is_said_or_avoided(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    from errors import BadInputError
    from web import server as web_server
    from web.app import WebSettings, close_app, create_app

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BadInputError, match=f"cannot listen on 127.0.0.1 port {port}: "
                           ".*choose another with --port"):
            recommend_main(["--serve", "--port", str(port), "--data-dir",
                            str(build_dataset(tmp_path)), "-q"])
        monkeypatch.setattr(web_server, "DEFAULT_PORT", port)  # the default is taken: any
        app = create_app(WebSettings(config=Config(output_dir=tmp_path)))
        server = web_server.make_server(app, web_server.ServeOptions())
        assert int(server.effective_port) not in (port, 0)
        server.close()
        close_app(app)


def test_a_member_is_answered_at_once_while_profile_reads_wait_for_the_site(
        tmp_path: Path) -> None:
    data_dir = build_dataset(tmp_path)
    with SimulatedSite(outsider_site()) as site:
        config = Config(base_url=site.base_url, requests_per_second=0, output_dir=data_dir)
        with running_page(data_dir, config=config) as page:
            session = page.session()
            assert post_person(session, page.url, "u1").headers["Location"].startswith(
                "/picks")  # the model is in memory
            with page.state.site_lock:  # a profile is being read: these wait their turn
                waiting = [post_person(session, page.url, f"stranger{number}")
                           for number in range(6)]
                assert all(answer.headers["Location"].startswith("/jobs/")
                           for answer in waiting)
                member = post_person(session, page.url, "u2")
                assert member.headers["Location"].startswith("/picks?person=")
            for answer in waiting:
                job, _ = follow_job(session, page.url, answer.headers["Location"])
                assert job["error"].startswith("there is no Letterboxd user 'stranger")


def test_ctrl_c_stops_the_server_while_a_profile_is_being_read(tmp_path: Path) -> None:
    data_dir = build_dataset(tmp_path)
    with SimulatedSite(outsider_site()) as site:
        server = subprocess.Popen(
            [sys.executable, "recommend.py", "--serve", "--port", "0", "--data-dir",
             str(data_dir), "--base-url", site.base_url, "--rate", "0.02"],  # 50 s apart
            cwd=ROOT, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            for line in server.stderr:
                if "open http://" in line:
                    url = line.split("open ", 1)[1].split()[0].rstrip("/")
                    break
            session = requests.Session()
            job_page = post_person(session, url, OUTSIDER).headers["Location"]
            progress = urljoin(url, job_page) + "/progress"
            deadline = time.monotonic() + 60
            while OUTSIDER not in session.get(progress, timeout=10).json()["stage"]:
                assert time.monotonic() < deadline, "the profile read did not start"
                time.sleep(0.05)
            session.close()
            time.sleep(0.5)  # into the wait for its next request
            server.send_signal(signal.SIGINT)
            assert server.wait(timeout=15) == 0  # not after the read's next request
            assert "stopped" in server.stderr.read()
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()


def blocked_job(board: JobBoard, release=None):
    """A job that runs until the returned event is set."""
    go_on = threading.Event()

    def work(job) -> Outcome:
        go_on.wait(30)
        return Outcome("/done")

    return board.start("waiting", work, release=release), go_on


def test_work_past_the_limit_is_refused_and_lets_go_of_what_it_holds() -> None:
    board = JobBoard(max_unfinished=2)
    running = [blocked_job(board) for _ in range(2)]
    released = []
    with pytest.raises(BadInputError, match=r"too much work under way already \(2 at once"):
        board.start("one too many", lambda job: Outcome("/"),
                    release=lambda: released.append("upload"))
    assert released == ["upload"]
    for job, go_on in running:
        go_on.set()
        assert job.wait(10)
    assert board.start("now", lambda job: Outcome("/now")).wait(10)


def test_an_unfinished_job_is_never_forgotten_for_newer_ones() -> None:
    board = JobBoard()
    job, go_on = blocked_job(board)
    for number in range(KEPT_JOBS + 5):
        assert board.start(f"quick {number}", lambda job: Outcome("/")).wait(10)
    assert board.get(job.id) is job
    go_on.set()
    assert job.wait(10) and job.view().state is JobState.DONE


def test_stopping_frees_what_unfinished_work_holds_and_takes_no_more() -> None:
    board = JobBoard()
    released = []
    job, go_on = blocked_job(board, release=lambda: released.append("upload"))
    board.close()
    assert released == ["upload"]
    with pytest.raises(BadInputError, match="the server is stopping"):
        board.start("late", lambda job: Outcome("/"))
    go_on.set()
    assert job.wait(10) and released == ["upload"]  # freed once
