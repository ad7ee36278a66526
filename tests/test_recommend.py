"""recommend.py end to end on datasets the builder's own code writes."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

import config
from dataset import layout
from errors import BadInputError, ConfigError, DatasetError, UnusableFileError
from load_save_and_translate_data import (DatasetStore, ScrapeStatus, UserScrapeRecord,
                                          load_ratings_dataset)
from read_in_data import FilmTile
from recommending import taste
from recommend import main
from recommender import cache as model_cache
from recommender import dataset_index

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
N_FILMS = 120


def film(index: int, rating: int | None) -> FilmTile:
    # Two tastes: even films are horror, odd films are comedy; years spread 1950-2009.
    return FilmTile(slug=f"film-{index}", letterboxd_id=1000 + index, lid=f"L{index:03d}",
                    title=f"Film {index}", year=1950 + index % 60, rating=rating, liked=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 users in two taste groups; popularity falls off with the film index. Enough
    users for the model to learn its second ranking stage (see the test below)."""
    rng = np.random.default_rng(3)
    data_dir = tmp_path_factory.mktemp("dataset")
    store = DatasetStore.open(data_dir, create=True)
    records = []
    popularity = 1.0 / (1 + np.arange(N_FILMS)) ** 0.6
    for user in range(120):
        taste = user % 2
        # people mostly watch what they expect to like, as on the real site
        weights = popularity * np.where(np.arange(N_FILMS) % 2 == taste, 4.0, 1.0)
        chosen = rng.choice(N_FILMS, size=40, replace=False, p=weights / weights.sum())
        tiles = []
        for index in chosen:
            liked = index % 2 == taste
            rating = int(np.clip(round(rng.normal(8.5 if liked else 4.0, 1.0)), 1, 10))
            tiles.append(film(int(index), rating))
        tiles.append(film(int(rng.integers(N_FILMS)), None))
        records.append(UserScrapeRecord(f"user{user}", ScrapeStatus.OK, tuple(tiles)))
    store.commit_batch(records, now=NOW)
    return data_dir


@pytest.fixture
def dataset_copy(dataset: Path, tmp_path: Path) -> Path:
    """The shared dataset, copied for a test that changes its files or its model cache."""
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    return copy


def run(dataset: Path, capsys: pytest.CaptureFixture, *args: str) -> str:
    capsys.readouterr()
    assert main([*args, "--data-dir", str(dataset), "-q"]) == 0
    return capsys.readouterr().out


def recommended_slugs(dataset: Path, capsys, *args: str) -> list[str]:
    out = run(dataset, capsys, *args, "--format", "json")
    return [pick["slug"] for pick in json.loads(out)]


def seen_slugs(dataset: Path, username: str) -> set[str]:
    data = load_ratings_dataset(dataset)
    user = data.usernames.index(username)
    films = np.concatenate([data.film_index[data.user_index == user],
                            data.unrated_film[data.unrated_user == user]])
    return set(data.films["slug"].to_numpy()[films])


def film_number(slug: str) -> int:
    return int(slug.split("-")[1])


def test_these_tests_run_through_a_learned_second_stage(dataset_copy: Path) -> None:
    weights = model_cache.load_or_fit(dataset_copy).model.second_stage.weights
    assert not np.allclose(weights[1:], 0.0)  # not the first stage's order


def test_a_dataset_member_gets_unseen_films_of_their_taste(dataset: Path, capsys) -> None:
    picks = recommended_slugs(dataset, capsys, "user0", "-n", "10")
    assert len(picks) == 10
    assert not set(picks) & seen_slugs(dataset, "user0")
    assert sum(film_number(slug) % 2 == 0 for slug in picks) >= 8  # user0 loves even films
    picks_other = recommended_slugs(dataset, capsys, "user1", "-n", "10")
    assert sum(film_number(slug) % 2 == 1 for slug in picks_other) >= 8


def test_table_output_shows_stars_and_reasons(dataset: Path, capsys) -> None:
    out = run(dataset, capsys, "user0", "-n", "5")
    header, *rows, footer = out.strip("\n").splitlines()
    assert "Film" in header and "Stars" in header and "Because you rated" in header
    assert len(rows) == 5 and rows[0].lstrip().startswith("1.")
    assert all("★" in row and re.search(r"Film \d+ \(\d{4}\)$", row) for row in rows)
    assert "your average" in footer


