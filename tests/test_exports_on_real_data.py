"""People's own exports against a dataset imported from real, messy published data.

The shared 500k sample is imported with its movies file (missing and shifted years,
series among the films, one film under two slugs), and export ZIPs are built from
sample members' own ratings (benchmarks/sample_exports.py). Whatever the rule that finds a film,
no logged film may come back as a pick.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.sample_exports import export_zip
from compile_training_data import main as build
from films.matching import FilmCatalogue, FilmReference
from recommend import main as recommend
from recommender.cache import load_or_fit

PEOPLE = 6


@pytest.fixture(scope="module")
def sample(tmp_path_factory, shared_dataset_dir_module: Path) -> dict:
    folder = tmp_path_factory.mktemp("real")
    source = shared_dataset_dir_module
    assert build(["import", str(source / "ratings.csv.gz"), "--movies",
                  str(source / "movies.csv.gz"), "--output-dir", str(folder / "data"),
                  "-q"]) == 0
    data = load_or_fit(folder / "data")  # fits once for every test here
    ratings = pd.read_csv(source / "ratings.csv.gz")
    movies = pd.read_csv(source / "movies.csv.gz", dtype=str, keep_default_na=False)
    return {"folder": folder, "data": data, "ratings": ratings,
            "movies": movies.set_index("movie_id")}


@pytest.fixture(scope="module")
def shared_dataset_dir_module() -> Path:
    from tests.conftest import SHARED_DATASET_DIR
    if not (SHARED_DATASET_DIR / "ratings.csv.gz").is_file():
        pytest.skip(f"{SHARED_DATASET_DIR} is not available")
    return SHARED_DATASET_DIR


def picks(data_dir: Path, export: Path, capsys, *flags: str) -> list[str]:
    assert recommend(["--export", str(export), "--data-dir", str(data_dir), "-n", "50",
                      "--format", "json", "-q", *flags]) == 0
    return [pick["slug"] for pick in json.loads(capsys.readouterr().out)]


def people(ratings: pd.DataFrame) -> list[str]:
    names = sorted(ratings["user_id"].unique())
    return names[::len(names) // PEOPLE][:PEOPLE]


def test_no_logged_film_comes_back_and_no_series_unless_asked(sample: dict, capsys) -> None:
    data, ratings, movies = sample["data"], sample["ratings"], sample["movies"]
    slugs = data.films["slug"].to_numpy()
    film_id = {slug: index for index, slug in enumerate(slugs)}
    series = set(data.films.loc[data.films["content_type"] == "tv", "slug"])
    assert series  # the sample holds series: the default must leave them out
    found_series = False
    for person in people(ratings):
        rows = ratings[ratings["user_id"] == person]
        export = export_zip(sample["folder"] / f"{person}.zip", rows, movies)
        logged = data.catalogue.same_films([film_id[slug] for slug in rows["movie_id"]])
        logged_slugs = set(slugs[logged])
        films = picks(data_dir := sample["folder"] / "data", export, capsys)
        assert len(films) == 50
        assert not logged_slugs.intersection(films), (person, logged_slugs & set(films))
        assert not series.intersection(films)
        with_tv = picks(data_dir, export, capsys, "--include-tv")
        assert not logged_slugs.intersection(with_tv)
        found_series |= bool(series.intersection(with_tv))
    assert found_series  # --include-tv does bring series back for someone


def test_films_the_metadata_has_no_title_or_year_for_are_matched_through_the_slug(
        sample: dict) -> None:
    films = sample["data"].films.copy()
    # As in files published before these films came out: slug only.
    degraded = films["slug"].isin(["oppenheimer-2023", "barbie", "past-lives",
                                   "killers-of-the-flower-moon", "spider-man-no-way-home"])
    assert degraded.sum() >= 4
    films.loc[degraded, "title"] = films.loc[degraded, "slug"]
    films.loc[degraded, "year"] = pd.NA
    catalogue = FilmCatalogue(films)
    result = catalogue.match([FilmReference("Oppenheimer", 2023), FilmReference("Barbie", 2023),
                              FilmReference("Past Lives", 2023),
                              FilmReference("Killers of the Flower Moon", 2023)])
    assert films["slug"].to_numpy()[result.film_ids].tolist() == [
        "oppenheimer-2023", "barbie", "past-lives", "killers-of-the-flower-moon"]
    assert catalogue.label(int(result.film_ids[0])) == "Oppenheimer (2023)"


def test_different_films_of_one_title_a_year_apart_stay_apart(sample: dict, capsys) -> None:
    data = sample["data"]
    slugs = data.films["slug"].tolist()
    short, feature = slugs.index("whiplash-2013"), slugs.index("whiplash-2014")
    assert data.catalogue.canonical[short] != data.catalogue.canonical[feature]
    result = data.catalogue.match([FilmReference("Whiplash", 2014),
                                   FilmReference("Whiplash", 2013)])
    assert result.film_ids.tolist() == [feature, short]
    assert data.catalogue.same_films([feature]).tolist() == [feature]


@pytest.mark.parametrize("logged_slug", ["frozen-ii", "frozen-2"])
def test_a_film_under_an_old_and_a_new_slug_is_left_out_when_either_is_logged(
        sample: dict, capsys, logged_slug: str) -> None:
    data, movies = sample["data"], sample["movies"]
    slugs = data.films["slug"].tolist()
    both = {slugs.index("frozen-ii"), slugs.index("frozen-2")}
    assert set(data.catalogue.same_films([slugs.index(logged_slug)]).tolist()) == both
    # Someone who loves the Disney films the sample's members love with Frozen II.
    fans = sample["ratings"][sample["ratings"]["movie_id"].isin(["frozen-ii", "frozen-2"])]
    person = fans["user_id"].iloc[0]
    rows = sample["ratings"][sample["ratings"]["user_id"] == person]
    rows = rows[~rows["movie_id"].isin(["frozen-ii", "frozen-2"])]
    rows = pd.concat([rows, pd.DataFrame({"user_id": [person], "movie_id": [logged_slug],
                                          "rating_val": [9]})])
    export = export_zip(sample["folder"] / f"frozen-{logged_slug}.zip", rows, movies)
    films = picks(sample["folder"] / "data", export, capsys, "-n", "300")
    assert not {"frozen-ii", "frozen-2"}.intersection(films)
    assert np.isin(list(both), data.catalogue.same_films(list(both))).all()
