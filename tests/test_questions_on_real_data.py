"""The questions beside the list on the shared 500k sample of real ratings: --match,
--with, --from-list, --since and --like, each held to what it promises whatever the
model's numbers. The sample is imported with its movies file once per run (the
session's `shared_sample_dataset`), its model fitted once and reused; every test
skips where ../shared is absent."""
from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pytest

from benchmarks.sample_exports import export_zip
from recommend import main as recommend
from recommender.cache import CachedModel, load_or_fit
from tests.conftest import SHARED_DATASET_DIR

OLD_DAY, NEW_DAY, SINCE = "2021-03-14", "2025-06-01", "2025-01-01"


@dataclass(frozen=True)
class Sample:
    data_dir: Path
    data: CachedModel
    ratings: pd.DataFrame      # user_id, movie_id (slug), rating_val, as published
    movies: pd.DataFrame       # the movies file, indexed by movie_id (slug)

    def rated(self, member: str) -> pd.DataFrame:
        return self.ratings[self.ratings["user_id"] == member]

    def same_films(self, slugs: Iterable[str]) -> set[str]:
        """Every slug of the films these slugs name (one film may be under two)."""
        ids = self.data.film_ids_for_slugs(list(slugs))
        return set(self.data.films["slug"].to_numpy()[self.data.catalogue.same_films(ids)])

    def films_rated(self, member: str) -> int:
        """How many films the member rated: one film under two slugs counts once."""
        ids = self.data.film_ids_for_slugs(self.rated(member)["movie_id"].tolist())
        return len(np.unique(self.data.catalogue.canonical[ids]))


@pytest.fixture(scope="module")
def sample(shared_sample_dataset: Path) -> Sample:
    movies = pd.read_csv(SHARED_DATASET_DIR / "movies.csv.gz", dtype=str, keep_default_na=False)
    # Fitted once for the run: the other modules on the sample reuse the cached model.
    return Sample(shared_sample_dataset, load_or_fit(shared_sample_dataset),
                  pd.read_csv(SHARED_DATASET_DIR / "ratings.csv.gz"),
                  movies.set_index("movie_id"))


