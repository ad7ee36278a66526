"""Shared test fixtures.

`../shared/` (the 500k ratings sample) is optional: tests that need it skip cleanly
where it is absent. The real saved pages the parser tests read are copied into
tests/fixtures/pages, so those run everywhere.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

SHARED_DIR = PROJECT_ROOT.parent / "shared"
SHARED_DATASET_DIR = SHARED_DIR / "datasets" / "letterboxd_ratings_500k"


@pytest.fixture
def shared_dataset_dir() -> Path:
    if not (SHARED_DATASET_DIR / "ratings.csv.gz").is_file():
        pytest.skip(f"{SHARED_DATASET_DIR} is not available")
    return SHARED_DATASET_DIR


@pytest.fixture(scope="session")
def shared_sample_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared sample imported with its film metadata, once per run: tests may read it
    and cache its model, never change its dataset files."""
    if not (SHARED_DATASET_DIR / "ratings.csv.gz").is_file():
        pytest.skip(f"{SHARED_DATASET_DIR} is not available")
    from compile_training_data import main as build_main

    data_dir = tmp_path_factory.mktemp("shared_sample") / "data"
    assert build_main(["import", str(SHARED_DATASET_DIR / "ratings.csv.gz"), "--movies",
                       str(SHARED_DATASET_DIR / "movies.csv.gz"), "--output-dir",
                       str(data_dir), "-q"]) == 0
    return data_dir
