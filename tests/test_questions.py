"""recommend.py's questions beside the list, end to end on an imported dataset of two
clear tastes: --match, --with, --from-list, --since and --like, their output at 80
columns, and bad input (one line, exit 2, nothing written)."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cli
from compile_training_data import main as build_main
from errors import EXIT_BAD_INPUT, BadInputError
from letterboxd.film_lists import film_reference, parse_film_list
from recommend import main
from recommending.recent import SinceRequest, recent_taste
from recommending.taste import TasteSource, UserTaste
from tests.helpers import dated_export_zip, snapshot

PROJECT_ROOT = Path(__file__).resolve().parent.parent
N_USERS, N_FILMS = 120, 150


def title(film: int) -> tuple[str, int]:
    return f"Film {film}", 1960 + film % 60


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Films better and worse made, which every member rates alike, and two tastes on
    top: even members like even films more than odd ones, odd members the other way
    round. Even films are comedies, odd ones horror."""
    folder = tmp_path_factory.mktemp("questions")
    rng = np.random.default_rng(3)
    popularity = 1.0 / np.arange(1, N_FILMS + 1) ** 0.6
    quality = rng.normal(0.0, 1.2, N_FILMS)
    lines = ["user_id,movie_id,rating_val"]
    for user in range(N_USERS):
        for film in rng.choice(N_FILMS, size=40, replace=False, p=popularity / popularity.sum()):
            taste = 1.5 if film % 2 == user % 2 else -1.5
            rating = round(rng.normal(6.0 + quality[film] + taste, 0.8))
            lines.append(f"user{user},film-{film},{int(np.clip(rating, 1, 10))}")
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    movies = ["movie_id,movie_title,year_released,genres"] + [
        f"film-{film},{title(film)[0]},{title(film)[1]},{'Comedy' if film % 2 == 0 else 'Horror'}"
        for film in range(N_FILMS)]
    (folder / "movies.csv").write_text("\n".join(movies) + "\n")
    data_dir = folder / "data"
    assert build_main(["import", str(folder / "ratings.csv"), "--movies",
                       str(folder / "movies.csv"), "--output-dir", str(data_dir), "-q"]) == 0
    return data_dir


@pytest.fixture(scope="module")
def ratings(dataset: Path) -> pd.DataFrame:
    frame = pd.read_csv(dataset.parent / "ratings.csv")
    frame["film"] = frame["movie_id"].str.removeprefix("film-").astype(int)
    return frame


def ask(dataset: Path, capsys: pytest.CaptureFixture, *args: str) -> object:
    capsys.readouterr()
    assert main([*args, "--data-dir", str(dataset), "--format", "json", "-q"]) == 0
    return json.loads(capsys.readouterr().out)


def table(dataset: Path, capsys: pytest.CaptureFixture, *args: str) -> str:
    capsys.readouterr()
    assert main([*args, "--data-dir", str(dataset), "-q"]) == 0
    return capsys.readouterr().out


def logged_by(ratings: pd.DataFrame, user: str) -> set[str]:
    return set(ratings.loc[ratings["user_id"] == user, "movie_id"])


def film_number(slug: str) -> int:
    return int(slug.removeprefix("film-"))


def export_of(path: Path, ratings: pd.DataFrame, user: str, flip: bool = False) -> Path:
    rows = ratings[ratings["user_id"] == user]
    return dated_export_zip(path, [(*title(film), 11 - rating if flip else rating, "2024-01-01")
                                   for film, rating in zip(rows["film"], rows["rating_val"])])


# --- taste match -------------------------------------------------------------------------

def test_a_person_matched_with_themselves_scores_at_the_top(dataset: Path, ratings, tmp_path,
                                                            capsys) -> None:
    assert ask(dataset, capsys, "user4", "--match", "user4")["score"] == 100
    # The same ratings brought as an export: the same taste, whatever the source.
    export = export_of(tmp_path / "me.zip", ratings, "user4")
    assert ask(dataset, capsys, str(export), "--match", "user4")["score"] == 100


def test_opposite_ratings_score_near_the_bottom_and_alike_tastes_high(
        dataset: Path, ratings, tmp_path, capsys) -> None:
    opposite = export_of(tmp_path / "opposite.zip", ratings, "user4", flip=True)
    assert ask(dataset, capsys, "user4", "--match", str(opposite))["score"] <= 5
    alike = [ask(dataset, capsys, "user4", "--match", f"user{other}")["score"]
             for other in (6, 8, 10)]
    apart = [ask(dataset, capsys, "user4", "--match", f"user{other}")["score"]
             for other in (5, 7, 9)]
    assert min(alike) > max(apart)
    assert min(alike) >= 50


