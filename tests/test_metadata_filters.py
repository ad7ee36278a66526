"""The metadata filters give only films that satisfy them, on an imported dataset and on a
scraped one whose film pages `compile_training_data.py films` has read."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from compile_training_data import main as build
from errors import BadInputError
from load_save_and_translate_data import load_film_table
from recommend import main as recommend
from simulated_site import SiteData, SimulatedSite

FILTERS = [("--language", "ja"), ("--language", "Japanese"), ("--max-runtime", "100"),
           ("--min-runtime", "120"), ("--genre", "horror"), ("--exclude-genre", "drama"),
           ("--country", "FR"), ("--obscurity", "50")]


def satisfies(films: pd.DataFrame, flag: str, value: str, counts: pd.Series) -> pd.Series:
    """Which films pass one filter, worked out from the film table directly."""
    genres = films["genres"].str.lower().str.split("|")
    if flag == "--language":
        return films["language"] == "ja"
    if flag == "--max-runtime":
        return films["runtime"].le(int(value)).fillna(False)
    if flag == "--min-runtime":
        return films["runtime"].ge(int(value)).fillna(False)
    if flag == "--genre":
        return genres.map(lambda names: value in names)
    if flag == "--exclude-genre":
        return ~genres.map(lambda names: value in names)
    if flag == "--country":
        return films["countries"].str.split("|").map(lambda codes: value in codes)
    if flag == "--obscurity":
        return counts <= counts[counts > 0].quantile(0.5)
    raise ValueError(flag)


def picks(data_dir: Path, person: list[str], capsys, *flags: str) -> list[str]:
    assert recommend([*person, "--data-dir", str(data_dir), "-n", "40", "--format", "json",
                      "-q", *flags]) == 0
    return [pick["slug"] for pick in json.loads(capsys.readouterr().out)]


def check_every_filter(data_dir: Path, person: list[str], capsys,
                       filters: list[tuple[str, str]]) -> None:
    films = load_film_table(data_dir).set_index("slug")
    counts = pd.Series(0, index=films.index)
    ratings = pd.read_csv(data_dir / "latest_raw_user_ratings.csv")
    counts.iloc[:] = ratings["film_id"].value_counts().reindex(range(len(films)), fill_value=0)
    for flag, value in filters:
        chosen = picks(data_dir, person, capsys, flag, value)
        assert chosen, (flag, value)
        passing = satisfies(films, flag, value.lower() if flag.endswith("genre") else value,
                            counts)
        assert passing[chosen].all(), (flag, value, [s for s in chosen if not passing[s]])
    # Series are left out by default, brought back on request.
    series = set(films.index[films["content_type"] == "tv"])
    assert not series.intersection(picks(data_dir, person, capsys, "-n", "400"))


def test_on_a_scraped_dataset_after_the_film_pass(tmp_path: Path, capsys) -> None:
    site_data = SiteData.generate(seed=5, n_users=60, n_films=400)
    data_dir = tmp_path / "data"
    with SimulatedSite(site_data) as site:
        flags = ["--base-url", site.base_url, "--rate", "0", "--output-dir", str(data_dir), "-q"]
        assert build(["new", "--users", "50", *flags]) == 0
        with pytest.raises(BadInputError, match="no language metadata.*films"):
            recommend(["--data-dir", str(data_dir), "--language", "ja", "anyone", "-q"])
        assert build(["films", *flags]) == 0
    capsys.readouterr()
    updates = pd.read_csv(data_dir / "latest_user_updates.csv")
    person = updates.sort_values("n_ratings")["username"].iloc[len(updates) // 3]
    check_every_filter(data_dir, [person], capsys, FILTERS)


def test_on_the_imported_shared_sample(tmp_path: Path, capsys, shared_dataset_dir: Path) -> None:
    data_dir = tmp_path / "data"
    assert build(["import", str(shared_dataset_dir / "ratings.csv.gz"), "--movies",
                  str(shared_dataset_dir / "movies.csv.gz"), "--output-dir", str(data_dir),
                  "-q"]) == 0
    capsys.readouterr()
    ratings = pd.read_csv(shared_dataset_dir / "ratings.csv.gz")
    person = sorted(ratings["user_id"].unique())[100]
    films = load_film_table(data_dir)
    assert (films["countries"] == "").all()  # the sample's movies file has no countries
    check_every_filter(data_dir, [person], capsys,
                       [pair for pair in FILTERS if pair[0] != "--country"])
    with pytest.raises(BadInputError, match="no country metadata"):
        recommend([person, "--data-dir", str(data_dir), "--country", "FR", "-q"])