def test_reasons_name_films_with_their_years(dataset: Path, capsys) -> None:
    """Many films share a title: "because you rated Station" beside a pick called Station
    reads as if a seen film were recommended."""
    picks = json.loads(run(dataset, capsys, "user0", "-n", "5", "--format", "json"))
    reasons = [reason for pick in picks for reason in pick["because"]]
    assert reasons
    for reason in reasons:
        index = int(reason.split()[1])
        assert reason == f"Film {index} ({1950 + index % 60})"


def test_csv_output_marks_watchlist_films(dataset: Path, tmp_path: Path, capsys) -> None:
    path = export_zip(tmp_path / "export.zip", {index: 4.5 for index in range(0, 30, 2)},
                      [], [46, 48])
    rows = list(csv.DictReader(io.StringIO(run(dataset, capsys, "--export", str(path),
                                               "--boost-watchlist", "-n", "10", "--format",
                                               "csv"))))
    marked = {row["slug"] for row in rows if row["on_watchlist"] == "yes"}
    assert marked == {"film-46", "film-48"}
    assert all(row["on_watchlist"] == "" for row in rows if row["slug"] not in marked)


def test_an_empty_list_is_still_valid_json_and_csv(dataset: Path, capsys) -> None:
    narrow = ["user0", "--year-from", "1900", "--year-to", "1901"]
    assert json.loads(run(dataset, capsys, *narrow, "--format", "json")) == []
    assert run(dataset, capsys, *narrow, "--format", "csv").strip().startswith("rank,title")
    assert run(dataset, capsys, *narrow) == ""


def test_a_members_unknown_watchlist_points_to_refresh(dataset: Path, capsys) -> None:
    with pytest.raises(BadInputError, match="--refresh"):
        main(["user0", "--watchlist-only", "--data-dir", str(dataset), "-q"])
    capsys.readouterr()
    assert main(["user0", "--boost-watchlist", "--data-dir", str(dataset), "-q"]) == 0
    warned = capsys.readouterr().err
    assert "--refresh" in warned and "boost-watchlist" in warned


def export_zip(path: Path, rated: dict[int, float], watched: list[int], watchlist: list[int]
               ) -> Path:
    def rows(indices, with_rating=False):
        header = "Date,Name,Year,Letterboxd URI" + (",Rating" if with_rating else "")
        lines = [header]
        for index in indices:
            line = f"2026-01-01,Film {index},{1950 + index % 60},https://boxd.it/L{index:03d}"
            lines.append(line + (f",{rated[index]}" if with_rating else ""))
        return "\n".join(lines) + "\n"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ratings.csv", rows(rated, with_rating=True))
        archive.writestr("watched.csv", rows(watched))
        archive.writestr("watchlist.csv", rows(watchlist))
    return path


def test_export_zip_is_matched_by_lid_and_everything_watched_is_excluded(
        dataset: Path, tmp_path: Path, capsys) -> None:
    rated = {index: 4.5 for index in range(0, 30, 2)} | {index: 1.0 for index in range(1, 30, 2)}
    watched = [40, 42, 44]
    watchlist = [46, 48]
    path = export_zip(tmp_path / "export.zip", rated, watched, watchlist)
    picks = recommended_slugs(dataset, capsys, "--export", str(path), "-n", "20")
    numbers = {film_number(slug) for slug in picks}
    assert not numbers & (set(rated) | set(watched) | set(watchlist))
    assert sum(number % 2 == 0 for number in numbers) >= 16

    only = recommended_slugs(dataset, capsys, "--export", str(path), "--watchlist-only")
    assert sorted(film_number(slug) for slug in only) == watchlist
    boosted = recommended_slugs(dataset, capsys, "--export", str(path), "--boost-watchlist",
                                "-n", "5")
    assert {46, 48} <= {film_number(slug) for slug in boosted}


