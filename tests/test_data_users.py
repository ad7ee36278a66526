"""`compile_training_data.py stats` and `export`: the dataset for people who analyse it."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cli
from compile_training_data import main
from dataset import layout
from dataset import loading
from dataset.summary import summarize
from errors import EXIT_BAD_INPUT
from load_save_and_translate_data import DatasetStore, exclusive_writer, load_ratings_dataset
from tests.conftest import SHARED_DATASET_DIR
from tests.helpers import copy_fixture_dataset, film, scraped, snapshot

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
FIRST_COLUMNS = ["username", "slug", "title", "year", "rating", "stars", "liked"]


@pytest.fixture
def fixture_dataset(tmp_path: Path) -> Path:
    """Refreshed, failed, private and gone users, a formula title and a lone CR in one."""
    return copy_fixture_dataset(tmp_path / "fixture")


@pytest.fixture
def liked_dataset(tmp_path: Path) -> Path:
    """Likes that change on a refresh, so a like read from the dead block would show."""
    data_dir = tmp_path / "liked"
    store = DatasetStore.open(data_dir, create=True)
    store.commit_batch([scraped("alice", film("heat", 9, liked=True), film("alien", 4),
                                film("brazil", None)),
                        scraped("bob", film("alien", 7, liked=True), film("heat", 3),
                                film("sum", 5, title="=SUM(A1:A9)"))], now=NOW)
    store.commit_batch([scraped("alice", film("heat", 8), film("alien", 10, liked=True),
                                film("ran", 6, title='Ran, "the" "film"\r'))],
                       now=NOW + timedelta(days=30))
    store.compact()
    return data_dir


def run(capsys: pytest.CaptureFixture, *argv: str) -> str:
    capsys.readouterr()
    assert main([*argv, "-q"]) == 0
    return capsys.readouterr().out


def one_error_line(capsys: pytest.CaptureFixture, *argv: str) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli.run(main, [*argv, "-q"])
    assert exited.value.code == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), lines
    assert captured.out == ""
    return lines[0]


def rating_table(data_dir: Path) -> pd.DataFrame:
    """Every current rating with readable names, straight from the loader."""
    data = load_ratings_dataset(data_dir)
    films = data.films.reset_index(drop=True)
    return pd.DataFrame({"username": np.asarray(data.usernames)[data.user_index],
                         "film": data.film_index, "slug": films["slug"].to_numpy()[data.film_index],
                         "rating": data.rating.astype(int)})


# --- stats ------------------------------------------------------------------------------

def assert_summary_agrees(got: dict, ratings: pd.DataFrame, users: int, films: int,
                          titles: pd.Series) -> None:
    """`got` (the JSON) against `ratings` (username, slug, rating) computed with pandas."""
    per_user = ratings.groupby("username").size()
    per_film = ratings.groupby("slug").size()
    assert got["users"] == users and got["films"] == films
    assert got["rated_users"] == len(per_user) and got["rated_films"] == len(per_film)
    assert got["ratings"] == len(ratings)
    assert got["density"] == pytest.approx(len(ratings) / (len(per_user) * len(per_film)))
    assert got["mean_stars"] == pytest.approx(ratings["rating"].mean() / 2)
    histogram = ratings["rating"].value_counts().reindex(range(1, 11), fill_value=0)
    assert got["histogram"] == {f"{rating / 2:g}": int(count)
                                for rating, count in histogram.items()}
    assert got["median_ratings_per_user"] == per_user.median()
    assert got["most_ratings_by_a_user"] == per_user.max()
    assert got["median_ratings_per_film"] == per_film.median()
    top = [row["ratings"] for row in got["most_rated"]]
    assert top == sorted(per_film, reverse=True)[:len(top)] and len(top) == min(10, len(per_film))
    for row in got["most_rated"]:
        assert row["ratings"] == per_film[row["slug"]]
        assert row["mean_stars"] == pytest.approx(
            ratings[ratings["slug"] == row["slug"]]["rating"].mean() / 2)
        assert row["title"] == titles[row["slug"]]


def test_stats_agree_with_pandas_on_a_dataset_with_dead_blocks(fixture_dataset: Path,
                                                                capsys) -> None:
    got = json.loads(run(capsys, "stats", "--data-dir", str(fixture_dataset), "--format", "json"))
    films = pd.read_csv(fixture_dataset / layout.FILM_MAPPINGS_FILE, dtype=str,
                        keep_default_na=False)
    users = pd.read_csv(fixture_dataset / layout.USER_MAPPINGS_FILE, dtype=str)
    assert_summary_agrees(got, rating_table(fixture_dataset), len(users), len(films),
                          films.set_index("slug")["title"])
    assert got["watched_unrated"] == 0  # alice's unrated film was in her dead block
    assert got["dataset"] == str(fixture_dataset)
    assert got["scrapes"]["newest"] == "2026-12-11T12:00:00Z"  # alice's refresh
    assert got["scrapes"]["oldest"] == "2026-11-01T12:00:00Z"  # bob (carol has no ratings)


def test_scrape_ages_are_counted_from_each_users_latest_decisive_scrape(
        fixture_dataset: Path) -> None:
    data = load_ratings_dataset(fixture_dataset, scrape_times=True)
    ages = summarize(data, now=datetime(2026, 12, 15, tzinfo=timezone.utc)).scrapes
    # alice, read 4 days before; bob and frank 44 days before; the others have no ratings.
    assert ages.users_by_age == {"under 7 days": 1, "7 to 30 days": 0, "30 to 90 days": 2,
                                 "90 to 365 days": 0, "over 365 days": 0}
    assert ages.median == "2026-11-01T13:00:00Z"


def test_stats_text_fits_80_columns_and_names_the_most_rated_film(fixture_dataset: Path,
                                                                   capsys) -> None:
    out = run(capsys, "stats", "--data-dir", str(fixture_dataset))
    first, *rest = out.splitlines()
    assert first == f"Dataset in {fixture_dataset}"  # a path as long as it is
    assert max(len(line) for line in rest) <= 80
    assert "  1. Heat (1995)" in out and "density" in out and "scraped" in out
    assert "\r" not in out  # the lone carriage return of a title never reaches the terminal


def test_stats_and_export_take_no_lock_and_change_nothing(fixture_dataset: Path,
                                                          tmp_path: Path, capsys) -> None:
    before = snapshot(fixture_dataset)
    with exclusive_writer(fixture_dataset):  # a builder at work
        run(capsys, "stats", "--data-dir", str(fixture_dataset))
        run(capsys, "export", str(tmp_path / "out"), "--data-dir", str(fixture_dataset))
    assert snapshot(fixture_dataset) == before


# --- export -----------------------------------------------------------------------------

def read_export(folder: Path, output_format: str, name: str = "ratings") -> pd.DataFrame:
    path = folder / f"{name}.{output_format}"
    if output_format == "parquet":
        return pd.read_parquet(path, dtype_backend="numpy_nullable")
    numbers = ("year", "letterboxd_id", "runtime", "rating_count", "average_rating")
    return pd.read_csv(path, dtype={"username": str, "slug": str, "title": str, "lid": str,
                                    "genres": str, "language": str, "countries": str,
                                    "content_type": str, "details_fetched": str,
                                    "liked": "boolean", "year": "Int64", "runtime": "Int64",
                                    "rating_count": "Int64"},
                       keep_default_na=False,
                       na_values={column: [""] for column in (*numbers, "liked")})


def assert_round_trips(data_dir: Path, folder: Path, output_format: str) -> pd.DataFrame:
    """The export read back holds exactly the dataset's ratings, films and unrated films."""
    exported = read_export(folder, output_format)
    data = load_ratings_dataset(data_dir)
    films = data.films.reset_index(drop=True)
    assert list(exported.columns) == FIRST_COLUMNS + [
        name for name in films.columns if name not in ("slug", "title", "year")]
    expected = rating_table(data_dir)
    assert sorted(zip(exported["username"], exported["slug"], exported["rating"])) == \
        sorted(zip(expected["username"], expected["slug"], expected["rating"]))
    assert (exported["stars"] == exported["rating"] / 2).all()
    by_slug = films.set_index("slug")
    for name in ("title", "year", *(column for column in films.columns
                                    if column not in ("slug", "title", "year"))):
        wanted = by_slug.loc[exported["slug"], name].reset_index(drop=True)
        got = exported[name].reset_index(drop=True)
        assert (got.isna() == wanted.isna()).all(), name
        assert (got[~got.isna()].astype(str) == wanted[~wanted.isna()].astype(str)).all(), name
    unrated = read_export(folder, output_format, "watched_unrated")
    assert sorted(zip(unrated["username"], unrated["slug"])) == sorted(
        zip(np.asarray(data.usernames)[data.unrated_user],
            films["slug"].to_numpy()[data.unrated_film]))
    assert not list(folder.glob(".*"))  # no temporary file left behind
    return exported


