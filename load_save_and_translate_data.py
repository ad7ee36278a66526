"""The ratings dataset on disk: the public face of the `dataset` package.

Callers import from here; each name lives in the package module that has its job:
`dataset.layout` (file names, headers, state file, CSV bytes, translated row),
`dataset.checks` (validating readers), `dataset.install` (writer lock, staging,
archiving), `dataset.store` (`DatasetStore`), `dataset.loading` (what the model
reads), `dataset.published` (reading the Kaggle layout) and `dataset.importer`
(importing it).
"""
from __future__ import annotations

from dataset.importer import (ImportSummary, PublishedRatings, import_published_dataset,
                              read_published_ratings)
from dataset.install import archive_dataset, dataset_exists, exclusive_writer
from dataset.layout import (BACKUP_NAME, BLOCK_FILES, COMPACT_SUFFIX, FILMS_HEADER,
                            FORMAT_VERSION, HEADERS, RATINGS_HEADER, STAGING_DIR,
                            TRANSLATED_HEADER, UNRATED_HEADER, UPDATES_HEADER, USERS_HEADER,
                            DatasetState, ScrapeStatus, spreadsheet_safe)
from dataset.loading import (LOAD_ATTEMPTS, RatingsData, dataset_fingerprint, load_film_table,
                             load_ratings_dataset)
from dataset.published import PUBLISHED_RATINGS_COLUMNS, Scale
from dataset.store import (MAX_FAILED_SCRAPES, BatchSummary, DatasetStore, ScrapedFilm,
                           UserScrapeRecord, UserState)

__all__ = [
    "BACKUP_NAME", "BLOCK_FILES", "COMPACT_SUFFIX", "FILMS_HEADER", "FORMAT_VERSION", "HEADERS",
    "LOAD_ATTEMPTS", "MAX_FAILED_SCRAPES", "PUBLISHED_RATINGS_COLUMNS", "RATINGS_HEADER",
    "STAGING_DIR", "TRANSLATED_HEADER", "UNRATED_HEADER", "UPDATES_HEADER", "USERS_HEADER",
    "BatchSummary", "DatasetState", "DatasetStore", "ImportSummary", "PublishedRatings",
    "RatingsData", "Scale", "ScrapeStatus", "ScrapedFilm", "UserScrapeRecord", "UserState",
    "archive_dataset", "dataset_exists", "dataset_fingerprint", "exclusive_writer",
    "import_published_dataset", "load_film_table", "load_ratings_dataset",
    "read_published_ratings", "spreadsheet_safe",
]
