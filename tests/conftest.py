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