@pytest.mark.parametrize("output_format", ["parquet", "csv"])
def test_export_round_trips_with_exact_titles_and_the_current_likes(
        liked_dataset: Path, fixture_dataset: Path, tmp_path: Path, capsys,
        output_format: str) -> None:
    folder = tmp_path / "export"
    out = run(capsys, "export", str(folder), "--data-dir", str(liked_dataset), "--format",
              output_format)
    assert f"ratings.{output_format} (6 rows)" in out
    exported = assert_round_trips(liked_dataset, folder, output_format)
    likes = {(user, slug): liked for user, slug, liked in
             zip(exported["username"], exported["slug"], exported["liked"])}
    assert likes == {("alice", "heat"): False, ("alice", "alien"): True, ("alice", "ran"): False,
                     ("bob", "alien"): True, ("bob", "heat"): False, ("bob", "sum"): False}
    # Machine-facing: text exactly as scraped, no spreadsheet prefix, quotes and CR kept.
    assert {'Ran, "the" "film"\r', "=SUM(A1:A9)"} <= set(exported["title"])

    other = tmp_path / "fixture_export"
    run(capsys, "export", str(other), "--data-dir", str(fixture_dataset), "--format",
        output_format)
    exported = assert_round_trips(fixture_dataset, other, output_format)
    assert "Carriage\rReturn" in set(exported["title"])


