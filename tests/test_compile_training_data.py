"""The dataset builder end to end against the simulated site."""
from __future__ import annotations

import errno
import fcntl
from pathlib import Path

import pytest

import config
import cli
from compile_training_data import main
from config import Config
from dataset import layout
from errors import BadInputError, ConfigError
from errors import EXIT_BAD_INPUT, EXIT_BLOCKED
from load_save_and_translate_data import exclusive_writer, load_ratings_dataset
from simulated_site import FaultConfig, SiteData, SimulatedSite
from tests.helpers import copy_fixture_dataset, dataset_triples


def site_triples(site_data: SiteData, users=None) -> set[tuple[str, str, int]]:
    return {(user, slug, rating) for user, slug, rating in site_data.rating_triples()
            if users is None or user in users}


def build(mode: str, site_url: str, data_dir: Path, *extra: str) -> int:
    return main([mode, "--base-url", site_url, "--rate", "0", "--output-dir", str(data_dir),
                 "--workers", "3", "-q", *extra])


@pytest.fixture
def site_data() -> SiteData:
    return SiteData.generate(seed=7, n_users=45, n_films=250)


@pytest.fixture
def site(site_data: SiteData):
    with SimulatedSite(site_data) as running:
        yield running


def test_new_then_continue_round_trips_every_rating_with_stable_ids(
        site, site_data: SiteData, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert build("new", site.base_url, data_dir, "--users", "20", "--batch-size", "6") == 0
    first = load_ratings_dataset(data_dir)
    assert first.n_users == 20
    first_films = first.films["slug"].tolist()
    assert build("continue", site.base_url, data_dir, "--users", "1000",
                 "--batch-size", "6") == 0
    assert dataset_triples(data_dir) == site_triples(site_data)
    second = load_ratings_dataset(data_dir)
    assert second.usernames[:20] == first.usernames
    assert second.usernames == list(site_data.users)
    assert second.films["slug"].tolist()[:len(first_films)] == first_films
    films = second.films.set_index("slug")
    for slug, film in list(site_data.films.items())[:20]:
        if slug in films.index:
            assert films.loc[slug, "lid"] == film.lid
            assert films.loc[slug, "letterboxd_id"] == film.letterboxd_id
    watched_unrated = {(second.usernames[u], second.films["slug"].iloc[f])
                       for u, f in zip(second.unrated_user, second.unrated_film)}
    assert watched_unrated == {(user, entry.slug) for user in site_data.users
                               for entry in site_data.entries(user) if entry.rating is None}


def test_refresh_yields_the_sites_new_state_exactly(site, site_data: SiteData,
                                                     tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert build("new", site.base_url, data_dir, "--users", "1000") == 0
    users = list(site_data.users)
    changed_user, emptied_user = users[-5], users[3]
    entries = site_data.entries(changed_user)
    rated = [entry for entry in entries if entry.rating is not None]
    site_data.set_rating(changed_user, rated[0].slug, 11 - rated[0].rating
                         if rated[0].rating != 5 else 6)
    site_data.set_rating(changed_user, rated[1].slug, None)
    site_data.remove_entry(changed_user, rated[2].slug)
    unseen = next(slug for slug in site_data.films
                  if slug not in {entry.slug for entry in entries})
    site_data.set_rating(changed_user, unseen, 10)
    for entry in site_data.entries(emptied_user):
        site_data.remove_entry(emptied_user, entry.slug)
    assert dataset_triples(data_dir) != site_triples(site_data)
    assert build("continue", site.base_url, data_dir, "--users", "0",
                 "--refresh-older-than", "0") == 0
    assert dataset_triples(data_dir) == site_triples(site_data)
    ratings_rows = (data_dir / layout.RATINGS_FILE).read_text().count("\n") - 1
    assert ratings_rows == len(site_triples(site_data))  # compacted: no dead rows left


def test_vanished_and_private_users_are_recorded_and_skipped(
        site_data: SiteData, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    users = list(site_data.users)
    faults = FaultConfig(vanished_users=frozenset({users[1]}),
                         private_users=frozenset({users[2]}))
    data_dir = tmp_path / "data"
    with SimulatedSite(site_data, faults) as site:
        assert build("new", site.base_url, data_dir, "--users", "10") == 0
    log = (data_dir / layout.USER_UPDATES_FILE).read_text()
    assert f",{users[1]},"in log and ",not_found," in log and ",private," in log
    scraped = set(users[:10]) - {users[1], users[2]}  # skipped users count towards --users
    assert dataset_triples(data_dir) == site_triples(site_data, scraped)
    assert "dataset now: 8 users with ratings (and 2 private, gone or not yet read)" in (
        capsys.readouterr().out)


def test_a_challenge_stops_the_run_with_exit_3_after_saving_finished_users(
        site_data: SiteData, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data_dir = tmp_path / "data"
    with SimulatedSite(site_data, FaultConfig(challenge_after=25)) as site:
        assert build("new", site.base_url, data_dir, "--users", "1000",
                     "--batch-size", "2") == EXIT_BLOCKED
        requests_made = site.request_count()
    assert requests_made <= 25 + 3 + 1  # at most the requests already in flight
    saved = load_ratings_dataset(data_dir)
    assert 0 < saved.n_users < len(site_data.users)
    assert dataset_triples(data_dir) == site_triples(site_data, set(saved.usernames))
    final = capsys.readouterr().err.strip().splitlines()[-1]
    # The block itself, not the refusal of a request another worker had queued.
    assert final.startswith("ERROR: stopped: Cloudflare challenge")
    assert "not requested" not in final


def test_new_archives_the_previous_dataset(site, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert build("new", site.base_url, data_dir, "--users", "3") == 0
    # Checked before archiving, then crawled from: the first members page is read once.
    assert site.request_count("/members/popular/") == 1
    before = (data_dir / layout.RATINGS_FILE).read_bytes()
    assert build("new", site.base_url, data_dir, "--users", "2") == 0
    archived = list((data_dir / layout.ARCHIVE_DIR).iterdir())
    assert len(archived) == 1
    assert (archived[0] / layout.RATINGS_FILE).read_bytes() == before


def test_test_mode_writes_to_test_output_and_never_touches_output(
        site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output, test_output = tmp_path / "output", tmp_path / "test_output"
    output.mkdir()
    (output / "keep.txt").write_text("mine")
    monkeypatch.setattr(config, "OUTPUT_DIR", output)
    monkeypatch.setattr(config, "TEST_OUTPUT_DIR", test_output)
    assert main(["new", "--test-mode", "--base-url", site.base_url, "--rate", "0", "-q"]) == 0
    assert [path.name for path in output.iterdir()] == ["keep.txt"]
    assert load_ratings_dataset(test_output).n_users == 10  # the small test-mode default
    for inside in (output, output / "trial", output / "a" / ".." / "b"):
        with pytest.raises(Exception, match="test mode never writes to output"):
            main(["new", "--test-mode", "--output-dir", str(inside), "--base-url",
                  site.base_url])
    assert [path.name for path in output.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("mode, flags", [("new", ["--rate", "nan"]), ("new", ["--rate", "inf"]),
                                         ("continue", ["--refresh-older-than", "nan"]),
                                         ("continue", ["--refresh-older-than", "1e10"])])
def test_numbers_that_are_not_finite_are_refused_with_an_error_line(
        mode: str, flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """NaN passes every `< 0` check: `--rate nan` once meant no rate limit at all."""
    with pytest.raises(SystemExit) as caught:
        cli.run(main, [mode, "--output-dir", str(tmp_path / "d"), "--base-url",
                       "http://127.0.0.1:9", *flags])
    assert caught.value.code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert any(word in err.strip().splitlines()[-1] for word in ("finite", "between 0 and"))
    assert not (tmp_path / "d").exists()


def test_a_timeout_from_the_environment_must_be_finite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETTERBOXD_TIMEOUT", "nan")
    with pytest.raises(ConfigError, match="finite"):
        Config.from_env()


def test_a_file_given_as_the_dataset_folder_is_bad_input(site, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("mine")
    for mode in ("new", "continue"):
        with pytest.raises(BadInputError, match="is a file"):
            build(mode, site.base_url, tmp_path / "afile")
    assert (tmp_path / "afile").read_text() == "mine"


def test_continue_without_a_dataset_is_bad_input(site, tmp_path: Path) -> None:
    with pytest.raises(Exception) as caught:
        build("continue", site.base_url, tmp_path / "none")
    assert getattr(caught.value, "exit_code", None) == EXIT_BAD_INPUT


def test_import_of_the_shared_sample(tmp_path: Path, shared_dataset_dir: Path) -> None:
    assert main(["import", str(shared_dataset_dir), "--output-dir", str(tmp_path / "d"),
                 "-q"]) == 0
    data = load_ratings_dataset(tmp_path / "d")
    assert (len(data.rating), data.n_users, data.n_films) == (509_463, 2_187, 4_974)


def test_new_on_a_blocking_site_leaves_the_previous_dataset_live(
        site, site_data: SiteData, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data_dir = tmp_path / "data"
    assert build("new", site.base_url, data_dir, "--users", "3") == 0
    before = {path.name: path.read_bytes() for path in data_dir.iterdir() if path.is_file()}
    with SimulatedSite(site_data, FaultConfig(challenge_after=0)) as blocking:
        assert build("new", blocking.base_url, data_dir, "--users", "2") == EXIT_BLOCKED
        assert blocking.request_count("/members/") == 1  # robots.txt aside, one page
    assert {path.name: path.read_bytes() for path in data_dir.iterdir() if path.is_file()} == before
    assert not (data_dir / layout.ARCHIVE_DIR).exists()
    assert "not started" in capsys.readouterr().err


def test_a_second_builder_on_the_same_dataset_is_refused_and_changes_nothing(
        site, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert build("new", site.base_url, data_dir, "--users", "2") == 0
    before = {path.name: path.read_bytes() for path in data_dir.iterdir() if path.is_file()}
    with exclusive_writer(data_dir):  # as a running builder holds it
        for mode in ("continue", "new"):
            with pytest.raises(BadInputError, match="another builder is writing"):
                build(mode, site.base_url, data_dir, "--users", "1")
    assert {path.name: path.read_bytes()
            for path in data_dir.iterdir() if path.is_file()} == before
    assert build("continue", site.base_url, data_dir, "--users", "1") == 0  # released


@pytest.mark.parametrize("base_url, allowed", [
    ("https://letterboxd.com", False), ("http://example.org:8000", False),
    ("http://127.0.0.1:8000", True), ("http://localhost:8000", True), ("http://[::1]:8000", True)])
def test_no_rate_limit_only_for_a_site_on_this_machine(base_url: str, allowed: bool) -> None:
    if allowed:
        assert Config(base_url=base_url, requests_per_second=0).requests_per_second == 0
    else:
        with pytest.raises(ConfigError, match="only for a site on this machine"):
            Config(base_url=base_url, requests_per_second=0)
    assert Config(base_url=base_url, requests_per_second=1).requests_per_second == 1


def test_a_new_that_cannot_start_leaves_no_folder_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETTERBOXD_RETRIES", "1")
    fresh = tmp_path / "fresh"
    assert main(["new", "--output-dir", str(fresh), "--base-url", "http://127.0.0.1:9",
                 "--rate", "0", "-q"]) != 0  # nothing listens on port 9
    assert not fresh.exists()


def test_a_filesystem_without_locks_warns_and_goes_on(
        site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    def no_locks(*args: object) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    assert build("new", site.base_url, tmp_path / "data", "--users", "2") == 0
    assert "cannot lock" in capsys.readouterr().err
    assert load_ratings_dataset(tmp_path / "data").n_users == 2


def test_continue_extends_a_dataset_written_before_the_dataset_package(tmp_path: Path) -> None:
    data_dir = copy_fixture_dataset(tmp_path / "data")
    before = dataset_triples(data_dir)
    site_data = SiteData.generate(seed=3, n_users=100, n_films=200)
    with SimulatedSite(site_data) as site:  # the fixture's crawl stopped before page 3
        assert build("continue", site.base_url, data_dir, "--users", "2") == 0
        assert site.request_count("/dave/films/") == 1  # its failed user is retried
    after = load_ratings_dataset(data_dir)
    assert after.usernames[:6] == ["alice", "bob", "carol", "dave", "erin", "frank"]
    new_users = set(after.usernames[6:])
    assert len(new_users) == 2 and new_users <= set(list(site_data.users)[60:])
    assert dataset_triples(data_dir) == before | site_triples(site_data, new_users)
    assert (data_dir / layout.RATINGS_FILE).read_text().count("\n") - 1 == len(
        after.rating)  # compacted: the refreshed user's old rows are gone
