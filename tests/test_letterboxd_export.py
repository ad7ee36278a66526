"""Reading a user's Letterboxd export safely and matching it to the dataset."""
from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from errors import ExportError
from films.matching import FilmCatalogue
from letterboxd.export_reader import read_export
from letterboxd.list_import import ListEntry, list_import_csv

RATINGS = ("Date,Name,Year,Letterboxd URI,Rating\n"
           "2020-08-07,Inception,2010,https://boxd.it/1skk,4\n"
           '2020-08-07,"O Brother, Where Art Thou?",2000,https://boxd.it/2b3I,1\n'
           "2025-12-04,Bugonia,2025,https://boxd.it/qeWY,4.5\n"
           "2025-12-05,Léon: The Professional,1994,https://boxd.it/zzzz,0.5\n")
WATCHED = ("Date,Name,Year,Letterboxd URI\n"
           "2020-08-07,Inception,2010,https://boxd.it/1skk\n"
           "2021-01-01,Heat,1995,https://boxd.it/29qU\n")
WATCHLIST = "Date,Name,Year,Letterboxd URI\n2024-02-02,Ran,1985,https://boxd.it/1Zc\n"


def make_zip(path: Path, members: dict[str, str], prefix: str = "") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(prefix + name, text)
    return path


def films_table() -> pd.DataFrame:
    return pd.DataFrame({
        "slug": ["inception", "o-brother-where-art-thou", "bugonia", "leon-the-professional",
                 "heat", "ran"],
        "lid": ["1skk", "", "qeWY", "", "29qU", "1Zc"],
        "title": ["Inception", "O Brother, Where Art Thou?", "Bugonia", "Léon: The Professional",
                  "Heat", "Ran"],
        "year": pd.array([2010, 2000, 2025, 1994, 1995, 1985], dtype="Int64"),
    })


def matched(films: pd.DataFrame, rows) -> list[int]:
    """Film id per export row through the one matcher, -1 where none."""
    return FilmCatalogue(films).match([row.reference for row in rows]).film_ids.tolist()


@pytest.mark.parametrize("prefix", ["", "letterboxd-someone-2026-01-21-11-21-utc/"])
def test_export_zip_is_read_and_matched_by_lid_then_title(tmp_path: Path, prefix: str) -> None:
    path = make_zip(tmp_path / "export.zip", {"ratings.csv": RATINGS, "watched.csv": WATCHED,
                                              "watchlist.csv": WATCHLIST,
                                              "likes/films.csv": WATCHED,
                                              "orphaned/ratings.csv": "junk"}, prefix)
    export = read_export(path)
    assert [film.rating for film in export.ratings] == [8, 2, 9, 1]
    assert export.ratings[1].name == "O Brother, Where Art Thou?"
    assert [film.lid for film in export.watched] == ["1skk", "29qU"]
    assert matched(films_table(), export.ratings) == [0, 1, 2, 3]
    assert matched(films_table(), export.watchlist) == [5]


def test_an_unzipped_export_folder_works_too(tmp_path: Path) -> None:
    (tmp_path / "likes").mkdir()
    (tmp_path / "ratings.csv").write_text(RATINGS)
    (tmp_path / "likes" / "films.csv").write_text(WATCHED)
    export = read_export(tmp_path)
    assert len(export.ratings) == 4 and len(export.liked) == 2 and export.watchlist == ()


USER_LIST = ("Letterboxd list export v7\nDate,Name,Tags,URL,Description\n"
             "2024-01-01,Ratings,,https://boxd.it/abc,\n\nPosition,Name,Year,URL,Description\n"
             "1,Heat,1995,https://boxd.it/29qU,\n")


@pytest.mark.parametrize("prefix", ["", "letterboxd-someone-2026-01-21-11-21-utc/",
                                    "backup/letterboxd-someone-2026-01-21-11-21-utc/"])
def test_user_lists_named_like_export_files_are_not_taken_for_them(
        tmp_path: Path, prefix: str) -> None:
    """Letterboxd saves a list called "Ratings" as lists/ratings.csv; in a ZIP it may come
    first, and in a folder it sorts first."""
    members = {"lists/ratings.csv": USER_LIST, "lists/watchlist.csv": USER_LIST,
               "ratings.csv": RATINGS, "watchlist.csv": WATCHLIST}
    zipped = read_export(make_zip(tmp_path / "export.zip", members, prefix))
    folder = tmp_path / "unzipped"
    for name, text in members.items():
        (folder / prefix / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / prefix / name).write_text(text)
    for export in (zipped, read_export(folder)):
        assert [film.rating for film in export.ratings] == [8, 2, 9, 1]
        assert [film.name for film in export.watchlist] == ["Ran"]


