"""The toolkit's exceptions and the exit code each one maps to.

Callers catch a type, never compare strings: a vanished user (`NotFoundError`)
is skipped, a challenge page (`BlockedError`) stops the whole run.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_BAD_INPUT = 2
EXIT_BLOCKED = 3
EXIT_UNAVAILABLE = 4
# The disk (or the user's quota, or the size limit of a file) ran out while writing; every
# write is committed whole or not at all, so nothing was lost.
EXIT_DISK_FULL = 5
# Whoever read the output stopped reading (`recommend.py USER | head -1`): what a process
# killed by SIGPIPE reports, as `git log | head` does.
EXIT_PIPE_CLOSED = 141


class LetterboxdError(Exception):
    """Base of every error this toolkit raises on purpose."""

    exit_code = EXIT_UNEXPECTED


def one_line(text: str) -> str:
    """`text` on one line: a library's message (pandas' parser errors) may hold breaks."""
    return " ".join(text.split())


# --- bad input ------------------------------------------------------------

class BadInputError(LetterboxdError):
    """Something the user gave us (a flag, a name, a file) cannot be used."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(BadInputError):
    """A flag or environment variable holds an unusable value."""


class InvalidNameError(BadInputError, ValueError):
    """A username or film slug that must not reach a URL or a path."""


class DatasetError(BadInputError):
    """A dataset file is missing, truncated or hand-edited into something invalid."""

    def __init__(self, path: object, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {one_line(message)}")


class ExportError(BadInputError):
    """A Letterboxd export ZIP or folder that cannot be read safely."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class UnusableFileError(BadInputError):
    """A path that is not a regular file where one is read or written (a symlink, a
    device, a FIFO, a folder), or a file over the size limit of what it should hold.

    Never written through or over, never opened in a way that could wait on a FIFO.
    `reason` completes a sentence about the path ("is a FIFO; ...").
    """

    def __init__(self, path: object, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path} {reason}")


# --- writing --------------------------------------------------------------

class DiskFullError(LetterboxdError):
    """The disk, a quota or the file size limit ran out (ENOSPC, EDQUOT, EFBIG).

    Writes are appended before their commit point or replace files whole, so the data
    on disk is as it was before the write began: nothing was lost.
    """

    exit_code = EXIT_DISK_FULL

    def __init__(self, path: object, then: str = "run `continue`") -> None:
        self.path = path
        super().__init__(f"disk full while writing {path}; nothing was lost, free space "
                         f"and {then}")


# --- fetching -------------------------------------------------------------

class FetchError(LetterboxdError):
    """A page could not be fetched; `url` says which."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        super().__init__(f"{message}: {url}")


class NotFoundError(FetchError):
    """Letterboxd's 404 page: the user or film does not exist (any more)."""


class PrivateError(FetchError):
    """Letterboxd's own 403 page: the content exists but is not public."""


class RobotsDisallowedError(FetchError):
    """robots.txt forbids the URL; it was not requested."""

    exit_code = EXIT_BAD_INPUT


class ResponseTooLargeError(FetchError):
    """The body exceeded the configured size limit and was abandoned.

    A crawl skips the user it belongs to; a page the run needs ends it (exit code 4).
    """

    exit_code = EXIT_UNAVAILABLE


class PageUnavailableError(FetchError):
    """This one page cannot be used: an unexpected 4xx (400, 451...), a redirect off the
    site or a redirect loop. Not retried; a crawl skips the user it belongs to, and a
    page the run needs ends it (exit code 4)."""

    exit_code = EXIT_UNAVAILABLE


class TransientError(FetchError):
    """5xx, reset, timeout, a truncated body or a page cut short; retried, raised once
    retries run out.

    One user's page failing is a skip; a page the whole run needs (the members list,
    the user asked for) ends it with exit code 4: try again later.
    """

    exit_code = EXIT_UNAVAILABLE


class HostLookupError(FetchError):
    """The site's host name could not be looked up: this machine is offline or has no DNS.

    Not retried, and not one user's problem: the run stops at once (exit code 4), keeping
    what it finished, instead of marking every remaining user as failed.
    """

    exit_code = EXIT_UNAVAILABLE


class StopCrawlError(FetchError):
    """The site wants us gone. Never retried; the whole run stops (exit code 3)."""

    exit_code = EXIT_BLOCKED


class BlockedError(StopCrawlError):
    """A Cloudflare challenge or access-denied page. We do not circumvent it."""


class RateLimitedError(StopCrawlError):
    """HTTP 429 (or a rate-limit page) that persisted through every retry."""

    def __init__(self, url: str, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(url, message)


class ModelFileError(LetterboxdError):
    """A saved model is missing, damaged, of another format or fitted on other data.

    Caught where models are loaded, which then refit: a model file is never trusted.
    """


# --- parsing --------------------------------------------------------------

class MarkupError(LetterboxdError):
    """A page did not have the structure we expect: Letterboxd's markup may have changed."""


class IncompletePageError(MarkupError):
    """A page that arrived whole at the HTTP level but is cut short as a document: its end
    is missing, a page that is not the last holds fewer films than a full one, or it holds
    far fewer than the count it shows. The fetcher reads it again with backoff, like a 5xx
    (`Fetcher.get_page`); one that stays incomplete is a TransientError (exit code 4)."""

    exit_code = EXIT_UNAVAILABLE


def exit_code_for(exc: BaseException) -> int:
    """Exit code for an exception that reached the top of a command."""
    if isinstance(exc, LetterboxdError):
        return exc.exit_code
    return EXIT_UNEXPECTED