@pytest.fixture(scope="module")
def members(sample: Sample) -> list[str]:
    """Twelve members with 150 ratings or more, spread over the alphabet."""
    counts = sample.ratings["user_id"].value_counts()
    names = sorted(counts[counts >= 150].index)
    return names[::len(names) // 12][:12]


def ask(sample: Sample, capsys: pytest.CaptureFixture, *args: str) -> object:
    capsys.readouterr()
    assert recommend([*args, "--data-dir", str(sample.data_dir), "--format", "json",
                      "-q"]) == 0
    return json.loads(capsys.readouterr().out)


def film_link(slug: str) -> str:
    return f"https://letterboxd.com/film/{slug}/"


def dated_export(path: Path, sample: Sample, rows: Iterable[tuple[str, int, str]]) -> Path:
    """An export ZIP of (slug, rating 1..10, YYYY-MM-DD) rows, each film under its real
    title and year and its letterboxd.com/film/ link (as older exports link films), in
    ratings.csv and, on the same day, watched.csv."""
    tables = {name: io.StringIO() for name in ("ratings", "watched")}
    writers = {name: csv.writer(table, lineterminator="\r\n") for name, table in tables.items()}
    writers["ratings"].writerow(["Date", "Name", "Year", "Letterboxd URI", "Rating"])
    writers["watched"].writerow(["Date", "Name", "Year", "Letterboxd URI"])
    for slug, rating, day in rows:
        movie = sample.movies.loc[slug]
        row = [day, movie["movie_title"], movie["year_released"], film_link(slug)]
        writers["ratings"].writerow([*row, f"{rating / 2:g}"])
        writers["watched"].writerow(row)
    with zipfile.ZipFile(path, "w") as archive:
        for name, table in tables.items():
            archive.writestr(f"{name}.csv", table.getvalue())
    return path


def titled_films(sample: Sample) -> pd.DataFrame:
    """The sample's films a "Title (Year)" line names without doubt: a year, no
    parentheses, and no other film of the same title and year; most rated first."""
    movies = sample.movies.reset_index()
    movies = movies[(movies["year_released"] != "")
                    & ~movies["movie_title"].str.contains(r"[()\n]", regex=True)
                    & ~movies["movie_title"].str.startswith("#")]
    key = movies["movie_title"].str.lower() + "|" + movies["year_released"]
    movies = movies[~key.duplicated(keep=False)]
    counts = sample.ratings["movie_id"].value_counts()
    movies = movies.assign(ratings=movies["movie_id"].map(counts).fillna(0))
    return movies.sort_values(["ratings", "movie_id"], ascending=[False, True])


# --- taste match -------------------------------------------------------------------------

def test_a_member_matched_with_themselves_scores_at_the_top(sample: Sample, members,
                                                            tmp_path, capsys) -> None:
    for member in members[:3]:
        match = ask(sample, capsys, member, "--match", member)
        assert match["score"] == 100, member
        assert match["rated_in_common"] == sample.films_rated(member)
        assert not match["disagreements"]
    # The same ratings brought as an export: the same taste, whatever the source.
    member = members[0]
    rows = sample.rated(member)
    own = dated_export(tmp_path / "own.zip", sample,
                       zip(rows["movie_id"], rows["rating_val"], [OLD_DAY] * len(rows)))
    assert ask(sample, capsys, str(own), "--match", member)["score"] == 100


def test_ratings_reversed_score_near_the_bottom(sample: Sample, members, tmp_path,
                                                capsys) -> None:
    for member in members[:3]:
        rows = sample.rated(member)
        reversed_export = dated_export(
            tmp_path / f"{member}-reversed.zip", sample,
            zip(rows["movie_id"], 11 - rows["rating_val"], [OLD_DAY] * len(rows)))
        match = ask(sample, capsys, member, "--match", str(reversed_export))
        assert match["score"] <= 5, (member, match["score"], match["correlation"])
        assert match["correlation"] < 0
        assert match["rated_in_common"] == sample.films_rated(member)
        assert not match["both_loved"]  # r >= 8 and 11 - r >= 8 cannot both hold
        for film in match["disagreements"]:
            stars = list(film["stars"].values())
            assert not any(film["predicted"].values())
            assert abs(stars[0] - stars[1]) >= 1.5


def test_pairs_of_members_spread_around_the_middle(sample: Sample, members, capsys) -> None:
    """The score is a share of the dataset's member pairs: pairs of its members land all
    over the scale, around 50, and a pair scores the same either way round."""
    pairs = list(zip(members[::2], members[1::2]))
    scores = [ask(sample, capsys, first, "--match", second)["score"] for first, second in pairs]
    assert 25 <= np.median(scores) <= 75, scores
    assert max(scores) - min(scores) >= 20, scores
    first, second = pairs[0]
    assert ask(sample, capsys, second, "--match", first)["score"] == scores[0]


# --- group picks -------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["least-misery", "average"])
def test_a_group_pick_is_never_a_film_any_member_logged(sample: Sample, members, tmp_path,
                                                        capsys, rule: str) -> None:
    first, second, third = members[3:6]
    # The third brings an export: some films rated, some only watched, in the diary or
    # liked, each named by its real title and year.
    friend = export_zip(tmp_path / "friend.zip", sample.rated(third), sample.movies)
    group = ask(sample, capsys, first, "--with", second, "--with", str(friend),
                "--group-rule", rule, "--include-tv", "-n", "150")
    logged = sample.same_films(pd.concat([sample.rated(name)["movie_id"]
                                          for name in (first, second, third)]))
    slugs = [pick["slug"] for pick in group["picks"]]
    assert len(slugs) == 150 and len(set(slugs)) == 150
    assert not logged.intersection(slugs), logged.intersection(slugs)
    assert group["members"] == [first, second, "friend.zip"]
    ordered_by = min if rule == "least-misery" else np.mean
    rated = [ordered_by(list(pick["predicted_rating"].values())) for pick in group["picks"]]
    assert all(later <= earlier + 0.01 for earlier, later in zip(rated, rated[1:]))


# --- a given list ------------------------------------------------------------------------

def list_files(folder: Path, films: pd.DataFrame) -> dict[str, Path]:
    """The same films in the three forms --from-list reads: plain text (a URL on every
    third line, "Title (Year)" on the others), a list-import CSV and Letterboxd's list
    export (links no dataset knows: the titles and years find the films)."""
    text = ["# a festival line-up, alphabetical"]
    for number, film in enumerate(films.itertuples()):
        text.append(film_link(film.movie_id) if number % 3 == 0 else
                    f"{film.movie_title} ({film.year_released})")
    paths = {"text": folder / "festival.txt", "import": folder / "festival-import.csv",
             "export": folder / "festival-export.csv"}
    paths["text"].write_text("\n".join(text) + "\n", encoding="utf-8")
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["LetterboxdURI", "Title", "Year", "Review"])
    writer.writerows([film_link(film.movie_id), film.movie_title, film.year_released, ""]
                     for film in films.itertuples())
    paths["import"].write_text(table.getvalue(), encoding="utf-8")
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerows([["Letterboxd list export v7"], ["Date", "Name", "Tags", "URL",
                                                      "Description"],
                      ["2025-01-01", "Festival", "", "https://boxd.it/zzList", ""], [],
                      ["Position", "Name", "Year", "URL", "Description"]])
    writer.writerows([number, film.movie_title, film.year_released,
                      f"https://boxd.it/zz{number}", ""]
                     for number, film in enumerate(films.itertuples(), start=1))
    paths["export"].write_text(table.getvalue(), encoding="utf-8")
    return paths


