"""Reading films' own pages, one after another, for their metadata.

One at a time: the shared rate (about a request a second) is what bounds the pass, and
a film is one page. A film whose page is gone, private or unreadable is reported and
the pass goes on; a StopCrawlError (the site wants us gone) ends it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterable, Iterator

from errors import (InvalidNameError, LetterboxdError, MarkupError, NotFoundError,
                    PageUnavailableError, PrivateError, ResponseTooLargeError,
                    RobotsDisallowedError, TransientError)
from letterboxd.records import FilmDetails
from scraping.walk import HtmlFetcher, scrape_film

# Failures that concern one film only.
FILM_LEVEL_ERRORS = (NotFoundError, PrivateError, TransientError, ResponseTooLargeError,
                     RobotsDisallowedError, PageUnavailableError, MarkupError, InvalidNameError)


@dataclass(frozen=True, slots=True)
class FilmPageResult:
    """One film's outcome; exactly one of `details` and `error` is None."""

    slug: str
    details: FilmDetails | None
    error: LetterboxdError | None


def scrape_films(fetcher: HtmlFetcher, slugs: Iterable[str], *,
                 stop: threading.Event | None = None) -> Iterator[FilmPageResult]:
    """Each film's page, in order; stops before the next film once `stop` is set."""
    for slug in slugs:
        if stop is not None and stop.is_set():
            return
        try:
            details = scrape_film(fetcher, slug)
        except FILM_LEVEL_ERRORS as error:
            yield FilmPageResult(slug, None, error)
        else:
            yield FilmPageResult(slug, details, None)
