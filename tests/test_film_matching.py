"""One film identity across sources: title and slug rules, the matcher, films under two slugs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from films.matching import FilmCatalogue, FilmReference
from films.titles import slug_candidates, split_slug_year, title_from_slug, title_key


def catalogue(rows: list[tuple], with_runtime: bool = False) -> FilmCatalogue:
    """Films from (slug, title, year[, runtime][, lid]) rows, ids in row order."""
    frame = pd.DataFrame({
        "slug": [row[0] for row in rows],
        "title": [row[1] for row in rows],
        "year": pd.array([row[2] for row in rows], dtype="Int64"),
        "lid": [row[4] if len(row) > 4 else "" for row in rows],
    })
    if with_runtime:
        frame["runtime"] = [row[3] for row in rows]
    return FilmCatalogue(frame)


@pytest.mark.parametrize("title, slug", [
    ("Spider-Man: No Way Home", "spider-man-no-way-home"),
    ("E.T. the Extra-Terrestrial", "et-the-extra-terrestrial"),
    ("WALL·E", "walle"),
    ("Léon: The Professional", "leon-the-professional"),
    ("Guillermo del Toro's Pinocchio", "guillermo-del-toros-pinocchio"),
    ("Harold & Kumar Go to White Castle", "harold-kumar-go-to-white-castle"),
    ("Barbie as The Princess & the Pauper", "barbie-as-the-princess-and-the-pauper"),
    ("M*A*S*H", "mash"),
    ("3:10 to Yuma", "310-to-yuma"),
    ("8½", "8-half"),
])
def test_titles_are_spelled_as_letterboxd_slugs(title: str, slug: str) -> None:
    assert slug in slug_candidates(title)


def test_a_title_without_letters_has_no_slug_but_other_scripts_keep_a_key() -> None:
    assert slug_candidates("夜の図書館") == ()
    assert title_key("夜の図書館") == "夜の図書館"
    assert title_key("!!!") == ""


@pytest.mark.parametrize("first, second", [
    ("Fanny & Alexander", "Fanny and Alexander"),
    ("The Bride of Frankenstein", "Bride of Frankenstein"),
    ("AMÉLIE", "Amelie"),
    ("E.T. the Extra-Terrestrial", "Et The Extra Terrestrial"),
])
def test_title_keys_ignore_case_accents_punctuation_and_a_leading_the(first: str,
                                                                       second: str) -> None:
    assert title_key(first) == title_key(second)


@pytest.mark.parametrize("slug, base, year, title", [
    ("oppenheimer-2023", "oppenheimer", 2023, "Oppenheimer"),
    ("beast-2022-1", "beast", 2022, "Beast"),
    ("blade-runner-2049", "blade-runner-2049", None, "Blade Runner 2049"),
    ("1917", "1917", None, "1917"),
    ("spider-man-no-way-home", "spider-man-no-way-home", None, "Spider Man No Way Home"),
])
def test_slugs_carry_a_year_only_when_it_can_be_a_release_year(
        slug: str, base: str, year: int | None, title: str) -> None:
    assert split_slug_year(slug) == (base, year)
    assert title_from_slug(slug) == title


@given(st.text(max_size=60))
def test_slug_candidates_are_always_valid_slugs(title: str) -> None:
    for slug in slug_candidates(title):
        assert slug == slug.strip("-") and "--" not in slug
        assert all(character.isascii() and (character.isalnum() or character == "-")
                   for character in slug)


def test_the_rules_in_order() -> None:
    films = catalogue([
        ("inception", "Inception", 2010, 148, "1skk"),
        ("dune", "Dune", 1984, 137),
        ("dune-2021", "Dune", 2021, 155),
        ("past-lives", "Past Lives", None, None),
        ("oppenheimer-2023", "oppenheimer-2023", None, None),  # known only by its slug
        ("night-and-fog", "Night and Fog", 1956, 32),
        ("fanny-and-alexander", "Fanny and Alexander", 1982, 188),
    ], with_runtime=True)
    references = [
        FilmReference("Wrong Title", 1999, lid="1skk"),
        FilmReference(slug="dune"),
        FilmReference("Dune", 2021),
        FilmReference("Past Lives", 2023),
        FilmReference("Oppenheimer", 2023),
        FilmReference("Night and Fog", 1955),
        FilmReference("Fanny & Alexander", 1982),
        FilmReference("Dune", 1990),
    ]
    result = films.match(references)
    assert result.film_ids.tolist() == [0, 1, 2, 3, 4, 5, 6, -1]
    assert result.rules[:3] == ("lid", "slug", "title as slug")
    assert result.rules[5] == "title, year one off"
    assert [missing.reference for missing in result.unmatched] == [references[-1]]
    assert "other years" in result.unmatched[0].reason


def test_a_film_known_only_by_its_slug_gets_a_title_and_the_slugs_year() -> None:
    films = catalogue([("oppenheimer-2023", "", None), ("barbie", "barbie", None)])
    assert films.label(0) == "Oppenheimer (2023)"
    assert films.label(1) == "barbie"  # a title without a hyphen may be the real one


def test_one_title_and_year_makes_one_film_only_when_the_runtimes_agree() -> None:
    films = catalogue([("a-silent-voice", "A Silent Voice: The Movie", 2016, 130.0),
                       ("a-silent-voice-the-movie", "A Silent Voice: The Movie", 2016, 129.0),
                       ("the-visit", "The Visit", 2015, float("nan")),
                       ("the-visit-2015-1", "The Visit", 2015, float("nan"))], with_runtime=True)
    assert films.canonical.tolist() == [0, 0, 2, 3]


def test_two_films_of_one_title_a_year_apart_are_kept_apart() -> None:
    films = catalogue([("whiplash-2013", "Whiplash", 2013, 18),
                       ("whiplash-2014", "Whiplash", 2014, 107)], with_runtime=True)
    assert films.canonical.tolist() == [0, 1]
    result = films.match([FilmReference("Whiplash", 2015), FilmReference("Whiplash", 2014)])
    assert result.film_ids.tolist() == [-1, 1]
    # The one-year window never picks a film whose slug names another year.
    lone = catalogue([("the-killer-2024", "The Killer", 2024)])
    assert lone.match([FilmReference("The Killer", 2023)]).film_ids.tolist() == [-1]


def test_an_ambiguous_title_is_reported_with_its_candidates_not_guessed() -> None:
    films = catalogue([("beauty-and-the-beast", "Beauty and the Beast", 1946),
                       ("beauty-and-the-beast-1991", "Beauty and the Beast", 1991)])
    result = films.match([FilmReference("Beauty and the Beast")])
    assert result.film_ids.tolist() == [-1]
    assert "1946" in result.unmatched[0].reason and "1991" in result.unmatched[0].reason


def test_one_film_under_two_slugs_is_one_film() -> None:
    films = catalogue([
        ("frozen-2", "Frozen II", 2019, 103),
        ("black-panther", "Black Panther", 2018, 134),
        ("frozen-ii", "Frozen II", 2019, 103),
        ("black-panther-2018", "Black Panther", 2018, 134),
        ("whatever", "Other", 2000, 90, "abcd"),
        ("whatever-else", "Another", 2001, 90, "abcd"),
        ("the-visit", "The Visit", 2015, 94),
        ("the-visit-2015", "The Visit", 2015, 30),  # runtimes disagree: two films
    ], with_runtime=True)
    assert films.canonical.tolist() == [0, 1, 0, 1, 4, 4, 6, 7]
    assert films.same_films([2]).tolist() == [0, 2]
    result = films.match([FilmReference(slug="frozen-ii"), FilmReference("Frozen II", 2019)])
    assert result.film_ids.tolist() == [0, 0]


def test_a_title_without_its_subtitle_matches_in_the_same_year_only() -> None:
    films = catalogue([("glass-onion", "Glass Onion", 2019),
                       ("glass-onion-a-knives-out-mystery", "Glass Onion: A Knives Out Mystery",
                        2022)])
    result = films.match([FilmReference("Glass Onion", 2022), FilmReference("Glass Onion", 2019),
                          FilmReference("Glass Onion", 2021)])
    assert result.film_ids.tolist() == [1, 0, -1]


def test_an_unmatched_film_names_the_closest_dataset_film() -> None:
    films = catalogue([("the-godfather", "The Godfather", 1972)])
    result = films.match([FilmReference("The Godfather Part II", 1974)])
    assert result.unmatched[0].closest == "The Godfather (1972)"


def test_an_ambiguous_title_names_its_candidates_and_no_closest_film() -> None:
    films = catalogue([("winter-glass-1939-1", "Winter Glass", 1939, 90),
                       ("winter-glass-1939-2", "Winter Glass", 1939, 140),  # two films
                       ("winter-glasses", "Winter Glasses", 1925, 80)], with_runtime=True)
    result = films.match([FilmReference("Winter Glass", 1939)])
    missing = result.unmatched[0]
    assert missing.reason == ("ambiguous: Winter Glass (1939) [winter-glass-1939-1]; "
                              "Winter Glass (1939) [winter-glass-1939-2]")
    assert missing.closest is None


def test_the_shared_sample_finds_its_own_films_from_titles(shared_dataset_dir) -> None:
    """Every film of the real sample, asked for by its title and year as an export
    would write them, is found, and found as itself or as the same film."""
    movies = pd.read_csv(shared_dataset_dir / "movies.csv.gz", dtype=str, keep_default_na=False)
    films = catalogue([(slug, title, int(year) if year else None,
                        float(runtime) if runtime else float("nan"))
                       for slug, title, year, runtime in zip(
                           movies["movie_id"], movies["movie_title"], movies["year_released"],
                           movies["runtime"])], with_runtime=True)
    references = [FilmReference(title, int(year) if year else None)
                  for title, year in zip(movies["movie_title"], movies["year_released"])]
    result = films.match(references)
    found = result.film_ids >= 0
    assert found.mean() > 0.97
    wrong = found & (result.film_ids != films.canonical[np.arange(films.size)])
    assert not wrong.any(), [films.label(f) for f in np.flatnonzero(wrong)][:5]
    # The sample's own duplicates (one film under two slugs) are found as one film.
    assert (films.canonical != np.arange(films.size)).sum() >= 7


# --- metadata as published files write it ----------------------------------------------

def test_genres_in_every_published_form_become_one_form() -> None:
    from films.metadata import name_list_column

    cells = pd.Series(['["Drama", "Comedy"]', "['Drama', 'Comedy']", "Drama|Comedy", "",
                       '[{"id": 18, "name": "Drama"}]', "[broken", "Drama|Drama"])
    assert name_list_column(cells).tolist() == ["Drama|Comedy", "Drama|Comedy",
                                                "Drama|Comedy", "", "Drama", "", "Drama"]


def test_impossible_years_and_runtimes_become_unknown() -> None:
    from films.metadata import runtime_column, year_column

    years, refused = year_column(pd.Series(["1999", "", "99999999999999999999", "inf",
                                            "1850", "2023.0", "abc"]))
    assert years.tolist() == [1999, pd.NA, pd.NA, pd.NA, pd.NA, 2023, pd.NA]
    assert refused == 4
    runtimes = runtime_column(pd.Series(["104.0", "0.0", "", "-5", "1e9", "97"]))
    assert runtimes.tolist() == [104, pd.NA, pd.NA, pd.NA, pd.NA, 97]


def test_series_are_told_from_films_by_any_source_that_says() -> None:
    from films.metadata import content_type_column

    genres = pd.Series(["Drama", "Drama", "Sci-Fi & Fantasy|Mystery", "Comedy", "Drama"])
    stated = pd.Series(["movie", "tv", "", "", ""])
    links = pd.Series(["", "", "", "https://www.themoviedb.org/tv/91275/", ""])
    assert content_type_column(stated, links, genres).tolist() == ["film", "tv", "tv", "tv", ""]
    assert content_type_column(None, None, genres).tolist() == ["", "", "tv", "", ""]
