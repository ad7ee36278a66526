"""The questions for people read from the (simulated) site through the polite fetch
layer: --match, --with, --from-list, --since and --like on a scraped dataset."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import cli
from compile_training_data import main as build_main
from errors import EXIT_BAD_INPUT
from recommend import main as recommend_main
from simulated_site import SiteData, SiteEntry, SimulatedSite

DATASET_USERS = 30


def contrarian_of(data: SiteData) -> str:
    """The member whose every rating "contrarian" turns the other way round."""
    return next(name for name in list(data.users)[:DATASET_USERS]
                if sum(entry.rating is not None for entry in data.entries(name)) >= 40)


@pytest.fixture(scope="module")
def site_data() -> SiteData:
    data = SiteData.generate(seed=21, n_users=40, n_films=200)
    data.add_user("contrarian", [SiteEntry(entry.slug, 11 - entry.rating)
                                 for entry in data.entries(contrarian_of(data))
                                 if entry.rating])
    return data


@pytest.fixture(scope="module")
def dataset(site_data: SiteData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("questions_live") / "data"
    with SimulatedSite(site_data) as site:
        assert build_main(["new", "--base-url", site.base_url, "--rate", "0", "--output-dir",
                           str(data_dir), "--users", str(DATASET_USERS), "-q"]) == 0
    return data_dir


def ask(site: SimulatedSite, data_dir: Path, capsys, *args: str) -> object:
    capsys.readouterr()
    assert recommend_main([*args, "--base-url", site.base_url, "--rate", "0", "--data-dir",
                           str(data_dir), "--format", "json", "-q"]) == 0
    return json.loads(capsys.readouterr().out)


def outsiders(site_data: SiteData) -> list[str]:
    return [name for name in list(site_data.users)[DATASET_USERS:] if name != "contrarian"]


def logged(site_data: SiteData, username: str) -> set[str]:
    return {entry.slug for entry in site_data.entries(username)}


def test_a_match_reads_an_outsider_live_and_places_opposites_at_the_bottom(
        site_data: SiteData, dataset: Path, capsys) -> None:
    member = contrarian_of(site_data)
    outsider = outsiders(site_data)[0]
    with SimulatedSite(site_data) as site:
        assert ask(site, dataset, capsys, outsider, "--match", outsider)["score"] == 100
        assert site.request_count(f"/{outsider}/films/") >= 1
        opposite = ask(site, dataset, capsys, member, "--match", "contrarian")
        other = ask(site, dataset, capsys, member, "--match", outsider)
    assert opposite["score"] <= 10 < other["score"]
    assert opposite["rated_in_common"] == sum(
        entry.rating is not None for entry in site_data.entries("contrarian"))


def test_a_group_with_people_read_live_never_gets_a_film_any_of_them_logged(
        site_data: SiteData, dataset: Path, capsys) -> None:
    member = list(site_data.users)[DATASET_USERS // 2]  # members are by films seen, most first
    first, second = outsiders(site_data)[1:3]
    with SimulatedSite(site_data) as site:
        group = ask(site, dataset, capsys, member, "--with", first, "--with", second,
                    "-n", "30")
    slugs = {pick["slug"] for pick in group["picks"]}
    everyone = logged(site_data, member) | logged(site_data, first) | logged(site_data, second)
    assert len(set(site_data.films) - everyone) >= 40  # so that 30 picks can be found
    assert len(slugs) == 30 and not slugs & everyone  # rated or only watched
    assert all(len(pick["predicted_stars"]) == 3 for pick in group["picks"])


def test_a_given_list_marks_what_an_outsider_has_seen(site_data: SiteData, dataset: Path,
                                                      tmp_path: Path, capsys) -> None:
    outsider = outsiders(site_data)[3]
    seen = sorted(logged(site_data, outsider))[:3]
    rated = set(site_data.films) - logged(site_data, outsider)
    unseen = sorted(rated)[:9]
    lines = [f"https://letterboxd.com/film/{slug}/" for slug in seen + unseen]
    listed = tmp_path / "list.txt"
    listed.write_text("\n".join(lines) + "\n")
    with SimulatedSite(site_data) as site:
        ranked = ask(site, dataset, capsys, outsider, "--from-list", str(listed))
    known = {film["slug"] for film in ranked}
    assert known <= set(seen + unseen)
    assert {film["slug"] for film in ranked if film["seen"]} == set(seen) & known
    assert [film["slug"] for film in ranked] != [slug for slug in seen + unseen
                                                 if slug in known]


def test_since_with_a_profile_read_now_counts_every_rating(site_data: SiteData,
                                                           dataset: Path, capsys) -> None:
    outsider = outsiders(site_data)[4]
    with SimulatedSite(site_data) as site:
        plain = ask(site, dataset, capsys, outsider, "-n", "10")
        since = ask(site, dataset, capsys, outsider, "-n", "10", "--since", "2020-01-01")
    assert since == plain


def test_films_like_one_on_a_scraped_dataset(site_data: SiteData, dataset: Path,
                                             capsys) -> None:
    slug = max(site_data.films, key=lambda film: site_data.rating_stats(film)[0])
    with SimulatedSite(site_data) as site:
        similar = ask(site, dataset, capsys, "--like", slug, "-n", "10")
        assert site.request_count() == 0  # no person, no page
    assert similar["film"]["slug"] == slug
    assert len(similar["films"]) == 10 and slug not in {film["slug"] for film in similar["films"]}


def test_an_unknown_person_is_one_line_and_exit_2(site_data: SiteData, dataset: Path,
                                                  capfd) -> None:
    member = list(site_data.users)[0]
    with SimulatedSite(site_data) as site:
        for args in ([member, "--match", "nosuchperson"], [member, "--with", "nosuchperson"]):
            capfd.readouterr()
            with pytest.raises(SystemExit) as exited:
                cli.run(recommend_main, [*args, "--base-url", site.base_url, "--rate", "0",
                                         "--data-dir", str(dataset), "-q"])
            assert exited.value.code == EXIT_BAD_INPUT
            error = capfd.readouterr().err.strip().splitlines()
            assert error == ["ERROR: there is no Letterboxd user 'nosuchperson'"]