def test_the_parts_of_a_match_hold_what_they_say(dataset: Path, ratings, capsys) -> None:
    match = ask(dataset, capsys, "user4", "--match", "user6", "-n", "30")
    first, second = (ratings[ratings["user_id"] == user].set_index("movie_id")["rating_val"]
                     for user in ("user4", "user6"))
    common = first.index.intersection(second.index)
    assert match["rated_in_common"] == len(common)
    loved = {slug for slug in common if first[slug] >= 8 and second[slug] >= 8}
    assert {film["slug"] for film in match["both_loved"]} == loved
    for film in match["disagreements"]:
        assert abs(film["stars"]["user4"] - film["stars"]["user6"]) >= 1.5
        if not any(film["predicted"].values()):
            assert abs(first[film["slug"]] - second[film["slug"]]) >= 3
    to_see = {film["slug"] for film in match["both_would_love"]}
    assert to_see and not to_see & (logged_by(ratings, "user4") | logged_by(ratings, "user6"))
    assert "agree more than" in match["meaning"] or match["score"] in (0, 100)


# --- group picks -------------------------------------------------------------------------

def test_a_group_pick_is_never_a_film_any_member_logged(dataset: Path, ratings, tmp_path,
                                                        capsys) -> None:
    friend = export_of(tmp_path / "friend.zip", ratings, "user11")
    group = ask(dataset, capsys, "user2", "--with", "user4", "--with", str(friend), "-n", "40")
    logged = logged_by(ratings, "user2") | logged_by(ratings, "user4") | logged_by(
        ratings, "user11")
    slugs = [pick["slug"] for pick in group["picks"]]
    assert slugs and not set(slugs) & logged
    assert group["members"] == ["user2", "user4", "friend.zip"]
    lowest = [min(pick["predicted_rating"].values()) for pick in group["picks"]]
    assert lowest == sorted(lowest, reverse=True)  # least misery, by default
    assert all(pick["group_rating"] == pytest.approx(low, abs=0.01)
               for pick, low in zip(group["picks"], lowest))


def test_the_average_rule_and_the_filters_apply(dataset: Path, ratings, capsys) -> None:
    group = ask(dataset, capsys, "user2", "--with", "user4", "--group-rule", "average",
                "--genre", "Comedy", "--year-from", "1990")
    means = [np.mean(list(pick["predicted_rating"].values())) for pick in group["picks"]]
    assert means == sorted(means, reverse=True)
    assert group["picks"] and all(film_number(pick["slug"]) % 2 == 0 and pick["year"] >= 1990
                                  for pick in group["picks"])


# --- a given list ------------------------------------------------------------------------

def test_a_given_list_returns_exactly_its_films_in_another_order(dataset: Path, ratings,
                                                                 tmp_path, capsys) -> None:
    seen = sorted(logged_by(ratings, "user4"), key=film_number)[:2]
    unseen = sorted(set(f"film-{film}" for film in range(N_FILMS)) - logged_by(ratings, "user4"),
                    key=film_number)[:10]
    wanted = unseen + seen
    lines = ["# my festival"]
    for number, slug in enumerate(wanted):
        name, year = title(film_number(slug))
        lines.append(f"https://letterboxd.com/film/{slug}/" if number % 3 == 0 else
                     f"{name} ({year})")
    lines += ["Not A Film At All (1901)", "https://letterboxd.com/someone/list/faves/", ""]
    listed = tmp_path / "festival.txt"
    listed.write_text("\n".join(lines))
    ranked = ask(dataset, capsys, "user4", "--from-list", str(listed))
    slugs = [film["slug"] for film in ranked]
    assert sorted(slugs) == sorted(wanted)
    assert slugs != wanted
    assert [film["seen"] for film in ranked] == [False] * len(unseen) + [True] * len(seen)
    assert {film["slug"] for film in ranked if film["seen"]} == set(seen)
    # user4 loves even films: the unseen ones come first, by the model's order.
    unseen_order = [film_number(slug) % 2 for slug in slugs[:len(unseen)]]
    assert unseen_order == sorted(unseen_order)


