"""The local web page through Flask's test client: the same lists, files and statistics as
the CLI, filters, uploads within their limits, escaping, and its refusals."""
from __future__ import annotations

import socket

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import lxml.html
import pytest

from config import Config
from letterboxd.list_import import LIST_IMPORT_HEADER
from recommend import main as recommend_main
from recommending.filters import FilmFilter
from web.app import WebSettings, create_app
from web.jobs import JobBoard, Outcome
from web.state import EXTENSION, ModelHolder, People, Server
from tests.web_support import (EXPORT_RATED, EXPORT_WATCHED, HOSTILE, HOSTILE_TITLE,
                               build_dataset, export_zip, film_index, year_of)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_zip(tmp_path_factory.mktemp("export") / "my-letterboxd-export.zip")


@pytest.fixture
def uploads_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system's temporary folder, for this test alone: where uploads may be written."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def client_for(data_dir: Path, **settings):
    app = create_app(WebSettings(config=Config(output_dir=data_dir), **settings))
    return app.test_client()


@pytest.fixture(scope="module")
def client(data_dir: Path):
    return client_for(data_dir)


def upload(client, path: Path, name: str | None = None, **fields):
    with path.open("rb") as handle:
        return client.post("/people", data={"export": (handle, name or path.name), **fields},
                           content_type="multipart/form-data")