def test_a_film_not_in_the_dataset_does_not_match() -> None:
    export_film = read_export_row("2020-01-01,Unknown Film,1999,https://boxd.it/nope,3")
    assert matched(films_table(), [export_film]) == [-1]


def test_rows_fall_back_from_lid_to_slug_to_title_in_one_pass() -> None:
    films = films_table()
    rows = [read_export_row(row) for row in (
        "2020-01-01,Heat,1995,https://boxd.it/29qU,3",                      # lid
        "2020-01-01,Bugonia,2025,https://letterboxd.com/film/bugonia/,3",   # slug
        "2020-01-01,Leon: the Professional,1994,https://boxd.it/zzzz,3",    # title + year
        "2020-01-01,Heat,1996,https://boxd.it/zzzz,3",                      # a year off
        "2020-01-01,Heat,1997,https://boxd.it/zzzz,3",                      # another film
        "2020-01-01,Ran,1985,https://boxd.it/1Zc,3")]                       # lid again
    assert matched(films, rows) == [4, 2, 3, 4, -1, 5]


def test_titles_in_other_scripts_match_only_themselves() -> None:
    films = pd.DataFrame({"slug": ["seven-samurai", "hero", "amelie"], "lid": ["", "", ""],
                          "title": ["七人の侍", "英雄", "Amélie"],
                          "year": pd.array([2001, 2001, 2001], dtype="Int64")})
    rows = [read_export_row(f"2020-01-01,{title},2001,https://boxd.it/x,3")
            for title in ("Паразиты", "…", "英雄", "AMELIE")]
    assert matched(films, rows) == [-1, -1, 1, 2]


def test_an_odd_year_is_left_out_not_fatal() -> None:
    assert read_export_row("2020-01-01,Heat,²,https://boxd.it/29qU,3").year is None
    assert read_export_row("2020-01-01,Heat,1995,https://boxd.it/29qU,3").year == 1995


def read_export_row(row: str):
    from letterboxd.export_reader import RATINGS_HEADER, parse_film_rows
    return parse_film_rows(",".join(RATINGS_HEADER) + "\n" + row + "\n", "ratings.csv",
                        RATINGS_HEADER)[0]


@pytest.mark.parametrize("members, message", [
    ({"watched.csv": WATCHED}, "no ratings.csv"),
    ({"ratings.csv": "Name,Rating\nHeat,4\n"}, "header"),
    ({"ratings.csv": RATINGS.replace(",4\n", ",4.25\n", 1)}, "half stars"),
    ({"ratings.csv": RATINGS.replace(",4\n", ",great\n", 1)}, "not a number"),
    ({"ratings.csv": RATINGS.replace(",4\n", ",nan\n", 1)}, "not a number"),
    ({"ratings.csv": RATINGS.replace(",4\n", ",inf\n", 1)}, "not a number"),
])
def test_bad_exports_give_a_clear_error(tmp_path: Path, members: dict[str, str],
                                        message: str) -> None:
    with pytest.raises(ExportError, match=message):
        read_export(make_zip(tmp_path / "export.zip", members))


def test_a_file_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    path.write_text("definitely not a zip")
    with pytest.raises(ExportError, match="neither a ZIP"):
        read_export(path)


def test_a_zip_bomb_is_refused_before_unpacking(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ratings.csv", RATINGS + "0" * (80 * 1024 * 1024))
    assert path.stat().st_size < 1024 * 1024
    with pytest.raises(ExportError, match="ZIP bomb|more than"):
        read_export(path)


def test_list_import_csv_has_the_right_columns_and_neutralises_formulas() -> None:
    text = list_import_csv([
        ListEntry("https://boxd.it/29qU", "Heat", 1995, "predicted 4.5★ · because you rated Ran"),
        ListEntry("https://letterboxd.com/film/sum/", "=SUM(A1)", None, "+1"),
    ])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["LetterboxdURI", "Title", "Year", "Review"]
    assert rows[1] == ["https://boxd.it/29qU", "Heat", "1995",
                       "predicted 4.5★ · because you rated Ran"]
    assert rows[2] == ["https://letterboxd.com/film/sum/", "'=SUM(A1)", "", "'+1"]
