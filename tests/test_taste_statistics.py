"""`recommend.py USER --stats [--plot FILE.png]`: a person's statistics against the
community, checked against a direct pandas computation on the same data."""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

import cli
from compile_training_data import main as build_main
from dataset import layout
from errors import EXIT_BAD_INPUT
from films.matching import FilmCatalogue
from load_save_and_translate_data import load_ratings_dataset
from presentation.charts import COMMUNITY_COLOUR, DPI, PERSON_COLOUR, SIZE_INCHES
from recommend import main
from recommender import cache as model_cache
from recommender.dataset_index import INDEX_META_FILE
from recommending import community_cache
from recommending.community_cache import COMMUNITY_FILE
from recommending.statistics import community_of
from simulated_site import SiteData, SimulatedSite

GENRES = ("Horror", "Comedy|Drama", "Drama", "Horror|Thriller", "Animation|Comedy")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 users of 90 films with genres and years over seven decades, imported like a
    published dataset; two tastes, some generous and some harsh raters."""
    folder = tmp_path_factory.mktemp("stats")
    rng = np.random.default_rng(12)
    lines = ["user_id,movie_id,rating_val"]
    for user in range(80):
        leaning = (user % 5) - 2          # -2 harsh .. +2 generous, in half stars
        size = int(rng.integers(8, 60))    # some below the 10 ratings of the reference
        for film in rng.choice(90, size=size, replace=False):
            liked = (film % 2) == (user % 2)
            rating = round(rng.normal(7.5 if liked else 4.5, 1.5)) + leaning
            lines.append(f"user{user},film-{film},{int(np.clip(rating, 1, 10))}")
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    movies = ["movie_id,movie_title,year_released,genres"] + [
        f"film-{film},Film {film},{1950 + film % 70},{GENRES[film % len(GENRES)]}"
        for film in range(90)]
    (folder / "movies.csv").write_text("\n".join(movies) + "\n")
    data_dir = folder / "data"
    assert build_main(["import", str(folder / "ratings.csv"), "--movies",
                       str(folder / "movies.csv"), "--output-dir", str(data_dir), "-q"]) == 0
    return data_dir


def statistics_json(data_dir: Path, capsys: pytest.CaptureFixture, *args: str) -> dict:
    """`recommend.py ARGS --stats --format json`: ARGS names the person first."""
    capsys.readouterr()
    assert main([*args, "--stats", "--format", "json", "--data-dir", str(data_dir), "-q"]) == 0
    return json.loads(capsys.readouterr().out)


# --- the direct computation the command must agree with ----------------------------------

def percentile_below(reference: pd.Series, value: float) -> float:
    """Share below `value`, ties (equal up to rounding) counting half."""
    tie = np.isclose(reference, value, rtol=0, atol=1e-9)
    return 100 * ((reference < value).sum() - (tie & (reference < value)).sum()
                  + 0.5 * tie.sum()) / len(reference)


def expected(data_dir: Path, person: pd.DataFrame, member: str | None) -> dict:
    """The figures from a plain table of (user, film, rating): `person` holds the films
    (ids) and ratings to describe, `member` their username when they are in the data."""
    data = as_the_model_sees_it(data_dir)
    table = pd.DataFrame({"user": np.asarray(data.usernames)[data.user_index],
                          "film": data.film_index, "rating": data.rating.astype(int)})
    others = table[table["user"] != member]
    film_mean = others.groupby("film")["rating"].mean()
    compared = person[person["film"].isin(film_mean.index)]
    difference = compared["rating"].to_numpy() - film_mean[compared["film"]].to_numpy()

    per_user = table.groupby("user")["rating"]
    counts = table.groupby("film").size()
    obscurity = table.assign(score=np.log1p(counts[table["film"]].to_numpy() - 1)) \
        .groupby("user")["score"].mean()
    reference = per_user.size()[lambda sizes: sizes >= 10].index.difference([member])
    spreads = per_user.std(ddof=0)[reference] / 2
    person_others = counts[person["film"]].to_numpy() - (member is not None)
    person_obscurity = np.log1p(person_others).mean()

    genres = data.films["genres"].to_numpy()[compared["film"]]
    leans = (pd.DataFrame({"genre": genres, "difference": difference / 2})
             .assign(genre=lambda frame: frame["genre"].str.split("|")).explode("genre")
             .groupby("genre")["difference"].agg(["count", "mean"]))
    leans = leans[leans["count"] >= 5]
    years = data.films["year"].astype(float).to_numpy()
    decades = pd.Series(years[person["film"]] // 10 * 10).value_counts(normalize=True)
    community_decades = pd.Series(years[table["film"]] // 10 * 10).value_counts(normalize=True)
    return {
        "ratings": len(person), "mean_stars": person["rating"].mean() / 2,
        "compared_films": len(compared),
        "compared_mean_stars": compared["rating"].mean() / 2,
        "community_mean_stars": film_mean[compared["film"]].mean() / 2,
        "spread_stars": person["rating"].std(ddof=0) / 2,
        "spread_percentile": percentile_below(spreads, person["rating"].std(ddof=0) / 2),
        "consensus": np.corrcoef(compared["rating"], film_mean[compared["film"]])[0, 1],
        "obscurity_percentile": 100 - percentile_below(obscurity[reference], person_obscurity),
        "median_film_ratings": float(np.median(person_others)),
        "reference_members": len(reference),
        "histogram": person["rating"].value_counts().reindex(range(1, 11), fill_value=0),
        "community_histogram": others[others["film"].isin(person["film"])]["rating"]
        .value_counts().reindex(range(1, 11), fill_value=0),
        "genres_above": leans[leans["mean"] > 0].sort_values("mean", ascending=False)[:3],
        "genres_below": leans[leans["mean"] < 0].sort_values("mean")[:3],
        "decades": decades, "community_decades": community_decades,
    }


def assert_agrees(got: dict, want: dict) -> None:
    for name in ("ratings", "compared_films", "reference_members"):
        assert got[name] == want[name], name
    for name in ("mean_stars", "compared_mean_stars", "community_mean_stars", "spread_stars",
                 "consensus", "median_film_ratings"):
        assert got[name] == pytest.approx(want[name], abs=1e-9), name
    for name in ("spread_percentile", "obscurity_percentile"):
        assert got[name] == pytest.approx(want[name], abs=1e-6), name
    for name in ("histogram", "community_histogram"):
        assert list(got[name].values()) == want[name].tolist(), name
        assert list(got[name]) == [f"{rating / 2:g}" for rating in range(1, 11)]
    for side in ("genres_above", "genres_below"):
        assert [lean["genre"] for lean in got[side]] == list(want[side].index), side
        assert [lean["difference"] for lean in got[side]] == pytest.approx(
            want[side]["mean"].tolist(), abs=1e-9)
        assert [lean["films"] for lean in got[side]] == want[side]["count"].tolist()
    shares = {row["decade"]: row["share"] for row in got["decades"] if row["films"]}
    assert shares == pytest.approx(want["decades"].to_dict(), abs=1e-9)
    community = {row["decade"]: row["community_share"] for row in got["decades"]
                 if row["community_share"]}
    assert community == pytest.approx(want["community_decades"].to_dict(), abs=1e-9)
    assert got["difference"] == pytest.approx(
        want["compared_mean_stars"] - want["community_mean_stars"], abs=1e-9)


def as_the_model_sees_it(data_dir: Path):
    """The dataset with one film under two slugs counted once, as the model counts it."""
    data = load_ratings_dataset(data_dir)
    return model_cache.by_film_identity(data, FilmCatalogue(data.films).canonical)


def member_ratings(data_dir: Path, username: str) -> pd.DataFrame:
    data = as_the_model_sees_it(data_dir)
    mine = data.user_index == data.usernames.index(username)
    return pd.DataFrame({"film": data.film_index[mine], "rating": data.rating[mine].astype(int)})


# --- the figures ------------------------------------------------------------------------

@pytest.mark.parametrize("username", ["user0", "user3", "user7"])
def test_a_members_figures_agree_with_pandas(dataset: Path, capsys, username: str) -> None:
    got = statistics_json(dataset, capsys, username)
    assert_agrees(got, expected(dataset, member_ratings(dataset, username), username))
    assert got["name"] == username


def test_generous_and_harsh_raters_are_told_apart(dataset: Path, capsys) -> None:
    # user % 5 sets the leaning: 0 rates a star below the others' mean, 4 a star above.
    harsh = statistics_json(dataset, capsys, "user10")
    generous = statistics_json(dataset, capsys, "user14")
    assert harsh["leaning"] == "harsh" and harsh["difference"] < -0.25
    assert generous["leaning"] == "generous" and generous["difference"] > 0.25


def export_of(path: Path, data_dir: Path, ratings: pd.DataFrame) -> Path:
    """An export ZIP holding `ratings`, films named by their letterboxd.com URL."""
    slugs = load_ratings_dataset(data_dir).films["slug"].to_numpy()
    rows = ["Date,Name,Year,Letterboxd URI,Rating"] + [
        f"2026-01-01,Film,,https://letterboxd.com/film/{slugs[film]}/,{rating / 2:g}"
        for film, rating in zip(ratings["film"], ratings["rating"])]
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ratings.csv", "\n".join(rows) + "\n")
    return path


def test_an_exports_figures_agree_with_pandas_and_its_path_is_the_person(
        dataset: Path, tmp_path: Path, capsys) -> None:
    """An export is nobody in the dataset: every member counts in its community."""
    ratings = member_ratings(dataset, "user5")
    path = export_of(tmp_path / "letterboxd-someone.zip", dataset, ratings)
    got = statistics_json(dataset, capsys, str(path))
    assert_agrees(got, expected(dataset, ratings, member=None))
    assert got["name"] == path.name
    assert statistics_json(dataset, capsys, "--export", str(path)) == got
    folder = tmp_path / "unzipped.export"  # a folder is a path too, dot or not
    zipfile.ZipFile(path).extractall(folder)
    assert statistics_json(dataset, capsys, str(folder))["histogram"] == got["histogram"]


def test_the_text_reads_as_sentences_within_80_columns(dataset: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["user14", "--stats", "--data-dir", str(dataset), "-q"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "generous:" in out and "above the community" in out
    assert "more obscure than" in out and "Genres above" in out
    for label in ("½★", "5★", "1950s", "2010s"):
        assert any(line.startswith(label) for line in out.splitlines()), label


def test_the_plot_is_a_real_png_of_the_promised_size(dataset: Path, tmp_path: Path,
                                                      capsys) -> None:
    target = tmp_path / "histogram.png"
    statistics_json(dataset, capsys, "user0", "--plot", str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = imread(target)
    assert pixels.shape[:2] == (round(SIZE_INCHES[1] * DPI), round(SIZE_INCHES[0] * DPI))
    rgb = np.round(pixels[..., :3] * 255).astype(int)
    for colour in (PERSON_COLOUR, COMMUNITY_COLOUR):  # both sets of bars are drawn
        wanted = [int(colour[index:index + 2], 16) for index in (1, 3, 5)]
        assert (rgb == wanted).all(axis=-1).sum() > 2000, colour
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 20  # text too, not a blank page


def test_the_plot_replaces_a_file_but_never_a_folder_or_a_device(dataset: Path, tmp_path: Path,
                                                                 capsys) -> None:
    old = tmp_path / "old.png"
    old.write_bytes(b"old")
    statistics_json(dataset, capsys, "user0", "--plot", str(old))
    assert old.read_bytes()[:4] == b"\x89PNG"
    for target, message in ((tmp_path, "is a folder"), (Path("/dev/null"), "not a regular"),
                            (tmp_path / "missing" / "a.png", "does not exist")):
        errors = one_error_line(["user0", "--stats", "--plot", str(target), "--data-dir",
                                 str(dataset)], capsys)
        assert message in errors
    assert Path("/dev/null").is_char_device()


# --- bad input: one line, exit 2 ----------------------------------------------------------

def one_error_line(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli.run(main, [*argv, "-q"])
    assert exited.value.code == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), lines
    assert captured.out == ""
    return lines[0]


def test_an_unreadable_or_missing_export_is_one_line(dataset: Path, tmp_path: Path,
                                                      capsys) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    assert "neither a ZIP file" in one_error_line(
        [str(junk), "--stats", "--data-dir", str(dataset)], capsys)
    assert "no export ZIP or folder at" in one_error_line(
        [str(tmp_path / "nowhere.zip"), "--stats", "--data-dir", str(dataset)], capsys)
    assert "not a Letterboxd username" in one_error_line(
        ["no-such-user!", "--stats", "--data-dir", str(dataset)], capsys)


def test_flags_that_make_no_sense_with_stats_are_refused(dataset: Path, tmp_path: Path) -> None:
    for args in (["user0", "--plot", str(tmp_path / "a.png")],
                 ["user0", "--stats", "--format", "csv"],
                 ["user0", "--stats", "--letterboxd-list", str(tmp_path / "l.csv")],
                 ["--evaluate", "--stats"]):
        with pytest.raises(SystemExit) as exited:
            main([*args, "--data-dir", str(dataset), "-q"])
        assert exited.value.code == EXIT_BAD_INPUT


# --- on the simulated site: someone outside the dataset, and someone who does not exist --

def test_a_public_profile_is_read_through_the_site_and_an_unknown_user_is_one_line(
        tmp_path: Path, capsys) -> None:
    site_data = SiteData.generate(seed=4, n_users=30, n_films=120)
    data_dir = tmp_path / "data"
    with SimulatedSite(site_data) as site:
        assert build_main(["new", "--base-url", site.base_url, "--rate", "0", "--output-dir",
                           str(data_dir), "--users", "25", "-q"]) == 0
        outsider = list(site_data.users)[-1]
        got = statistics_json(data_dir, capsys, outsider, "--base-url", site.base_url,
                              "--rate", "0")
        assert site.request_count(f"/{outsider}/films/") >= 1
        message = one_error_line(["nobody_here", "--stats", "--base-url", site.base_url,
                                  "--rate", "0", "--data-dir", str(data_dir)], capsys)
    assert "no Letterboxd user" in message
    data = load_ratings_dataset(data_dir)
    film_ids = {slug: index for index, slug in enumerate(data.films["slug"])}
    seen = [(film_ids[entry.slug], entry.rating) for entry in site_data.entries(outsider)
            if entry.rating and entry.slug in film_ids]
    want = expected(data_dir, pd.DataFrame(seen, columns=["film", "rating"]), member=None)
    # A scraped dataset has no genres: the statistics say so rather than guess.
    assert got["genres_above"] is None and got["genres_below"] is None
    assert got["ratings"] == want["ratings"] > 0
    assert got["community_mean_stars"] == pytest.approx(want["community_mean_stars"])
    assert got["obscurity_percentile"] == pytest.approx(want["obscurity_percentile"])
    assert list(got["histogram"].values()) == want["histogram"].tolist()


# --- the shared 500k sample -------------------------------------------------------------

def test_figures_on_the_real_sample_agree_with_pandas(shared_sample_dataset: Path,
                                                      capsys) -> None:
    shared_sample = shared_sample_dataset
    data = load_ratings_dataset(shared_sample)
    counts = np.bincount(data.user_index, minlength=data.n_users)
    for user in (int(np.argmax(counts)), int(np.argmin(np.where(counts > 0, counts, 10**9)))):
        username = data.usernames[user]
        got = statistics_json(shared_sample, capsys, username)
        assert_agrees(got, expected(shared_sample, member_ratings(shared_sample, username),
                                    username))
        assert got["genres_above"] is not None and got["decades"]


def test_impossible_values_anywhere_in_the_cached_index_mean_a_refit(
        dataset: Path, tmp_path: Path, capsys) -> None:
    """The community's figures sum every member's ratings from the memory-mapped index,
    not just the person's: a damaged value in someone else's rows means a refit."""
    before = statistics_json(dataset, capsys, "user0")
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    (copy / layout.MODEL_DIR / COMMUNITY_FILE).unlink()
    meta = json.loads((copy / layout.MODEL_DIR / INDEX_META_FILE).read_text())
    stored = np.load(copy / layout.MODEL_DIR / meta["folder"] / "rating_values.npy",
                     mmap_mode="r+")
    stored[-1] = 11  # the last member's last rating, not user0's
    stored.flush()
    del stored
    assert statistics_json(copy, capsys, "user0") == before
    fresh = json.loads((copy / layout.MODEL_DIR / INDEX_META_FILE).read_text())
    assert fresh["folder"] != meta["folder"]


def test_the_community_figures_are_cached_and_never_trusted_blindly(
        dataset: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    cached = copy / layout.MODEL_DIR / COMMUNITY_FILE
    cached.unlink(missing_ok=True)
    before = statistics_json(copy, capsys, "user3")
    assert cached.is_file()
    computed = []
    monkeypatch.setattr(community_cache, "community_of",
                        lambda data: computed.append(1) or community_of(data))
    assert statistics_json(copy, capsys, "user3") == before and computed == []  # read back
    with np.load(cached, allow_pickle=False) as stored:
        arrays = dict(stored)
    tampered = {**arrays, "film_histograms": arrays["film_histograms"] * 2}
    for damage in (b"not an npz", tampered, {**arrays, "fingerprint": np.array("other")}):
        if isinstance(damage, bytes):
            cached.write_bytes(damage)
        else:
            np.savez(cached, **damage)
        assert statistics_json(copy, capsys, "user3") == before
    assert len(computed) == 3
