"""Reading a user's Letterboxd export safely and matching it to the dataset."""
from __future__ import annotations

import csv
import io
import os
import random
import string
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from errors import EXIT_BAD_INPUT, ExportError
from films.matching import FilmCatalogue
from letterboxd.export_reader import MAX_MEMBER_BYTES, read_export
from letterboxd.list_import import ListEntry, list_import_csv
from tests.helpers import snapshot

PROJECT_ROOT = Path(__file__).resolve().parent.parent

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


# --- damaged archives, oversized cells, and unzipped folders under the ZIP's guards -------

def patch_zip_headers(path: Path, *, flag: int | None = None, method: int | None = None) -> None:
    """Set the flags or the compression method of every entry, in its local header and in
    the central directory alike, as a tool that wrote them so would."""
    data = bytearray(path.read_bytes())
    for signature, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        start = data.find(signature)
        while start >= 0:
            if flag is not None:
                data[start + flag_at:start + flag_at + 2] = flag.to_bytes(2, "little")
            if method is not None:
                data[start + method_at:start + method_at + 2] = method.to_bytes(2, "little")
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))


def zip_with_mangled_data(path: Path, method: int) -> Path:
    """ratings.csv compressed with `method`, its compressed bytes then overwritten."""
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("ratings.csv", RATINGS * 20)
        member = archive.getinfo("ratings.csv")
    data = bytearray(path.read_bytes())
    start = member.header_offset + 30 + len(member.filename)
    middle = start + member.compress_size // 4
    data[middle:middle + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    return path


def damaged(kind: str, path: Path) -> Path:
    if kind == "encrypted entry":
        make_zip(path, {"ratings.csv": RATINGS})
        patch_zip_headers(path, flag=0x1)
    elif kind == "unsupported method":
        make_zip(path, {"ratings.csv": RATINGS})
        patch_zip_headers(path, method=99)  # AES, as 7-Zip writes it
    elif kind == "corrupt deflate":
        zip_with_mangled_data(path, zipfile.ZIP_DEFLATED)
    elif kind == "corrupt lzma":
        zip_with_mangled_data(path, zipfile.ZIP_LZMA)
    elif kind == "corrupt bzip2":
        zip_with_mangled_data(path, zipfile.ZIP_BZIP2)
    elif kind == "cell over 128 KiB":
        # Letters at random, which compress too little to look like a ZIP bomb.
        name = "".join(random.Random(0).choices(string.ascii_letters, k=140_000))
        make_zip(path, {"ratings.csv": RATINGS + f"2020-01-01,{name},2000,"
                                                 "https://boxd.it/1,3\n"})
    return path


DAMAGED = {
    "encrypted entry": "ratings.csv is encrypted",
    "unsupported method": "ratings.csv is compressed with method 99",
    "corrupt deflate": "ratings.csv is damaged and cannot be unpacked",
    "corrupt lzma": "ratings.csv is damaged and cannot be unpacked",
    "corrupt bzip2": "ratings.csv is damaged and cannot be unpacked",
    "cell over 128 KiB": "ratings.csv, line 6: not readable as CSV (field larger than field "
                         "limit (131072))",
}


@pytest.mark.parametrize("kind", DAMAGED)
def test_a_damaged_export_is_one_line_naming_the_export_and_the_entry(
        kind: str, tmp_path: Path) -> None:
    path = damaged(kind, tmp_path / "export.zip")
    with pytest.raises(ExportError) as caught:
        read_export(path)
    assert str(caught.value).startswith(f"{path}: {DAMAGED[kind]}"), caught.value


@pytest.fixture(scope="module")
def fitted_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny imported dataset whose model is already cached, so that a refused export
    leaves every file of it as it was."""
    from compile_training_data import main as build_main
    from recommender.cache import load_or_fit
    folder = tmp_path_factory.mktemp("fitted")
    (folder / "ratings.csv").write_text("user_id,movie_id,rating_val\n" + "".join(
        f"u{user},{slug},{1 + (user + index) % 10}\n" for user in range(12)
        for index, slug in enumerate(("inception", "heat", "ran", "bugonia", "alien")))
        + "".join(f"u{user},film-{index},{1 + user % 10}\n" for user in range(12)
                  for index in range(6)))
    assert build_main(["import", str(folder / "ratings.csv"), "--output-dir",
                       str(folder / "data"), "-q"]) == 0
    load_or_fit(folder / "data")
    return folder / "data"


def recommend_from(export: Path, data_dir: Path,
                   capsys: pytest.CaptureFixture) -> tuple[int, list[str]]:
    import cli
    from recommend import main as recommend_main
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli.run(recommend_main, ["--export", str(export), "--data-dir", str(data_dir)])
    return exited.value.code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("kind", DAMAGED)
def test_recommend_refuses_a_damaged_export_with_exit_2_and_changes_nothing(
        kind: str, fitted_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = damaged(kind, tmp_path / "export.zip")
    before = snapshot(fitted_dataset), path.read_bytes()
    code, lines = recommend_from(path, fitted_dataset, capsys)
    assert code == EXIT_BAD_INPUT
    assert len(lines) == 1 and lines[0].startswith(f"ERROR: {path}: {DAMAGED[kind]}"), lines
    assert (snapshot(fitted_dataset), path.read_bytes()) == before


SECRET = "TOPSECRET-password-line"


def unzipped(folder: Path, ratings: str = RATINGS) -> Path:
    (folder / "likes").mkdir(parents=True)
    (folder / "watched.csv").write_text(WATCHED)
    (folder / "ratings.csv").write_text(ratings)
    return folder


def folder_with(kind: str, folder: Path, secret: Path) -> Path:
    """An unzipped export whose ratings.csv is replaced by `kind`."""
    unzipped(folder)
    ratings = folder / "ratings.csv"
    ratings.unlink()
    if kind == "symlink to /dev/zero":
        ratings.symlink_to("/dev/zero")
    elif kind == "symlink to a secret":
        ratings.symlink_to(secret)
    elif kind == "fifo":
        os.mkfifo(ratings)
    elif kind == "over the size cap":  # sparse: costs no disk
        with open(ratings, "wb") as handle:
            handle.truncate(MAX_MEMBER_BYTES + 1)
    return folder


UNUSABLE = {
    "symlink to /dev/zero": "ratings.csv is a symbolic link; only regular files are read",
    "symlink to a secret": "ratings.csv is a symbolic link; only regular files are read",
    "fifo": "ratings.csv is a FIFO; only regular files are read",
    "over the size cap": f"ratings.csv is larger than the {MAX_MEMBER_BYTES:,} bytes",
}


@pytest.mark.parametrize("kind", UNUSABLE)
def test_an_unzipped_export_holds_regular_files_within_the_zips_limits(
        kind: str, tmp_path: Path) -> None:
    """Run as a command: a FIFO opened the ordinary way would hang it."""
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET + "\n")
    folder = folder_with(kind, tmp_path / "export", secret)
    before = snapshot(tmp_path)
    finished = subprocess.run(
        [sys.executable, "-c", "import sys; from letterboxd.export_reader import read_export; "
         "read_export(sys.argv[1])", str(folder)], cwd=PROJECT_ROOT, capture_output=True,
        text=True, timeout=60)
    last = finished.stderr.splitlines()[-1]
    assert last.startswith(f"errors.ExportError: {folder}: {UNUSABLE[kind]}"), last
    assert SECRET not in finished.stderr
    assert snapshot(tmp_path) == before


def test_an_unzipped_export_with_a_fifo_is_exit_2_for_recommend(
        fitted_dataset: Path, tmp_path: Path) -> None:
    folder = folder_with("fifo", tmp_path / "export", tmp_path)
    before = snapshot(fitted_dataset)
    finished = subprocess.run(
        [sys.executable, "recommend.py", "--export", str(folder), "--data-dir",
         str(fitted_dataset)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert finished.returncode == EXIT_BAD_INPUT
    assert finished.stderr.splitlines() == [f"ERROR: {folder}: {UNUSABLE['fifo']} or written"]
    assert snapshot(fitted_dataset) == before


def test_no_message_about_an_export_quotes_its_content(tmp_path: Path) -> None:
    folder = unzipped(tmp_path / "export", ratings=f"{SECRET},a,b,c,d\n")
    with pytest.raises(ExportError, match="does not start with the header") as caught:
        read_export(folder)
    assert SECRET not in str(caught.value)
    bad_rating = RATINGS.replace(",4\n", f",{SECRET}\n", 1)
    with pytest.raises(ExportError, match="line 2: the rating is not a number") as caught:
        read_export(make_zip(tmp_path / "export.zip", {"ratings.csv": bad_rating}))
    assert SECRET not in str(caught.value)


def test_an_unzipped_export_with_too_many_files_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import letterboxd.export_reader as export_reader
    folder = unzipped(tmp_path / "export")
    for index in range(6):
        (folder / "likes" / f"extra-{index}.txt").write_text("x")
    monkeypatch.setattr(export_reader, "MAX_MEMBERS", 5)
    with pytest.raises(ExportError, match="holds more than 5 files"):
        read_export(folder)


def test_a_symlinked_folder_inside_an_unzipped_export_is_not_entered(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "films.csv").write_text(WATCHED)
    folder = unzipped(tmp_path / "export")
    (folder / "likes").rmdir()
    (folder / "likes").symlink_to(elsewhere)
    export = read_export(folder)
    assert len(export.ratings) == 4 and export.liked == ()


def test_the_export_named_may_be_a_link_to_a_zip_but_not_a_fifo(tmp_path: Path) -> None:
    """The person names the path themselves: a link to their ZIP is followed. Inside an
    export, nothing is."""
    archive = make_zip(tmp_path / "export.zip", {"ratings.csv": RATINGS})
    (tmp_path / "link.zip").symlink_to(archive)
    assert len(read_export(tmp_path / "link.zip").ratings) == 4
    os.mkfifo(tmp_path / "fifo.zip")
    with pytest.raises(ExportError, match="fifo.zip is a FIFO; only regular files"):
        read_export(tmp_path / "fifo.zip")  # opened the ordinary way, this would hang
