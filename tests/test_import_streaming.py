"""The streaming import: chunked reading, the same bytes as the in-memory import, the scale.

tests/fixtures/import_v2 holds a small published dataset (users interleaved, repeated
pairs, invalid rows, formula and carriage-return cells) and what the in-memory import
wrote from it before the import streamed, plus that import's digests of the shared
sample: the streaming import must write the same bytes, read in one chunk or many.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cli
import compile_training_data
from dataset import layout, published
from load_save_and_translate_data import (Scale, import_published_dataset,
                                          read_published_ratings)
from tests.helpers import dataset_triples

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "import_v2"
SOURCE = FIXTURE / "source"
CHUNK_BYTES = published.CHUNK_BYTES  # as shipped (tests below shrink it)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def import_fixture(data_dir: Path) -> None:
    import_published_dataset(SOURCE / "ratings.csv", data_dir, movies_path=SOURCE / "movies.csv",
                             users_path=SOURCE / "users_export.csv", now=NOW)


@pytest.mark.parametrize("chunk_bytes", [CHUNK_BYTES, 64])
def test_the_import_writes_what_the_in_memory_import_wrote(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int) -> None:
    monkeypatch.setattr(published, "CHUNK_BYTES", chunk_bytes)
    assert (SOURCE / "ratings.csv").stat().st_size > 20 * 64  # many chunks at 64 bytes
    import_fixture(tmp_path / "data")
    assert folder_bytes(tmp_path / "data") == folder_bytes(FIXTURE / "expected")


def test_the_shared_sample_imports_to_the_in_memory_imports_bytes(
        tmp_path: Path, shared_dataset_dir: Path) -> None:
    import_published_dataset(shared_dataset_dir / "ratings.csv.gz", tmp_path / "data",
                             movies_path=shared_dataset_dir / "movies.csv.gz", now=NOW)
    digests = {name: hashlib.sha256(data).hexdigest()
               for name, data in folder_bytes(tmp_path / "data").items()}
    assert digests == json.loads((FIXTURE / "shared_sample_sha256.json").read_text())


rows = st.lists(st.tuples(st.sampled_from(["ann", "Bo", " cy ", "bad name", "dee_", ""]),
                          st.sampled_from(["heat", "ran", "up", "no/slug", "m-2019", " alien "]),
                          st.sampled_from(["1", "4", "7", "10", "7.0", "", "x"])),
                min_size=1, max_size=60)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows)
def test_any_chunking_gives_the_same_dataset(tmp_path_factory: pytest.TempPathFactory,
                                             monkeypatch: pytest.MonkeyPatch,
                                             rows: list[tuple[str, str, str]]) -> None:
    folder = tmp_path_factory.mktemp("chunks")
    source = folder / "ratings.csv"
    source.write_text("user_id,movie_id,rating_val\n"
                      + "".join(f"{user},{slug},{rating}\n" for user, slug, rating in rows))
    results = []
    for chunk_bytes in (CHUNK_BYTES, 32):
        monkeypatch.setattr(published, "CHUNK_BYTES", chunk_bytes)
        try:
            import_published_dataset(source, folder / str(chunk_bytes), now=NOW)
        except Exception as error:  # noqa: BLE001 (the same refusal either way)
            results.append(str(error))
        else:
            results.append(folder_bytes(folder / str(chunk_bytes)))
    assert results[0] == results[1]
    if isinstance(results[0], dict):
        kept = {}
        for user, slug, rating in rows:
            user, slug = user.strip().lower(), slug.strip()
            if user in ("bad name", "") or "/" in slug or rating in ("", "x"):
                continue
            kept[(user, slug)] = int(float(rating))
        assert dataset_triples(folder / str(CHUNK_BYTES)) == {
            (user, slug, rating) for (user, slug), rating in kept.items()}


# --- the rating scale (issue 15, item 6) ---------------------------------------------------

def write_ratings(path: Path, values: list[str]) -> Path:
    path.write_text("user_id,movie_id,rating_val\n" + "".join(
        f"user{index % 3},film-{index},{value}\n" for index, value in enumerate(values)))
    return path


def run_import(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ended:
        cli.run(compile_training_data.main, argv)
    captured = capsys.readouterr()
    return ended.value.code, captured.out, captured.err


def test_star_ratings_are_detected_doubled_and_said(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    source = write_ratings(tmp_path / "ratings.csv", ["3.5", "5", "0.5", "4", "2.5"])
    code, out, _ = run_import(["import", str(source), "--output-dir", str(tmp_path / "data")],
                              capsys)
    assert code == 0
    assert "ratings on the 0.5-5 star scale, doubled to half stars" in out
    assert sorted(rating for _, _, rating in dataset_triples(tmp_path / "data")) == [
        1, 5, 7, 8, 10]


def test_whole_stars_alone_stay_on_the_ten_scale_unless_told(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_ratings(tmp_path / "ratings.csv", ["3", "5", "1"])
    assert read_published_ratings(source).ratings.tolist() == [3, 5, 1]
    assert read_published_ratings(source, Scale.STARS).ratings.tolist() == [6, 10, 2]
    code, out, _ = run_import(["import", str(source), "--scale", "stars", "--output-dir",
                               str(tmp_path / "data")], capsys)
    assert code == 0 and "doubled to half stars" in out


@pytest.mark.parametrize(("values", "argv", "first_line"), [
    (["3.5", "4", "7"], [], "line 2: mixes rating scales: '3.5' (stars 0.5-5) and '7' on line 4"),
    (["7", "3", "11"], [], "line 4: rating '11' is on no rating scale"),
    (["7", "0", "5"], [], "line 3: rating '0' is on no rating scale"),
    (["7", "7.5"], [], "line 3: rating '7.5' is on no rating scale"),
    (["4", "4.5"], ["--scale", "ten"], "line 3: rating '4.5' is not a whole number of half"),
    (["4", "8"], ["--scale", "stars"], "line 3: rating '8' is above 5 stars (--scale stars)"),
])
def test_mixed_or_impossible_scales_are_refused_and_nothing_changes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], values: list[str], argv: list[str],
        first_line: str) -> None:
    import_fixture(tmp_path / "data")
    before = folder_bytes(tmp_path / "data")
    source = write_ratings(tmp_path / "ratings.csv", values)
    capsys.readouterr()
    code, _, err = run_import(["import", str(source), *argv, "--output-dir",
                               str(tmp_path / "data")], capsys)
    assert code == 2
    assert err.startswith(f"ERROR: {source}, {first_line}") and "Traceback" not in err
    assert {name: data for name, data in folder_bytes(tmp_path / "data").items()
            if name in before} == before
    assert not (tmp_path / "data" / layout.ARCHIVE_DIR).exists()
    assert not (tmp_path / "data" / layout.STAGING_DIR).exists()