def test_filters_change_the_list_as_they_should(dataset: Path, tmp_path: Path, capsys) -> None:
    everything = recommended_slugs(dataset, capsys, "user0", "-n", "200")
    recent = recommended_slugs(dataset, capsys, "user0", "-n", "200", "--year-from", "1990")
    assert recent and all(1950 + film_number(slug) % 60 >= 1990 for slug in recent)
    assert set(recent) < set(everything)
    old = recommended_slugs(dataset, capsys, "user0", "-n", "200", "--year-to", "1960")
    assert old and all(1950 + film_number(slug) % 60 <= 1960 for slug in old)
    data = load_ratings_dataset(dataset)
    counts = dict(zip(data.films["slug"], np.bincount(data.film_index, minlength=data.n_films)))
    obscure = recommended_slugs(dataset, capsys, "user0", "-n", "200", "--max-ratings", "25")
    assert obscure and all(counts.get(slug, 0) <= 25 for slug in obscure)
    popular = recommended_slugs(dataset, capsys, "user0", "-n", "200", "--min-ratings", "45")
    assert popular and all(counts[slug] >= 45 for slug in popular)
    with pytest.raises(BadInputError, match="genre"):
        main(["user0", "--data-dir", str(dataset), "--genre", "Horror", "-q"])


def test_letterboxd_list_file_has_the_import_columns(dataset: Path, tmp_path: Path,
                                                     capsys) -> None:
    target = tmp_path / "list.csv"
    run(dataset, capsys, "user0", "-n", "7", "--letterboxd-list", str(target))
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert list(rows[0]) == ["LetterboxdURI", "Title", "Year", "Review"]
    assert len(rows) == 7
    assert all(row["LetterboxdURI"].startswith("https://boxd.it/L") for row in rows)
    assert all(row["Review"].startswith("predicted ") for row in rows)


def test_a_corrupt_or_stale_model_is_refitted_not_trusted(dataset_copy: Path, capsys) -> None:
    copy = dataset_copy
    first = recommended_slugs(copy, capsys, "user0", "-n", "10")
    model_dir = copy / layout.MODEL_DIR
    arrays = next(model_dir.glob("recommender_model.npz"))
    arrays.write_bytes(arrays.read_bytes()[:100])
    assert recommended_slugs(copy, capsys, "user0", "-n", "10") == first
    assert len(arrays.read_bytes()) > 100  # rewritten by the refit
    store = DatasetStore.open(copy)
    store.commit_batch([UserScrapeRecord("newcomer", ScrapeStatus.OK,
                                         tuple(film(i, 9) for i in range(0, 40, 2)))], now=NOW)
    assert recommended_slugs(copy, capsys, "newcomer", "-n", "5")
    meta = json.loads((model_dir / "recommender_model.json").read_text())
    assert meta["n_users"] == 121


@pytest.mark.parametrize("file, text", [
    ("recommender_model.json", lambda meta: json.dumps({**meta, "global_mean": 1e300})),
    ("recommender_model.json", lambda meta: "[" * 100_000 + "]" * 100_000),
    (dataset_index.INDEX_META_FILE, lambda meta: '{"a":' * 50_000 + "1" + "}" * 50_000),
], ids=["global mean 1e300", "model JSON nested deeply", "index JSON nested deeply"])
def test_out_of_range_or_deeply_nested_model_json_means_a_refit(
        dataset_copy: Path, capsys, file: str, text) -> None:
    first = recommended_slugs(dataset_copy, capsys, "user0", "-n", "10")
    path = dataset_copy / layout.MODEL_DIR / file
    path.write_text(text(json.loads(path.read_text())))
    assert recommended_slugs(dataset_copy, capsys, "user0", "-n", "10") == first
    meta = json.loads((dataset_copy / layout.MODEL_DIR / "recommender_model.json").read_text())
    assert 1 <= meta["global_mean"] <= 10  # saved again by the refit
    assert json.loads(path.read_text())


