"""The only module that talks HTTP: polite, retried, robots-aware page fetching.

Politeness lives here so that no caller can forget it: one rate limit for the
whole process, robots.txt obeyed before any request, Retry-After honoured by
every thread, and the crawl stops at the first Cloudflare challenge instead of
retrying its way into a ban. We never try to get past bot protection.

`Fetcher` is the public face; its separable parts live in `scraping/`: what a
response means (`responses`), the rate limit (`rate_limit`), robots.txt (`robots`),
the one deadline each request runs under (`deadline`) and the counters behind
`stats()` (`fetch_stats`).
"""
from __future__ import annotations

import logging
import random
import re
import socket
import threading
import time
import zlib
from dataclasses import dataclass
from types import TracebackType
from typing import Callable, Iterator, Mapping, TypeVar
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3.exceptions
from tenacity import (RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt,
                      stop_any)

from config import Config
from errors import (FetchError, HostLookupError, IncompletePageError, InvalidNameError,
                    MarkupError, PageUnavailableError, RateLimitedError, ResponseTooLargeError,
                    RobotsDisallowedError, StopCrawlError, TransientError)
from scraping.deadline import DeadlineAdapter, DeadlineWatch
from scraping.fetch_stats import FetchStats, StatsCounters
from scraping.rate_limit import Clock, RateLimiter, Sleep
from scraping.responses import (classify_response, is_cloudflare_challenge, page_text,
                                parse_retry_after)
from scraping.robots import RobotsPolicy

__all__ = ["Clock", "FetchStats", "Fetcher", "RateLimiter", "RobotsPolicy", "Sleep",
           "classify_response", "is_cloudflare_challenge", "parse_retry_after"]

logger = logging.getLogger(__name__)

_Result = TypeVar("_Result")

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_CHUNK_BYTES = 64 * 1024
# What we decompress ourselves (see `_read_body`); requests would add br or zstd when
# their packages happen to be installed.
_ACCEPT_ENCODING = "gzip, deflate"
_MAX_BACKOFF_DOUBLINGS = 30
_UNSAFE_PATH_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")
_ACCEPT = "text/html, text/plain;q=0.8"
# The longest library message kept in an error line; the full chain goes to the debug log.
_MAX_REASON_CHARACTERS = 120