def test_every_list_format_names_the_same_films() -> None:
    export = ("Letterboxd list export v7\nDate,Name,Tags,URL,Description\n"
              "2025-01-01,Festival,,https://boxd.it/abc,\n\n"
              "Position,Name,Year,URL,Description\n1,Film 3,1963,https://boxd.it/x1,\n"
              "2,\"Film, with comma\",2001,https://boxd.it/x2,\n")
    listed = parse_film_list(export, "list.csv")
    assert listed.title == "Festival"
    assert [(line.reference.title, line.reference.year, line.reference.lid)
            for line in listed.lines] == [("Film 3", 1963, "x1"),
                                          ("Film, with comma", 2001, "x2")]
    imported = parse_film_list("LetterboxdURI,Title,Year\n"
                               "https://letterboxd.com/film/film-3/,Film 3,1963\n"
                               ",Film 4,\n", "import.csv")
    assert [(line.reference.slug, line.reference.title, line.reference.year)
            for line in imported.lines] == [("film-3", "Film 3", 1963), (None, "Film 4", None)]
    watchlist = parse_film_list("Date,Name,Year,Letterboxd URI\n2024-01-01,Heat,1995,"
                                "https://boxd.it/2b0q\n", "watchlist.csv")
    assert watchlist.lines[0].reference.lid == "2b0q"
    text = parse_film_list("Heat (1995)\n\n# a note\nboxd.it/2b0q\nfilm-3\n"
                           "Crouching Tiger, Hidden Dragon (2000)\n", "films.txt")
    assert [line.line for line in text.lines] == [1, 4, 5, 6]
    assert text.lines[3].reference.title == "Crouching Tiger, Hidden Dragon"
    assert film_reference("https://letterboxd.com/dave/film/heat/reviews/").slug == "heat"
    assert film_reference("https://letterboxd.com/dave/list/best/") is None


# --- recent taste ------------------------------------------------------------------------

def test_since_folds_in_only_recent_ratings_and_changes_the_list(dataset: Path, tmp_path,
                                                                 capsys) -> None:
    """Loved comedies (even films) until 2023, then horror (odd films) since 2025."""
    old = [(*title(film), 9 if film % 2 == 0 else 2, "2022-05-01") for film in range(0, 60)]
    new = [(*title(film), 9 if film % 2 == 1 else 2, "2025-03-01") for film in range(60, 76)]
    export = dated_export_zip(tmp_path / "changed.zip", old + new,
                              watched=[(*title(80), "2021-01-01")])
    logged = {f"film-{film}" for film in [*range(0, 76), 80]}
    every = [pick["slug"] for pick in ask(dataset, capsys, str(export), "-n", "10")]
    recent = [pick["slug"] for pick in ask(dataset, capsys, str(export), "-n", "10",
                                           "--since", "2025-01-01")]
    assert not (set(every) | set(recent)) & logged  # earlier films never come back
    horror = lambda slugs: sum(film_number(slug) % 2 for slug in slugs) / len(slugs)  # noqa: E731
    assert horror(every) <= 0.3 and horror(recent) >= 0.7


def test_a_member_without_dates_counts_as_of_their_latest_scrape(dataset: Path,
                                                                 capsys) -> None:
    imported_on = date.today()  # the import recorded today as every member's scrape
    plain = ask(dataset, capsys, "user3", "-n", "10")
    assert ask(dataset, capsys, "user3", "-n", "10", "--since", imported_on.isoformat()) == plain
    taste = UserTaste("member", np.array([1, 2]), np.array([8, 9]), np.array([1, 2]), None,
                      "", source=TasteSource.DATASET)
    with pytest.raises(BadInputError, match="read on 2020-01-01"):
        recent_taste(taste, SinceRequest(date(2021, 1, 1), read_on=date(2020, 1, 1)),
                     today=date(2022, 1, 1))


# --- films like X ------------------------------------------------------------------------