def test_ctrl_c_while_a_stale_cache_loads_stops_rather_than_refits(
        dataset_copy: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """The model file is checked in a thread while the film table is read; the stale
    model's error must not replace the user's interrupt and start a long fit."""
    recommended_slugs(dataset_copy, capsys, "user0", "-n", "5")  # caches the model
    DatasetStore.open(dataset_copy).commit_batch(
        [UserScrapeRecord("newcomer", ScrapeStatus.OK, (film(1, 9), film(3, 8)))], now=NOW)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    def must_not_fit(*args, **kwargs):
        raise AssertionError("refitted after Ctrl-C")

    monkeypatch.setattr(model_cache, "load_film_table", interrupted)
    monkeypatch.setattr(model_cache, "fit_model", must_not_fit)
    with pytest.raises(KeyboardInterrupt):
        model_cache.load_or_fit(dataset_copy)
    monkeypatch.undo()
    assert model_cache.load_or_fit(dataset_copy).model.n_users == 121  # refits when asked


@pytest.mark.parametrize("array, value", [("rating_values", 0), ("rating_values", 11),
                                           ("rating_films", 10_000), ("unrated_films", -1)])
def test_impossible_values_in_the_cached_index_mean_a_refit(
        dataset_copy: Path, capsys, array: str, value: int) -> None:
    """The index is memory-mapped, so its values are checked as a user's rows are read."""
    copy = dataset_copy
    data = load_ratings_dataset(copy)
    user = data.usernames[data.unrated_user[0]]  # has a row in every array
    first = recommended_slugs(copy, capsys, user, "-n", "10")
    meta = json.loads((copy / layout.MODEL_DIR / dataset_index.INDEX_META_FILE).read_text())
    stored = np.load(copy / layout.MODEL_DIR / meta["folder"] / f"{array}.npy", mmap_mode="r+")
    stored[:] = value
    stored.flush()
    del stored
    assert recommended_slugs(copy, capsys, user, "-n", "10") == first
    fresh = json.loads((copy / layout.MODEL_DIR / dataset_index.INDEX_META_FILE).read_text())
    assert fresh["folder"] != meta["folder"]


def test_the_index_json_names_arrays_written_together(dataset_copy: Path, capsys) -> None:
    copy = dataset_copy
    first = recommended_slugs(copy, capsys, "user0", "-n", "10")
    model_dir = copy / layout.MODEL_DIR
    meta_path = model_dir / dataset_index.INDEX_META_FILE
    meta = json.loads(meta_path.read_text())
    # Another run refitting on other data fills a folder of its own; ours stays intact.
    data = load_ratings_dataset(copy)
    other = dataclasses.replace(data, rating=np.full_like(data.rating, 3))
    canonical = np.arange(other.n_films)
    dataset_index.save_index(model_dir, dataset_index.build_index(other, canonical), "other")
    assert json.loads(meta_path.read_text())["folder"] != meta["folder"]
    assert (model_dir / meta["folder"] / "rating_values.npy").exists()
    meta_path.write_text(json.dumps(meta))
    assert recommended_slugs(copy, capsys, "user0", "-n", "10") == first
    fitted_before = (model_dir / "recommender_model.npz").stat().st_mtime_ns
    for folder in ("../..", "index-zz", None):
        meta_path.write_text(json.dumps({**meta, "folder": folder}))
        assert recommended_slugs(copy, capsys, "user0", "-n", "10") == first  # refitted
    assert (model_dir / "recommender_model.npz").stat().st_mtime_ns > fitted_before


def test_a_dataset_folder_that_cannot_hold_the_cache_still_recommends(
        dataset_copy: Path, capsys) -> None:
    copy = dataset_copy
    shutil.rmtree(copy / layout.MODEL_DIR, ignore_errors=True)
    (copy / layout.MODEL_DIR).write_text("not a folder")
    capsys.readouterr()
    assert main(["user0", "-n", "10", "--format", "json", "--data-dir", str(copy), "-q"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 10
    assert "could not cache the model" in captured.err


def test_cold_start_falls_back_to_popularity_with_a_note(dataset: Path, tmp_path: Path,
                                                         capsys) -> None:
    path = export_zip(tmp_path / "cold.zip", {2: 5.0}, [], [])
    picks = recommended_slugs(dataset, capsys, "--export", str(path), "-n", "5")
    data = load_ratings_dataset(dataset)
    loved = np.bincount(data.film_index, weights=data.rating >= 8, minlength=data.n_films)
    loved_by_slug = dict(zip(data.films["slug"], loved))
    loved_by_slug.pop("film-2")
    best_counts = sorted(loved_by_slug.values(), reverse=True)[:5]
    assert [loved_by_slug[slug] for slug in picks] == best_counts


def test_an_export_matching_nothing_is_a_clear_error(dataset: Path, tmp_path: Path) -> None:
    path = tmp_path / "nothing.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ratings.csv", "Date,Name,Year,Letterboxd URI,Rating\n"
                         "2026-01-01,Nope,1900,https://boxd.it/zzzz,4\n")
    with pytest.raises(BadInputError, match="no ratings that match"):
        main(["--export", str(path), "--data-dir", str(dataset), "-q"])


def test_bad_arguments_are_usage_errors(dataset: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--data-dir", str(dataset)])
    assert caught.value.code == 2
    with pytest.raises(BadInputError, match="not a Letterboxd username"):
        main(["no-such-name!", "--data-dir", str(dataset)])
    # "." or "/" make a path, never a username; a missing one is said so before any work.
    with pytest.raises(BadInputError, match="no export ZIP or folder at ../etc"):
        main(["../etc", "--data-dir", str(dataset)])


def test_an_exports_path_names_the_person_as_export_does(dataset: Path, tmp_path: Path,
                                                         capsys) -> None:
    rated = {index: 4.5 for index in range(0, 30, 2)} | {index: 1.0 for index in range(1, 30, 2)}
    path = export_zip(tmp_path / "letterboxd-me.zip", rated, [40], [46])
    by_flag = recommended_slugs(dataset, capsys, "--export", str(path), "-n", "15")
    assert recommended_slugs(dataset, capsys, str(path), "-n", "15") == by_flag
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(path).extractall(folder)
    assert recommended_slugs(dataset, capsys, f"{folder}/", "-n", "15") == by_flag


def test_genre_filters_use_imported_metadata(tmp_path: Path, capsys) -> None:
    from load_save_and_translate_data import import_published_dataset
    rng = np.random.default_rng(5)
    lines = ["user_id,movie_id,rating_val"]
    for user in range(40):
        for index in rng.choice(60, size=25, replace=False):
            lines.append(f"u{user},film-{index},{int(rng.integers(1, 11))}")
    (tmp_path / "ratings.csv").write_text("\n".join(lines) + "\n")
    movies = ["movie_id,movie_title,year_released,genres"] + [
        f"film-{index},Film {index},2000,{'Horror|Thriller' if index % 3 == 0 else 'Comedy'}"
        for index in range(60)]
    (tmp_path / "movies.csv").write_text("\n".join(movies) + "\n")
    import_published_dataset(tmp_path / "ratings.csv", tmp_path / "data",
                             movies_path=tmp_path / "movies.csv")
    horror = recommended_slugs(tmp_path / "data", capsys, "u0", "-n", "100", "--genre", "horror")
    assert horror and all(film_number(slug) % 3 == 0 for slug in horror)
    no_horror = recommended_slugs(tmp_path / "data", capsys, "u0", "-n", "100",
                                  "--exclude-genre", "Horror")
    assert no_horror and all(film_number(slug) % 3 != 0 for slug in no_horror)


def test_a_member_without_stored_films_is_read_from_the_site(tmp_path: Path, monkeypatch,
                                                             capsys) -> None:
    store = DatasetStore.open(tmp_path / "data", create=True)
    store.commit_batch([UserScrapeRecord("ghost", ScrapeStatus.PRIVATE, ()),
                        UserScrapeRecord("fan", ScrapeStatus.OK,
                                         tuple(film(i, 8) for i in range(10)))], now=NOW)
    asked = []

    def from_site(data, username, config):
        asked.append(username)
        return taste.UserTaste(name=username, rated_films=np.array([0, 1, 2, 3, 4, 5]),
                                ratings=np.full(6, 8.0, dtype=np.float32),
                                watched=np.arange(6), watchlist=None, source_note="site")

    monkeypatch.setattr(taste, "taste_from_site", from_site)
    picks = recommended_slugs(tmp_path / "data", capsys, "ghost")
    assert asked == ["ghost"]
    assert set(picks) == {f"film-{i}" for i in range(6, 10)}
    recommended_slugs(tmp_path / "data", capsys, "fan")
    assert asked == ["ghost"]  # a member with stored films is not fetched


def test_a_dataset_without_ratings_is_a_clear_error(tmp_path: Path) -> None:
    store = DatasetStore.open(tmp_path / "data", create=True)
    store.commit_batch([UserScrapeRecord("ghost", ScrapeStatus.PRIVATE, ())], now=NOW)
    with pytest.raises(DatasetError, match="holds no ratings yet"):
        main(["someone", "--data-dir", str(tmp_path / "data"), "-q"])
    with pytest.raises(BadInputError, match="cannot evaluate"):
        main(["--evaluate", "--data-dir", str(tmp_path / "data"), "-q"])


def test_options_that_cannot_work_are_refused_up_front(dataset: Path, tmp_path: Path) -> None:
    for args in (["--year-from", "2020", "--year-to", "2010"],
                 ["--min-ratings", "5", "--max-ratings", "2"],
                 ["--min-ratings", "-3"], ["--max-runtime", "-1"], ["--year-from", "20000"],
                 ["--letterboxd-list", str(tmp_path / "missing" / "list.csv")]):
        with pytest.raises(SystemExit) as caught:
            main(["user0", "--data-dir", str(dataset), "-q", *args])
        assert caught.value.code == 2
    with pytest.raises(UnusableFileError, match="is a folder"):
        main(["user0", "--data-dir", str(dataset), "-q", "--letterboxd-list", str(tmp_path)])
    with pytest.raises(ConfigError, match="never writes to output/"):
        main(["user0", "--test-mode", "--data-dir", str(config.OUTPUT_DIR), "-q"])
    with pytest.raises(SystemExit) as caught:  # before any model is loaded or fitted
        main(["--export", str(tmp_path / "missing.zip"), "--data-dir", str(dataset), "-q"])
    assert caught.value.code == 2


def test_a_folder_without_a_dataset_says_so_without_touching_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="holds no dataset"):
        main(["someone", "--data-dir", str(tmp_path), "-q"])
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_genre_names_the_known_ones(tmp_path: Path) -> None:
    from load_save_and_translate_data import import_published_dataset
    (tmp_path / "ratings.csv").write_text("user_id,movie_id,rating_val\n" + "".join(
        f"u{user},film-{index},{1 + (user + index) % 10}\n"
        for user in range(12) for index in range(8)))
    (tmp_path / "movies.csv").write_text("movie_id,movie_title,year_released,genres\n" + "".join(
        f"film-{index},Film {index},2000,{'Horror' if index % 2 else 'Comedy'}\n"
        for index in range(8)))
    import_published_dataset(tmp_path / "ratings.csv", tmp_path / "data",
                             movies_path=tmp_path / "movies.csv")
    with pytest.raises(BadInputError, match="unknown genre 'horor'; this dataset has: "
                                            "comedy, horror"):
        main(["u0", "--genre", "Horor", "--data-dir", str(tmp_path / "data"), "-q"])


def test_genre_flags_are_checked_before_a_profile_is_read(dataset: Path, monkeypatch) -> None:
    """A typo must not cost requests to the site."""
    def from_site(*args):
        raise AssertionError("the site was asked before the flags were checked")

    monkeypatch.setattr(taste, "taste_from_site", from_site)
    with pytest.raises(BadInputError, match="no genre metadata"):
        main(["stranger", "--genre", "Horror", "--data-dir", str(dataset), "-q"])


def test_control_characters_in_titles_never_reach_the_terminal(tmp_path: Path, capsys) -> None:
    from load_save_and_translate_data import import_published_dataset
    (tmp_path / "ratings.csv").write_text("user_id,movie_id,rating_val\n" + "".join(
        f"u{user},film-{index},{1 + (user * 3 + index) % 10}\n"
        for user in range(30) for index in range(12) if (user + index) % 3))
    hostile = "\x1b]0;pwned\x07\x1b[2JRed Title"
    (tmp_path / "movies.csv").write_text("movie_id,movie_title,year_released\n" + "".join(
        f"film-{index},{hostile if index % 2 else 'Plain'},2000\n" for index in range(12)))
    import_published_dataset(tmp_path / "ratings.csv", tmp_path / "data",
                             movies_path=tmp_path / "movies.csv")
    for output in ("table", "csv", "json"):
        out = run(tmp_path / "data", capsys, "u0", "-n", "12", "--format", output)
        assert "Red Title" in out
        assert not any(0x00 <= ord(c) < 0x20 and c != "\n" or 0x7f <= ord(c) <= 0x9f for c in out)


def test_a_row_a_running_builder_has_not_committed_is_not_read(dataset_copy: Path, capsys) -> None:
    copy = dataset_copy
    first = recommended_slugs(copy, capsys, "user0", "-n", "10")
    with open(copy / layout.FILM_MAPPINGS_FILE, "a", encoding="utf-8") as handle:
        handle.write('999,half-written,,"A title the builder is still wri')
    assert recommended_slugs(copy, capsys, "user0", "-n", "10") == first  # refit
    assert recommended_slugs(copy, capsys, "user0", "-n", "10") == first  # cached