def _body_decoder(url: str, content_encoding: str) -> "zlib._Decompress | None":
    """A decompressor for the body, None for a plain one."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # a gzip or zlib header, either
    raise PageUnavailableError(url, f"the body is in an encoding we did not ask for: {encoding}")


@dataclass(frozen=True)
class _Response:
    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Fetcher:
    """Fetches site-relative pages from `config.base_url`, politely, from any number of threads.

    Share one instance between all worker threads: the rate limit, robots.txt
    cache and the stop-after-a-challenge switch only work if they are shared.

    Every wait (retry backoff, rate-limit slot) ends early once the crawl stops or
    the fetcher is closed, and nothing more is sent: otherwise an abandoned worker
    thread would keep the process alive, still requesting, for the whole retry budget.
    An injected `sleep` (tests) is not interrupted, but nothing is sent after it either.
    """

    def __init__(self, config: Config, *, rate_limiter: RateLimiter | None = None,
                 clock: Clock = time.monotonic, sleep: Sleep | None = None) -> None:
        self._config = config
        self._abort = threading.Event()
        self._sleep = sleep if sleep is not None else self._sleep_unless_aborted
        self._limiter = rate_limiter if rate_limiter is not None else RateLimiter(
            config.requests_per_second, config.rate_jitter, clock=clock, sleep=self._sleep)
        self._robots = RobotsPolicy(self._load_robots_txt)
        self._counters = StatsCounters()
        self._origin = _origin_of(config.base_url)
        self._local = threading.local()
        self._deadlines = DeadlineWatch()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._stopped_by: StopCrawlError | None = None
        self._rng = random.Random()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Wake every thread waiting to retry or for its slot; they fail without sending."""
        self._abort.set()
        self._deadlines.close()
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def stats(self) -> FetchStats:
        return self._counters.snapshot()

    @property
    def stopped(self) -> bool:
        """True once the site asked us to go (a block, a persistent 429); nothing is sent after."""
        return self._stopped_by is not None

    @property
    def stop_reason(self) -> StopCrawlError | None:
        """What stopped it first: later refusals only echo it."""
        return self._stopped_by

    def get_html(self, path: str) -> str:
        """The page at a site-relative path like "/thebigal/films/", or a typed FetchError."""
        return self.get_page(path, lambda text: text)

    def get_page(self, path: str, read: Callable[[str], _Result]) -> _Result:
        """What `read` (a page parser) makes of the page at a site-relative path.

        `read` runs inside the retries, so a page it finds cut short
        (IncompletePageError) is fetched again with backoff, like a 5xx; one still cut
        short after the last attempt is a TransientError naming the URL.
        """
        url = self._url_for(path)
        self._raise_if_stopped(url)
        try:
            if not self._robots.can_fetch(url, self._config.user_agent):
                raise RobotsDisallowedError(url, "robots.txt disallows this URL; not requested")
            return self._with_retries(lambda page_url: self._read_page(page_url, read), url)
        except StopCrawlError as error:
            self._stop(error)
            raise

    # -- one attempt ---------------------------------------------------------

    def _read_page(self, url: str, read: Callable[[str], _Result]) -> _Result:
        text = self._fetch_page(url)
        try:
            return read(text)
        except IncompletePageError as error:
            raise TransientError(url, f"page cut short ({error})") from None
        except MarkupError as error:
            raise MarkupError(f"{error}: {url}") from None

    def _fetch_page(self, url: str) -> str:
        response = self._download(url, check_robots=True)
        self._classify(response)
        return page_text(response.url, response.body)

    def _load_robots_txt(self, robots_url: str) -> str:
        return self._with_retries(self._fetch_robots_txt, robots_url)

    def _fetch_robots_txt(self, url: str) -> str:
        response = self._download(url, check_robots=False)
        if response.status in (404, 410) and not is_cloudflare_challenge(response.headers,
                                                                         response.text):
            logger.info("no robots.txt at %s (HTTP %d): no rules to obey", url, response.status)
            return ""
        self._classify(response)
        return response.text

    def _classify(self, response: _Response) -> None:
        try:
            classify_response(response.url, response.status, response.headers, response.text)
        except RateLimitedError:
            self._counters.rate_limit_seen()
            raise

    def _download(self, url: str, *, check_robots: bool) -> _Response:
        """One request, following redirects only within our own site."""
        for _ in range(_MAX_REDIRECTS + 1):
            response = self._request_once(url)
            location = response.headers.get("Location")
            if response.status not in _REDIRECT_STATUSES or not location:
                return response
            target = urljoin(url, location)
            if _origin_of(target) != self._origin:
                raise PageUnavailableError(url, f"refusing to follow a redirect off the site to "
                                           f"{target}")
            if check_robots and not self._robots.can_fetch(target, self._config.user_agent):
                raise RobotsDisallowedError(target, "redirected to a URL robots.txt disallows")
            url = target
        raise PageUnavailableError(url, f"more than {_MAX_REDIRECTS} redirects")

    def _request_once(self, url: str) -> _Response:
        self._raise_if_stopped(url)
        self._limiter.acquire()
        # Another thread may have hit a challenge while we waited for our slot.
        self._raise_if_stopped(url)
        session = self._session()
        timeout = (self._config.connect_timeout, self._config.read_timeout)
        self._counters.request_sent()
        # One deadline for connect, status line, headers and body: the socket timeouts
        # only bound each read, and a server may send one byte per read.
        with self._deadlines.limit(self._config.read_timeout) as deadline:
            try:
                with session.get(url, stream=True, timeout=timeout,
                                 allow_redirects=False) as response:
                    self._counters.response_received(response.status_code)
                    body = self._read_body(url, response)
                    status, headers = response.status_code, response.headers
            except (requests.exceptions.RequestException,
                    urllib3.exceptions.HTTPError) as error:  # the body is read from urllib3
                if deadline.expired:
                    raise self._too_slow(url) from None
                raise _network_error(url, error) from error
            if deadline.expired:  # a body without a length just ends where it was cut
                raise self._too_slow(url)
        return _Response(url=url, status=status, headers=headers, body=body)

    def _too_slow(self, url: str) -> TransientError:
        return TransientError(url, f"no complete answer within {self._config.read_timeout:g} s")

    def _read_body(self, url: str, response: requests.Response) -> bytes:
        """The body, refusing oversized ones.

        The body is read raw and decompressed here (urllib3 would keep reading until
        compressed bytes yield output), and the size limit counts decompressed bytes,
        so a compression bomb stops at the limit. The request's deadline cuts a body
        that trickles in; a body shorter than its Content-Length surfaces from urllib3
        as ProtocolError, which `_request_once` turns into TransientError.
        """
        limit = self._config.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ResponseTooLargeError(url, f"Content-Length {declared} exceeds {limit} bytes")
        decoder = _body_decoder(url, response.headers.get("Content-Encoding", ""))
        chunks: list[bytes] = []
        size = 0

        def keep(chunk: bytes) -> None:
            nonlocal size
            size += len(chunk)
            if size > limit:
                raise ResponseTooLargeError(url, f"body exceeds {limit} bytes")
            chunks.append(chunk)

        try:
            while raw := response.raw.read1(_CHUNK_BYTES, decode_content=False):
                self._raise_if_stopped(url)
                # One byte past the limit is enough to know it is exceeded.
                keep(raw if decoder is None else decoder.decompress(raw, limit - size + 1))
            if decoder is not None:
                keep(decoder.flush())
        except zlib.error as error:
            raise PageUnavailableError(url, f"the compressed body is corrupt ({error})") from None
        finally:
            self._counters.body_read(size)
        return b"".join(chunks)

    # -- retries -------------------------------------------------------------

    def _with_retries(self, attempt: Callable[[str], _Result], url: str) -> _Result:
        retrying = Retrying(
            retry=retry_if_exception_type((TransientError, RateLimitedError)),
            # _aborted first: a stopped crawl is not "over budget" and must not log so.
            stop=stop_any(self._aborted, stop_after_attempt(self._config.retry_attempts),
                          self._over_budget),
            wait=self._wait_seconds,
            sleep=self._sleep,
            before_sleep=self._before_retry_sleep,
            reraise=True,
        )
        return retrying(attempt, url)

    def _backoff(self, attempt_number: int) -> float:
        """initial * 2^(n-1) plus up to `initial` of jitter, capped at backoff_max.

        Jitter so that threads failing together do not come back together.
        """
        initial = self._config.backoff_initial
        exponential = initial * 2.0 ** min(attempt_number - 1, _MAX_BACKOFF_DOUBLINGS)
        return min(self._config.backoff_max, exponential + self._rng.uniform(0, initial))

    def _wait_seconds(self, state: RetryCallState) -> float:
        backoff = self._backoff(state.attempt_number)
        error = _outcome_error(state)
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            return max(error.retry_after, backoff)
        return backoff

    def _aborted(self, state: RetryCallState) -> bool:
        return self._abort.is_set()

    def _over_budget(self, state: RetryCallState) -> bool:
        """Stop once the waits so far plus the next one would exceed the retry budget."""
        total = state.idle_for + state.upcoming_sleep
        if total <= self._config.retry_budget_seconds:
            return False
        logger.warning("giving up after %d attempts: waiting %.0f s more would exceed the "
                       "%.0f s retry budget (%s)", state.attempt_number, state.upcoming_sleep,
                       self._config.retry_budget_seconds, _outcome_error(state))
        return True

    def _before_retry_sleep(self, state: RetryCallState) -> None:
        error = _outcome_error(state)
        self._counters.retry_scheduled()
        if isinstance(error, RateLimitedError):
            self._limiter.pause_for(state.upcoming_sleep)
        logger.warning("%s; retry %d of %d in %.1f s", error, state.attempt_number,
                       self._config.retry_attempts - 1, state.upcoming_sleep)

    # -- plumbing ------------------------------------------------------------

    def _url_for(self, path: str) -> str:
        """base_url + path, for a path that can only point into our own site."""
        if (not isinstance(path, str) or not path.startswith("/") or path.startswith("//")
                or _UNSAFE_PATH_CHARACTERS.search(path)):
            raise InvalidNameError(f"not a site-relative path: {path!r}")
        parts = urlsplit(path)
        if (parts.scheme or parts.netloc or parts.fragment
                # Servers decode %2e before resolving dot segments, so must we.
                or any(unquote(segment) in (".", "..") for segment in parts.path.split("/"))):
            raise InvalidNameError(f"not a site-relative path: {path!r}")
        return self._config.base_url + path

    def _session(self) -> requests.Session:
        """One Session per thread: requests does not promise that a Session is thread-safe."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = DeadlineAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers.update({"User-Agent": self._config.user_agent, "Accept": _ACCEPT,
                                    "Accept-Encoding": _ACCEPT_ENCODING})
            with self._lock:
                self._sessions.append(session)
            self._local.session = session
        return session

    def _sleep_unless_aborted(self, seconds: float) -> None:
        self._abort.wait(seconds)

    def _raise_if_stopped(self, url: str) -> None:
        """Refuse a request once aborted: with the stop's own type, so callers treat it alike."""
        if not self._abort.is_set():
            return
        reason = self._stopped_by
        if reason is None:
            raise FetchError(url, "not requested: the fetcher is closed")
        raise type(reason)(url, f"not requested: the crawl stopped after [{reason}]")

    def _stop(self, error: StopCrawlError) -> None:
        with self._lock:
            if self._stopped_by is not None:
                return
            self._stopped_by = error
        # After _stopped_by is set, so a thread that sees the abort also sees the reason.
        self._abort.set()
        logger.error("stopping all requests: %s", error)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything behind it: requests wraps urllib3, which wraps the socket."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        behind = (current.__cause__, current.__context__, getattr(current, "reason", None),
                  *current.args)
        pending.extend(cause for cause in behind if isinstance(cause, BaseException))


def _network_error(url: str, error: BaseException) -> FetchError:
    """The typed error for a failed request, in one short line.

    A failed name lookup means this machine is offline (or has no DNS): retrying only
    repeats it, so it is not transient. A TLS failure does not heal on a retry either.
    """
    causes = list(_causes(error))
    logger.debug("request for %s failed: %r", url, causes)
    innermost = causes[-1]
    reason = (str(innermost) or type(innermost).__name__)[:_MAX_REASON_CHARACTERS]
    if any(isinstance(cause, (urllib3.exceptions.NameResolutionError, socket.gaierror))
           for cause in causes):
        host = urlsplit(url).hostname
        return HostLookupError(url, f"cannot look up {host}: no network or no DNS ({reason})")
    if isinstance(error, requests.exceptions.SSLError):
        return PageUnavailableError(url, f"TLS failure ({reason})")
    if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                          requests.exceptions.ChunkedEncodingError,
                          requests.exceptions.ContentDecodingError,
                          urllib3.exceptions.HTTPError)):
        return TransientError(url, f"network error or truncated body ({reason})")
    return FetchError(url, f"request failed ({reason})")


def _origin_of(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _outcome_error(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None else None
