"""Shared test fixtures.

`../shared/` (real saved pages, the 500k ratings sample) is optional: tests that
need it skip cleanly where it is absent.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

SHARED_DIR = PROJECT_ROOT.parent / "shared"
SHARED_PAGES_DIR = SHARED_DIR / "letterboxd_pages"
SHARED_DATASET_DIR = SHARED_DIR / "datasets" / "letterboxd_ratings_500k"


def shared_page(name: str) -> str:
    """Text of a saved real page, or skip the test where ../shared is absent."""
    path = SHARED_PAGES_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    return path.read_text(encoding="utf-8")


@pytest.fixture
def shared_dataset_dir() -> Path:
    if not (SHARED_DATASET_DIR / "ratings.csv.gz").is_file():
        pytest.skip(f"{SHARED_DATASET_DIR} is not available")
    return SHARED_DATASET_DIR