def test_films_like_one_come_with_their_shared_fans(dataset: Path, ratings, capsys) -> None:
    similar = ask(dataset, capsys, "--like", "Film 10 (1970)", "-n", "15")
    assert similar["film"]["slug"] == "film-10"
    slugs = [film["slug"] for film in similar["films"]]
    assert len(slugs) == 15 and "film-10" not in slugs
    assert sum(film_number(slug) % 2 == 0 for slug in slugs) >= 12  # its own taste's films
    fans = set(ratings.loc[(ratings["movie_id"] == "film-10") & (ratings["rating_val"] >= 8),
                           "user_id"])
    assert similar["fans"] == len(fans)
    loved = ratings[ratings["user_id"].isin(fans) & (ratings["rating_val"] >= 8)]
    shared = loved["movie_id"].value_counts()
    for film in similar["films"]:
        assert film["shared_fans"] == shared.get(film["slug"], 0)
    similarities = [film["similarity"] for film in similar["films"]]
    assert similarities == sorted(similarities, reverse=True)
    assert ask(dataset, capsys, "--like", "film-10", "-n", "15") == similar
    assert ask(dataset, capsys, "--like", "https://letterboxd.com/film/film-10/",
               "-n", "15") == similar


# --- output ------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["user4", "--match", "user5"],
                                  ["user4", "--with", "user5", "--with", "user6"],
                                  ["--like", "film-3"]])
def test_each_answer_reads_well_at_80_columns(dataset: Path, capsys, args) -> None:
    out = table(dataset, capsys, *args)
    assert out.strip()
    assert max(len(line) for line in out.splitlines()) <= 80


def test_a_given_list_table_marks_seen_films(dataset: Path, ratings, tmp_path, capsys) -> None:
    seen = sorted(logged_by(ratings, "user4"), key=film_number)[0]
    listed = tmp_path / "list.txt"
    listed.write_text(f"{seen}\nfilm-1\nfilm-2\n")
    out = table(dataset, capsys, "user4", "--from-list", str(listed))
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "seen: you rated it" in out


# --- bad input ---------------------------------------------------------------------------

def one_error_line(dataset: Path, capfd: pytest.CaptureFixture, *args: str) -> str:
    """Run as a person does; the exit code must be 2 and stderr one line."""
    before = snapshot(dataset)
    capfd.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli.run(main, [*args, "--data-dir", str(dataset), "-q"])
    assert exited.value.code == EXIT_BAD_INPUT
    error = capfd.readouterr().err.strip().splitlines()
    assert len(error) == 1, error
    assert snapshot(dataset) == before
    return error[0]


def test_bad_input_is_one_line_and_exit_2(dataset: Path, tmp_path: Path, capfd) -> None:
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    assert "in the future" in one_error_line(dataset, capfd, "user4", "--since", tomorrow)
    assert "not a date" in one_error_line(dataset, capfd, "user4", "--since", "last week")
    assert "no list file" in one_error_line(dataset, capfd, "user4", "--from-list",
                                            str(tmp_path / "missing.txt"))
    binary = tmp_path / "poster.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    assert "not UTF-8" in one_error_line(dataset, capfd, "user4", "--from-list", str(binary))
    broken = tmp_path / "list.csv"
    broken.write_text("Letterboxd list export v7\nDate,Name,Tags,URL,Description\n")
    assert "no films' header" in one_error_line(dataset, capfd, "user4", "--from-list",
                                                str(broken))
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n\n")
    assert "names no film" in one_error_line(dataset, capfd, "user4", "--from-list", str(empty))
    assert "no film of the dataset matches" in one_error_line(dataset, capfd, "--like",
                                                              "No Such Film (1901)")
    assert "a path" in one_error_line(dataset, capfd, "user4", "--match", "./nobody.zip")
    assert "logged no film on or after" in one_error_line(
        dataset, capfd, str(export_of(tmp_path / "old.zip", pd.DataFrame(
            {"user_id": ["x"], "film": [3], "rating_val": [8]}), "x")),
        "--since", "2025-01-01")


@pytest.mark.parametrize("args", [
    ["user1", "--match", "user2", "--with", "user3"],
    ["user1", "--like", "film-3"],
    ["user1", "--group-rule", "average"],
    ["--like", "film-3", "--since", "2024-01-01"],
    ["user1", "--match", "user2", "--format", "csv"],
    ["user1", "--with", "user2", "--watchlist-only"],
    ["user1", "--from-list", "x.txt", "--letterboxd-list", "out.csv"],
])
def test_questions_that_cannot_go_together_are_usage_errors(dataset: Path, args) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*args, "--data-dir", str(dataset)])
    assert exited.value.code == EXIT_BAD_INPUT


def test_the_help_names_every_question() -> None:
    shown = subprocess.run([sys.executable, str(PROJECT_ROOT / "recommend.py"), "--help"],
                           capture_output=True, text=True, check=True).stdout
    for flag in ("--match", "--with", "--group-rule", "--from-list", "--since", "--like"):
        assert flag in shown
