"""The film pass: read the films' own pages for their metadata, save in batches.

`compile_training_data.py films` runs it after (or between) crawls, so that a scraped
dataset gains what an imported one has: genres, runtime, language, countries, whether
a title is a series, and Letterboxd's own average and count. Batches are saved like
the ratings (a kill loses at most the batch in hand, which the next run reads again);
a block by the site ends the pass with everything finished saved.
"""
from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from tqdm import tqdm

from dataset.film_metadata import FilmMetadata
from dataset.store import DatasetStore
from errors import LetterboxdError, NotFoundError, StopCrawlError
from films.codes import country_code, language_code
from letterboxd.records import FilmDetails
from scraping.film_pages import scrape_films
from scraping.walk import HtmlFetcher

logger = logging.getLogger("letterboxd.builder")


@dataclass
class FilmPassSummary:
    read: int = 0
    gone: int = 0
    failed: list[str] = field(default_factory=list)
    stopped_by: StopCrawlError | None = None


def metadata_of(details: FilmDetails, requested_slug: str) -> FilmMetadata:
    """A film page's record in the dataset's terms: ISO codes, `film`/`tv`."""
    return FilmMetadata(
        slug=requested_slug, lid=details.lid or "", letterboxd_id=details.letterboxd_id,
        title=details.title, year=details.year, genres=details.genres,
        runtime=details.runtime, language=language_code(details.language or ""),
        countries=tuple(dict.fromkeys(code for code in map(country_code, details.countries)
                                      if code)),
        content_type=details.content_type or "",
        average_rating=details.average_rating, rating_count=details.rating_count)


def run_film_pass(store: DatasetStore, fetcher: HtmlFetcher, *, limit: int | None,
                  older_than: timedelta | None, batch_size: int,
                  stop: threading.Event, progress: bool) -> FilmPassSummary:
    """Read the pages of the films that need it (never read, or read before `older_than`),
    at most `limit` of them, saving every `batch_size` films."""
    slugs = store.films_to_read(older_than)[:limit]
    summary = FilmPassSummary()
    batch: list[FilmMetadata] = []

    def save() -> None:
        store.save_film_metadata(batch)
        batch.clear()

    bar = tqdm(total=len(slugs), unit="film", desc="film pages", file=sys.stderr,
               disable=None if progress else True)
    try:
        for result in scrape_films(fetcher, slugs, stop=stop):
            bar.update(1)
            if result.details is not None:
                batch.append(metadata_of(result.details, result.slug))
                summary.read += 1
            elif isinstance(result.error, NotFoundError):
                batch.append(FilmMetadata(slug=result.slug, found=False))
                summary.gone += 1
            else:
                summary.failed.append(result.slug)
                logger.warning("film %s: %s", result.slug, _reason(result.error))
            if len(batch) >= batch_size:
                save()
    except StopCrawlError as error:
        summary.stopped_by = getattr(fetcher, "stop_reason", None) or error
    finally:
        bar.close()
        save()
    return summary


def _reason(error: LetterboxdError | None) -> str:
    return str(error) if error is not None else "unknown failure"