def person_token(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return parse_qs(urlsplit(response.headers["Location"]).query)["person"][0]


def by_class(node, name: str, tag: str = "*") -> list:
    """The elements under `node` with the class `name`."""
    return node.xpath(f".//{tag}[contains(concat(' ', normalize-space(@class), ' '), ' {name} ')]")


def shown_picks(html: str) -> list[tuple[str, int]]:
    """(title, year) of each pick, in the page's order, as a browser reads the text."""
    tree = lxml.html.fromstring(html)
    return [(by_class(item, "title")[0].text_content(),
             int(by_class(item, "year")[0].text_content()))
            for item in by_class(tree, "pick", "li")]


def page_text(html: str) -> str:
    """The page's words as one line, elements apart."""
    return " ".join(" ".join(lxml.html.fromstring(html).itertext()).split())


def error_text(html: str) -> str:
    return " ".join(node.text_content() for node in by_class(lxml.html.fromstring(html), "error"))


def cli_csv(data_dir: Path, capsys, *args: str) -> list[dict[str, str]]:
    capsys.readouterr()
    assert recommend_main([*args, "--data-dir", str(data_dir), "--format", "csv", "-q"]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_an_uploaded_export_gets_the_clis_list_and_never_a_film_it_logged(
        client, data_dir: Path, export: Path, capsys, uploads_dir: Path) -> None:
    token = person_token(upload(client, export))
    page = client.get(f"/picks?person={token}&top=20").get_data(as_text=True)
    picks = shown_picks(page)
    expected = cli_csv(data_dir, capsys, str(export), "-n", "20")
    assert [title for title, _ in picks] == [row["title"] for row in expected]
    assert len(picks) == 20
    logged = set(EXPORT_RATED) | set(EXPORT_WATCHED)
    assert not {film_index(title) for title, _ in picks} & logged
    assert "matched 15 of 15 rated films" in page
    assert list(uploads_dir.iterdir()) == []  # read, then removed with its folder


def test_filters_change_the_list_as_the_cli_flags_do(client, data_dir: Path, export: Path,
                                                     capsys) -> None:
    token = person_token(upload(client, export))
    everything = shown_picks(client.get(f"/picks?person={token}&top=100").get_data(True))
    recent = shown_picks(client.get(f"/picks?person={token}&top=100&year_from=1990")
                         .get_data(as_text=True))
    assert recent and all(year >= 1990 for _, year in recent)
    assert set(recent) < set(everything)
    comedies = client.get(f"/picks?person={token}&top=100&genre=comedy&max_runtime=&"
                          "year_to=2000").get_data(as_text=True)
    picked = shown_picks(comedies)
    assert picked and all(film_index(title) % 2 == 1 and year <= 2000 for title, year in picked)
    expected = cli_csv(data_dir, capsys, str(export), "-n", "100", "--genre", "comedy",
                       "--year-to", "2000")
    assert [title for title, _ in picked] == [row["title"] for row in expected]


@pytest.mark.parametrize("query, message", [
    ("year_from=abc", "--year-from: 'abc' is not a whole number"),
    ("year_from=2000&year_to=1990", "--year-from is after --year-to"),
    ("min_ratings=-5", "--min-ratings is a count: 0 or more, not -5"),
    ("year_to=99999", "--year-to is a year from 1870 to 2100, not 99999"),
    ("genre=Western", "unknown genre 'western'; this dataset has: comedy, horror"),
    ("language=xx-yy", "unknown language 'xx-yy'"),
    ("top=0", "--top: from 1 to 500"),
    ("watchlist=sometimes", "watchlist: 'sometimes' is none of"),
])
def test_a_bad_filter_gets_the_clis_message_on_the_page(client, export: Path, query: str,
                                                        message: str) -> None:
    token = person_token(upload(client, export))
    response = client.get(f"/picks?person={token}&{query}")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in error_text(html)
    assert "Traceback" not in html
    assert by_class(lxml.html.fromstring(html), "filters", "form")  # to put it right


def test_the_downloaded_list_is_the_clis_list_import_file(client, data_dir: Path,
                                                          export: Path, tmp_path: Path,
                                                          capsys) -> None:
    token = person_token(upload(client, export))
    page = client.get(f"/picks?person={token}&top=12&year_from=1985").get_data(as_text=True)
    link = lxml.html.fromstring(page).get_element_by_id("download").get("href")
    response = client.get(link)
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == LIST_IMPORT_HEADER
    assert len(rows) == 13
    cli_file = tmp_path / "list.csv"
    cli_csv(data_dir, capsys, str(export), "-n", "12", "--year-from", "1985",
            "--letterboxd-list", str(cli_file))
    assert text == cli_file.read_text()


def test_a_hostile_title_is_shown_as_text_never_run(client, export: Path) -> None:
    token = person_token(upload(client, export))
    html = client.get(f"/picks?person={token}&top=100").get_data(as_text=True)
    assert (HOSTILE_TITLE, year_of(HOSTILE)) in shown_picks(html)
    assert "<script>window.pwned" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html
    tree = lxml.html.fromstring(html)
    assert [script.get("src") for script in tree.iter("script")] == ["/static/app.js"]


def test_an_oversized_upload_gets_a_message_and_leaves_nothing(data_dir: Path,
                                                               uploads_dir: Path) -> None:
    client = client_for(data_dir, max_upload_bytes=64 * 1024)
    big = uploads_dir.parent / "big.zip"
    big.write_bytes(os.urandom(200 * 1024))
    response = upload(client, big)
    assert response.status_code == 413
    message = error_text(response.get_data(as_text=True))
    assert "That file is 200 KB" in message and "at most 64 KB" in message
    assert list(uploads_dir.iterdir()) == []


def test_an_overlong_text_field_is_not_called_an_oversized_file(client) -> None:
    response = client.post("/people", data={"username": "a" * 600_000})
    assert response.status_code == 413
    assert error_text(response.get_data(as_text=True)) == "A field of that form is far too long."


@pytest.mark.parametrize("content, message", [
    (b"this is not a zip file", "bad.zip is neither a ZIP file nor a folder"),
    ("zip without ratings", "bad.zip has no ratings.csv: is it a Letterboxd data export?"),
    ("bomb", "bad.zip: ratings.csv is compressed suspiciously well"),
    ("damaged", "bad.zip: ratings.csv is damaged and cannot be unpacked"),
])
def test_a_corrupt_upload_gets_the_export_readers_message(client, export: Path, content,
                                                          message: str, uploads_dir: Path
                                                          ) -> None:
    path = uploads_dir.parent / "bad.zip"
    if content == "zip without ratings":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("watched.csv", "Date,Name,Year,Letterboxd URI\n")
    elif content == "bomb":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("ratings.csv", b"0" * (8 << 20))
    elif content == "damaged":  # bytes of the first file's compressed data changed
        data = bytearray(export.read_bytes())
        data[60:80] = bytes(20)
        path.write_bytes(bytes(data))
    else:
        path.write_bytes(content)
    response = upload(client, path)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in error_text(html)
    assert str(uploads_dir) not in html and "Traceback" not in html
    assert list(uploads_dir.iterdir()) == []


def test_an_upload_while_the_server_is_busy_is_refused_and_removed(
        data_dir: Path, export: Path, uploads_dir: Path) -> None:
    app = create_app(WebSettings(config=Config(output_dir=data_dir)))
    state = app.extensions[EXTENSION]
    state.jobs = JobBoard(max_unfinished=1)
    go_on = threading.Event()
    busy = state.jobs.start("busy", lambda job: go_on.wait(30) and Outcome("/"))
    try:
        response = upload(app.test_client(), export)
        assert response.status_code == 503
        assert "too much work under way already (1 at once" in error_text(
            response.get_data(as_text=True))
        assert list(uploads_dir.iterdir()) == []
    finally:
        go_on.set()
        busy.wait(10)


# Uploads a file into a page whose process may write files of 64 KB at most: writing
# past that fails with EFBIG (SIGXFSZ ignored), as a full disk fails with ENOSPC.
UPLOAD_ON_A_FULL_DISK = """
import io, resource, signal, sys
from config import Config
from web.app import WebSettings, create_app
client = create_app(WebSettings(config=Config(output_dir=sys.argv[1]))).test_client()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
answer = client.post("/people", data={"export": (io.BytesIO(bytes(200 * 1024)), "big.zip")},
                     content_type="multipart/form-data")
print(answer.status_code)
print(answer.get_data(as_text=True))
"""


def test_an_upload_onto_a_full_disk_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    uploads = tmp_path / "system-tmp"
    uploads.mkdir()
    finished = subprocess.run(
        [sys.executable, "-c", UPLOAD_ON_A_FULL_DISK, str(tmp_path / "data")],
        cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
        env={**os.environ, "TMPDIR": str(uploads)}, timeout=120)
    status, html = finished.stdout.split("\n", 1)
    assert status == "400", finished.stdout + finished.stderr
    assert error_text(html) == (f"disk full while writing big.zip in the temporary folder "
                                f"{uploads}; nothing was lost, free space and send the file "
                                "again")
    assert list(uploads.iterdir()) == []


def test_a_username_is_checked_before_anything_is_read(client) -> None:
    for form, message in (({"username": "../etc/passwd"}, "username"),
                          ({}, "type a Letterboxd username, or choose your export ZIP")):
        response = client.post("/people", data=form)
        assert response.status_code == 400
        assert message in error_text(response.get_data(as_text=True))


def test_a_dataset_member_is_answered_from_the_stored_ratings(client, data_dir: Path,
                                                              capsys) -> None:
    token = person_token(client.post("/people", data={"username": "u4"}))
    page = client.get(f"/picks?person={token}&top=15").get_data(as_text=True)
    assert "ratings stored in the dataset" in page
    assert [title for title, _ in shown_picks(page)] == \
        [row["title"] for row in cli_csv(data_dir, capsys, "u4", "-n", "15")]


def test_statistics_show_the_clis_figures_and_a_real_chart(client, data_dir: Path,
                                                           capsys) -> None:
    response = client.post("/people", data={"username": "u3", "show": "statistics"})
    assert urlsplit(response.headers["Location"]).path == "/statistics"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    capsys.readouterr()
    assert recommend_main(["u3", "--stats", "--format", "json", "--data-dir", str(data_dir),
                           "-q"]) == 0
    figures = json.loads(capsys.readouterr().out)
    text = page_text(page)
    assert (f"{figures['compared_mean_stars']:.2f}★ against the community's "
            f"{figures['community_mean_stars']:.2f}★") in text
    assert f"{figures['leaning']} (" in text and f"a {figures['range']} range" in text
    chart_url = by_class(lxml.html.fromstring(page), "chart", "img")[0].get("src")
    chart = client.get(chart_url)
    assert chart.mimetype == "image/png"
    from matplotlib.image import imread
    assert imread(io.BytesIO(chart.get_data()), format="png").shape[:2] == (560, 1000)


def test_the_status_page_tells_size_freshness_and_the_models_age(client) -> None:
    client.post("/people", data={"username": "u2"})  # the model is loaded by then
    html = client.get("/status").get_data(as_text=True)
    text = page_text(html)
    assert "Users 50 with ratings (50 known)" in text
    assert "Films 60 rated (60 known)" in text
    assert "Ratings 1,250 (mean" in text
    assert "fitted and saved 20" in text and "loaded here" in text


def test_a_changed_dataset_asks_for_the_person_again(tmp_path: Path) -> None:
    data_dir = build_dataset(tmp_path)
    client = client_for(data_dir)
    token = person_token(client.post("/people", data={"username": "u1"}))
    assert client.get(f"/picks?person={token}").status_code == 200
    ratings = data_dir / "latest_raw_user_ratings.csv"
    os.utime(ratings, ns=(ratings.stat().st_atime_ns, ratings.stat().st_mtime_ns + 10**9))
    response = client.get(f"/picks?person={token}")
    assert response.status_code == 400
    assert "the dataset changed since u1 was loaded" in error_text(response.get_data(True))
    assert "no longer loaded" in error_text(client.get("/picks?person=nobody").get_data(True))


def test_a_job_that_ends_after_the_dataset_changed_keeps_the_newer_model(
        tmp_path: Path) -> None:
    data_dir = build_dataset(tmp_path)
    holder = ModelHolder(data_dir)
    older = holder.current()  # what a job reading a profile holds meanwhile
    ratings = data_dir / "latest_raw_user_ratings.csv"
    os.utime(ratings, ns=(ratings.stat().st_atime_ns, ratings.stat().st_mtime_ns + 10**9))
    newer = holder.current()  # another page loaded the changed dataset
    assert newer.fingerprint != older.fingerprint
    holder.adopt(older)  # the job ends
    assert holder.loaded() is newer


def test_forms_posted_from_another_site_are_refused(client) -> None:
    other = client.post("/people", data={"username": "u1"},
                        headers={"Origin": "https://evil.example"})
    assert other.status_code == 403
    assert "another site" in error_text(other.get_data(as_text=True))
    same = client.post("/people", data={"username": "u1"},
                       headers={"Origin": "http://localhost"})
    assert same.status_code == 303


def test_only_requests_addressed_to_this_machine_are_answered(client) -> None:
    assert client.get("/", headers={"Host": "attacker.example"}).status_code == 400
    assert client.get("/", headers={"Host": "127.0.0.1:8765"}).status_code == 200


@pytest.mark.parametrize("host, address", [("127.0.0.2", "127.0.0.2:8765"),
                                           ("::1", "[::1]:8765")])
def test_another_loopback_address_served_on_answers_under_its_own_name(
        data_dir: Path, host: str, address: str) -> None:
    client = client_for(data_dir, host=host)
    assert client.get("/", headers={"Host": address}).status_code == 200
    assert client.get("/", headers={"Host": "attacker.example"}).status_code == 400
    assert client.get("/", headers={"Host": "127.0.0.3:8765"}).status_code == 400


def test_a_page_opened_to_the_network_answers_this_machine_but_no_rebound_name(
        data_dir: Path) -> None:
    client = client_for(data_dir, host="0.0.0.0")
    for address in ("192.168.1.20:8765", "[fe80::1]:8765", f"{socket.gethostname()}:8765",
                    "localhost:8765"):
        assert client.get("/", headers={"Host": address}).status_code == 200, address
    rebound = client.get("/", headers={"Host": "attacker.example:8765"})
    assert rebound.status_code == 400 and "addressed to this machine" in rebound.text


def test_every_page_forbids_inline_scripts_and_framing(client) -> None:
    headers = client.get("/").headers
    assert "script-src" not in headers["Content-Security-Policy"]  # default-src 'self' only
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def loaded_taste(data_dir: Path, username: str):
    from recommender.cache import load_or_fit
    from recommending.people import Username, taste_of_person

    model = load_or_fit(data_dir)
    return model, taste_of_person(model, Username(username), Config(output_dir=data_dir))[1]


def test_a_taste_match_is_the_match_functions_answer(client, data_dir: Path) -> None:
    from recommending.match import MatchRequest, taste_match
    from recommending.match_cache import cached_match_calibration

    first = person_token(client.post("/people", data={"username": "u2"}))
    chooser = client.get(f"/match?person={first}").get_data(as_text=True)
    assert by_class(lxml.html.fromstring(chooser), "person", "form")  # choose the other
    response = client.post("/people", data={"username": "u4", "show": "match", "with": first})
    assert urlsplit(response.headers["Location"]).path == "/match"
    text = page_text(client.get(response.headers["Location"]).get_data(as_text=True))
    model, u2 = loaded_taste(data_dir, "u2")
    expected = taste_match(model, u2, loaded_taste(data_dir, "u4")[1], MatchRequest(),
                           cached_match_calibration(model, data_dir))
    assert f"{expected.score} /100 {expected.meaning}" in text
    assert all(item.film.label in text for item in expected.both_would_love)
    itself = client.get(f"/match?person={first}&other={first}").get_data(as_text=True)
    assert "100 /100" in page_text(itself)


def test_group_picks_hold_no_film_any_member_logged(client, data_dir: Path) -> None:
    from recommending.group import GroupRequest, GroupRule, group_picks

    first = person_token(client.post("/people", data={"username": "u2"}))
    location = client.post("/people", data={"username": "u3", "show": "group",
                                            "with": first}).headers["Location"]
    members = parse_qs(urlsplit(location).query)["member"]
    location = client.post("/people", data={"username": "u5", "show": "group",
                                            "with": [first, *members]}).headers["Location"]
    html = client.get(f"{location}&rule=average&top=10&year_to=2010").get_data(as_text=True)
    shown = shown_picks(html)
    model, u2 = loaded_taste(data_dir, "u2")
    tastes = [u2, loaded_taste(data_dir, "u3")[1], loaded_taste(data_dir, "u5")[1]]
    expected = group_picks(model, tastes, GroupRequest(FilmFilter(year_to=2010),
                                                       GroupRule.AVERAGE, 10))
    assert shown == [(pick.film.title, pick.film.year) for pick in expected.picks]
    logged = set().union(*({f"Film {index}" for index in model.films["slug"].iloc[
        taste.logged].str.removeprefix("film-").astype(int)} for taste in tastes))
    assert shown and not {title for title, _ in shown} & logged
    alone = client.get(f"/group?person={first}").get_data(as_text=True)
    assert not shown_picks(alone) and "Add someone to the group" in alone
    bad = client.get(f"{location}&rule=loudest")
    assert bad.status_code == 400
    assert "--group-rule: 'loudest' is none of least-misery, average" in error_text(
        bad.get_data(as_text=True))


def test_two_first_visits_make_a_figure_once() -> None:
    server = Server(config=Config(), holder=None, people=People(), jobs=JobBoard(),
                    max_upload_bytes=1)
    made: list[str] = []
    answers: list[object] = []
    release = threading.Event()

    def make() -> str:
        made.append("made")
        release.wait(10)
        return "figures"

    visits = [threading.Thread(target=lambda: answers.append(
        server.figure_once("community", "dataset 1", make))) for _ in range(2)]
    visits[0].start()
    while not made:
        threading.Event().wait(0.01)
    visits[1].start()
    threading.Event().wait(0.3)  # the second visit arrives while the first makes it
    release.set()
    for visit in visits:
        visit.join(10)
    assert made == ["made"] and answers == ["figures", "figures"]
    # Another dataset's figures are made anew, and so is a kept one that is not usable.
    assert server.figure_once("community", "dataset 2", lambda: "new") == "new"
    assert server.figure_once("community", "dataset 2", lambda: "again",
                              usable=lambda kept: kept != "new") == "again"