def test_an_imported_dataset_exports_likes_as_unknown(tmp_path: Path, capsys) -> None:
    (tmp_path / "ratings.csv").write_text("user_id,movie_id,rating_val\nann,heat-1995,8\n"
                                          "ann,alien,3\nben,alien,10\n")
    (tmp_path / "movies.csv").write_text("movie_id,movie_title,year_released,genres\n"
                                         "heat-1995,Heat,1995,Crime|Drama\nalien,Alien,,Horror\n")
    data_dir = tmp_path / "data"
    run(capsys, "import", str(tmp_path / "ratings.csv"), "--movies", str(tmp_path / "movies.csv"),
        "--output-dir", str(data_dir))
    run(capsys, "export", str(tmp_path / "out"), "--data-dir", str(data_dir))
    exported = assert_round_trips(data_dir, tmp_path / "out", "parquet")
    assert exported["liked"].isna().all()
    assert set(exported["genres"]) == {"Crime|Drama", "Horror"}
    assert exported["year"].isna().sum() == 2  # Alien's year is unknown


def test_every_column_of_the_film_table_is_exported(liked_dataset: Path, tmp_path: Path,
                                                    capsys, monkeypatch) -> None:
    """The film table may grow more columns (directors, studios ...): all of them reach the
    export, whatever they are called."""
    original = loading.load_film_table

    def with_more_columns(*args, **kwargs) -> pd.DataFrame:
        films = original(*args, **kwargs)
        return films.assign(directors="Agnès Varda|Jacques Demy",
                            studio_count=pd.array([1 + i for i in range(len(films))], "Int64"),
                            rating="clash")

    monkeypatch.setattr(loading, "load_film_table", with_more_columns)
    run(capsys, "export", str(tmp_path / "out"), "--data-dir", str(liked_dataset))
    exported = pd.read_parquet(tmp_path / "out" / "ratings.parquet")
    assert list(exported.columns)[-3:] == ["directors", "studio_count", "film_rating"]
    assert (exported["directors"] == "Agnès Varda|Jacques Demy").all()
    assert exported["rating"].dtype == np.int8


def test_export_replaces_its_files_but_never_a_folder_or_a_device(
        liked_dataset: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "ratings.parquet").write_bytes(b"an old export")
    run(capsys, "export", str(folder), "--data-dir", str(liked_dataset))
    assert (folder / "ratings.parquet").read_bytes()[:4] == b"PAR1"

    (folder / "watched_unrated.csv").mkdir()
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    before = snapshot(tmp_path)
    for target, message in ((folder, "not a regular file"), (a_file, "not a folder"),
                            (Path("/dev/null"), "not a folder"),
                            (tmp_path / "missing" / "out", "does not exist")):
        line = one_error_line(capsys, "export", str(target), "--format", "csv", "--data-dir",
                              str(liked_dataset))
        assert message in line
    assert snapshot(tmp_path) == before


def test_a_folder_without_a_dataset_is_one_line(tmp_path: Path, capsys) -> None:
    assert "holds no dataset" in one_error_line(capsys, "stats", "--data-dir", str(tmp_path))
    assert "holds no dataset" in one_error_line(capsys, "export", str(tmp_path / "out"),
                                                "--data-dir", str(tmp_path))
    assert list(tmp_path.iterdir()) == []


# --- the shared 500k sample -------------------------------------------------------------

def test_stats_and_export_of_the_real_sample_agree_with_its_source_files(
        shared_sample_dataset: Path, tmp_path: Path, capsys) -> None:
    source = pd.read_csv(SHARED_DATASET_DIR / "ratings.csv.gz")
    source = source.rename(columns={"user_id": "username", "movie_id": "slug",
                                    "rating_val": "rating"})
    source["username"] = source["username"].str.lower()
    movies = pd.read_csv(SHARED_DATASET_DIR / "movies.csv.gz", dtype=str, keep_default_na=False)
    titles = movies.set_index("movie_id")["movie_title"]
    got = json.loads(run(capsys, "stats", "--data-dir", str(shared_sample_dataset),
                         "--format", "json"))
    assert_summary_agrees(got, source, source["username"].nunique(), source["slug"].nunique(),
                          titles)

    run(capsys, "export", str(tmp_path / "out"), "--data-dir", str(shared_sample_dataset))
    exported = assert_round_trips(shared_sample_dataset, tmp_path / "out", "parquet")
    assert sorted(zip(exported["username"], exported["slug"], exported["rating"])) == \
        sorted(zip(source["username"], source["slug"], source["rating"]))
    genres = movies.set_index("movie_id")["genres"]
    sample = exported.sample(200, random_state=0)
    assert (sample["genres"].to_numpy() == genres[sample["slug"]].to_numpy()).all()