def test_a_given_list_returns_exactly_its_films_in_another_order(sample: Sample, members,
                                                                 tmp_path, capsys) -> None:
    member = members[6]
    rows = sample.rated(member)
    own = dict(zip(rows["movie_id"], rows["rating_val"]))
    logged = sample.same_films(own)
    films = titled_films(sample)
    # Films spread over the member's own list, popular films beyond it, films they rated.
    picks = [pick["slug"] for pick in ask(sample, capsys, member, "--include-tv", "-n", "300")]
    position = {slug: index for index, slug in enumerate(picks)}
    in_picks = films[films["movie_id"].isin(position)]
    in_picks = in_picks.iloc[np.argsort(in_picks["movie_id"].map(position).to_numpy())]
    beyond = films[~films["movie_id"].isin(logged) & ~films["movie_id"].isin(position)]
    unseen = pd.concat([in_picks.iloc[::len(in_picks) // 12].head(12), beyond.head(4)])
    seen = films[films["movie_id"].isin(own)].iloc[::5].head(4)
    listed = pd.concat([unseen, seen]).sort_values("movie_title")  # the list's own order
    wanted = listed["movie_id"].tolist()

    answers = {form: ask(sample, capsys, member, "--from-list", str(path))
               for form, path in list_files(tmp_path, listed).items()}
    ranked = answers["text"]
    slugs = [film["slug"] for film in ranked]
    assert sorted(slugs) == sorted(wanted)          # exactly the list's films
    assert slugs != wanted                          # in the member's order, not the list's
    # Whatever the form, the same answer; each film names the file's line it is on.
    first_line = {"text": 2, "import": 2, "export": 6}
    for form, answer in answers.items():
        assert [{**film, "lines": None} for film in answer] == [
            {**film, "lines": None} for film in ranked]
        assert all(film["lines"] == [wanted.index(film["slug"]) + first_line[form]]
                   for film in answer), form
    # Logged films are marked, not dropped, after the others, with the member's rating.
    assert [film["seen"] for film in ranked] == [False] * len(unseen) + [True] * len(seen)
    assert {film["slug"] for film in ranked if film["seen"]} == set(seen["movie_id"])
    for film in ranked[len(unseen):]:
        assert film["own_stars"] == own[film["slug"]] / 2
    assert [film["own_stars"] for film in ranked[len(unseen):]] == sorted(
        own[slug] / 2 for slug in seen["movie_id"])[::-1]
    # The films of the member's own list keep its order.
    from_picks = [slug for slug in slugs[:len(unseen)] if slug in position]
    assert len(from_picks) == 12
    assert from_picks == sorted(from_picks, key=position.__getitem__)


# --- recent taste ------------------------------------------------------------------------

def genre_films(sample: Sample, wanted: str, unwanted: tuple[str, ...]) -> list[str]:
    """Films of the genre `wanted` and none of `unwanted`, most rated first."""
    films = titled_films(sample)
    genres = films["genres"].str.split("|")
    keep = genres.map(lambda names: wanted in names and not set(unwanted) & set(names))
    return films.loc[keep & (films["content_type"] != "tv"), "movie_id"].tolist()


def share_of(sample: Sample, slugs: list[str], genre: str) -> float:
    """The share of these films that the movies file gives `genre`, among others."""
    return sum(genre in sample.movies.loc[slug, "genres"].split("|")
               for slug in slugs) / len(slugs)


def test_since_changes_the_list_when_tastes_changed(sample: Sample, tmp_path,
                                                    capsys) -> None:
    """Horror loved and animation disliked until 2021; animation loved and horror
    disliked since 2025. Folding in only what came since turns the list round."""
    horror = genre_films(sample, "Horror", ("Animation", "Family", "Comedy"))
    animation = genre_films(sample, "Animation", ("Horror",))
    rows = ([(slug, 9 + number % 2, OLD_DAY) for number, slug in enumerate(horror[:60])]
            + [(slug, 2 + number % 2, OLD_DAY) for number, slug in enumerate(animation[:30])]
            + [(slug, 9 + number % 2, NEW_DAY) for number, slug in enumerate(animation[30:55])]
            + [(slug, 2, NEW_DAY) for slug in horror[60:70]])
    export = dated_export(tmp_path / "changed.zip", sample, rows)
    logged = sample.same_films(slug for slug, _, _ in rows)
    every = [pick["slug"] for pick in ask(sample, capsys, str(export), "-n", "30")]
    recent = [pick["slug"] for pick in ask(sample, capsys, str(export), "-n", "30",
                                           "--since", SINCE)]
    assert not logged.intersection(every + recent)  # films logged before never come back
    horror_then, animation_then = (share_of(sample, every, genre)
                                   for genre in ("Horror", "Animation"))
    horror_now, animation_now = (share_of(sample, recent, genre)
                                 for genre in ("Horror", "Animation"))
    assert horror_then >= 0.4 and animation_then <= 0.1, every
    assert animation_now >= 0.6 and horror_now <= 0.1, recent


def test_a_member_without_dates_counts_as_of_the_import(sample: Sample, members,
                                                        capsys) -> None:
    """The import is the members' only date (today here): --since on or before it
    folds in all of their ratings."""
    member = members[7]
    plain = ask(sample, capsys, member, "-n", "20")
    assert ask(sample, capsys, member, "-n", "20", "--since", "2020-01-01") == plain


# --- films like X ------------------------------------------------------------------------

def series_of(sample: Sample, sequel: str, series: str) -> set[str]:
    """The sample's films whose slug is `series` or starts with it, the sequel aside."""
    slugs = sample.data.films["slug"]
    return set(slugs[(slugs == series) | slugs.str.startswith(series + "-")]) - {sequel}


def like(sample: Sample, capsys: pytest.CaptureFixture, sequel: str) -> list[str]:
    """The films like `sequel`, asked for by "Title (Year)"."""
    movie = sample.movies.loc[sequel]
    similar = ask(sample, capsys, "--like", f"{movie['movie_title']} "
                  f"({movie['year_released']})", "-n", "20")
    assert similar["film"]["slug"] == sequel
    return [film["slug"] for film in similar["films"]]


@pytest.mark.parametrize("sequel, series", [
    ("back-to-the-future-part-ii", "back-to-the-future"),
    ("john-wick-chapter-2", "john-wick"),
    ("toy-story-2", "toy-story"),
    ("harry-potter-and-the-chamber-of-secrets", "harry-potter-and-the"),
    ("the-matrix-reloaded", "the-matrix"),
    ("the-hunger-games-catching-fire", "the-hunger-games"),
])
def test_films_like_a_sequel_are_its_series_first(sample: Sample, capsys, sequel: str,
                                                  series: str) -> None:
    """Every other film of the series comes before any film outside it."""
    others = series_of(sample, sequel, series)
    assert len(others) >= 2, others
    top = like(sample, capsys, sequel)[:len(others)]
    assert set(top) == others, top


@pytest.mark.parametrize("sequel, first", [
    ("the-godfather-part-ii", "the-godfather"),
    ("rocky-ii", "rocky"),
    ("spider-man-2", "spider-man"),
    ("creed-ii", "creed"),
    ("paddington-2", "paddington"),
    ("kill-bill-vol-2", "kill-bill-vol-1"),
    ("dune-part-two", "dune-2021"),             # not Dune (1984): another film
    ("kung-fu-panda-2", "kung-fu-panda"),
    ("insidious-chapter-2", "insidious"),
    ("the-conjuring-2", "the-conjuring"),
    ("how-to-train-your-dragon-2", "how-to-train-your-dragon"),
])
def test_the_film_a_sequel_follows_comes_first(sample: Sample, capsys, sequel: str,
                                               first: str) -> None:
    """Where a series holds films its audience rates apart (The Godfather Part III, the
    later Rocky films, the Spider-Man reboots), the film the sequel follows still comes
    first."""
    assert like(sample, capsys, sequel)[0] == first
