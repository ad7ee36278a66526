"""`recommend.py` for people read from the (simulated) site, through the polite fetch layer."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

import cli
from compile_training_data import main as build_main
from errors import EXIT_BAD_INPUT, EXIT_BLOCKED, EXIT_UNAVAILABLE
from recommend import main as recommend_main
from simulated_site import FaultConfig, SiteData, SimulatedSite

DATASET_USERS = 30


@pytest.fixture(scope="module")
def site_data() -> SiteData:
    return SiteData.generate(seed=11, n_users=40, n_films=200)


@pytest.fixture(scope="module")
def dataset(site_data: SiteData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("live") / "data"
    with SimulatedSite(site_data) as site:
        assert build_main(["new", "--base-url", site.base_url, "--rate", "0", "--output-dir",
                           str(data_dir), "--users", str(DATASET_USERS), "-q"]) == 0
    return data_dir


def recommended_slugs(output: str) -> list[str]:
    return [row["slug"] for row in csv.DictReader(io.StringIO(output))]


def recommend(site: SimulatedSite, data_dir: Path, *args: str) -> int:
    return recommend_main([*args, "--base-url", site.base_url, "--rate", "0", "--data-dir",
                           str(data_dir), "--format", "csv", "-n", "20", "-q"])


def exit_code(site: SimulatedSite, data_dir: Path, username: str) -> int:
    with pytest.raises(SystemExit) as exited:
        cli.run(recommend_main, [username, "--base-url", site.base_url, "--rate", "0",
                                 "--data-dir", str(data_dir), "-q"])
    return exited.value.code


def test_someone_outside_the_dataset_is_read_from_the_site_and_gets_only_unseen_films(
        site_data: SiteData, dataset: Path, capsys: pytest.CaptureFixture) -> None:
    outsider = list(site_data.users)[-1]
    with SimulatedSite(site_data) as site:
        assert recommend(site, dataset, outsider) == 0
        assert site.request_count(f"/{outsider}/films/") >= 1
        assert site.request_count(f"/{outsider}/watchlist/") >= 1
    picks = recommended_slugs(capsys.readouterr().out)
    seen = {entry.slug for entry in site_data.entries(outsider)}
    assert len(picks) == 20
    assert not set(picks) & seen  # rated or merely watched
    assert not set(picks) & set(site_data.watchlists[outsider])  # excluded by default


def test_watchlist_only_lists_the_users_own_watchlist(site_data: SiteData, dataset: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    outsider = list(site_data.users)[-2]
    with SimulatedSite(site_data) as site:
        assert recommend(site, dataset, outsider, "--watchlist-only") == 0
    picks = recommended_slugs(capsys.readouterr().out)
    assert picks and set(picks) <= set(site_data.watchlists[outsider])


def test_refresh_reads_a_dataset_member_anew_and_a_plain_run_does_not(
        site_data: SiteData, dataset: Path, capsys: pytest.CaptureFixture) -> None:
    member = list(site_data.users)[0]
    with SimulatedSite(site_data) as site:
        assert recommend(site, dataset, member) == 0
        assert site.request_count(f"/{member}/") == 0
        assert recommend(site, dataset, member, "--refresh") == 0
        assert site.request_count(f"/{member}/films/") >= 1
    capsys.readouterr()


@pytest.mark.parametrize("faults_for, expected, message", [
    (lambda user: FaultConfig(vanished_users=frozenset({user})), EXIT_BAD_INPUT,
     "no Letterboxd user"),
    (lambda user: FaultConfig(private_users=frozenset({user})), EXIT_BAD_INPUT, "not public"),
    (lambda user: FaultConfig(challenge_after=0), EXIT_BLOCKED, "challenge"),
    (lambda user: FaultConfig(fail_first=50, fail_first_status=451), EXIT_UNAVAILABLE, "451"),
    (lambda user: FaultConfig(fail_first=50, fail_first_status=503), EXIT_UNAVAILABLE, "503"),
], ids=["missing", "private", "challenge", "451", "down"])
def test_a_user_who_cannot_be_read_is_one_line_and_its_own_exit_code(
        site_data: SiteData, dataset: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch, faults_for, expected: int, message: str) -> None:
    for name, value in (("RETRIES", "2"), ("BACKOFF_INITIAL", "0.01"), ("BACKOFF_MAX", "0.02")):
        monkeypatch.setenv(f"LETTERBOXD_{name}", value)
    target = list(site_data.users)[-3]
    with SimulatedSite(site_data, faults_for(target)) as site:
        assert exit_code(site, dataset, target) == expected
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR")]
    assert len(errors) >= 1 and message in errors[-1]
