"""The only module that talks HTTP: polite, retried, robots-aware page fetching.

Politeness lives here so that no caller can forget it: one rate limit for the
whole process, robots.txt obeyed before any request, Retry-After honoured by
every thread, and the crawl stops at the first Cloudflare challenge instead of
retrying its way into a ban. We never try to get past bot protection.
"""
from __future__ import annotations

import logging
import random
import re
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from types import MappingProxyType, TracebackType
from typing import Callable, Mapping, TypeVar
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3.exceptions
from protego import Protego
from requests.adapters import HTTPAdapter
from tenacity import (RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt,
                      stop_any)

from config import Config
from errors import (BlockedError, FetchError, InvalidNameError, NotFoundError,
                    PageUnavailableError, PrivateError, RateLimitedError, ResponseTooLargeError,
                    RobotsDisallowedError, StopCrawlError, TransientError)

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], None]
_Result = TypeVar("_Result")

# --- classifying responses ------------------------------------------------

# Cloudflare's interstitial. Matched on the <title> only, because a review on a
# normal page may well say "just a moment".
_CHALLENGE_TITLE = re.compile(r"<title>\s*Just a moment", re.IGNORECASE)
_CHALLENGE_MARKERS = ("challenges.cloudflare.com", "cf-chl", "_cf_chl_opt")
# Title of Cloudflare's 1xxx error pages (1020 access denied, 1015 rate limited).
_CLOUDFLARE_ERROR_TITLE = "used Cloudflare to restrict access"
_RATE_LIMIT_PHRASE = "You are being rate limited"
# Letterboxd's own 403 page for hidden watchlists, private lists and the like.
_PRIVATE_MARKERS = ("Letterboxd - Forbidden", "correct clearance", "classified",
                    "Professor Falken")
_TRANSIENT_STATUSES = frozenset({408, 425})
_RETRY_AFTER_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def is_cloudflare_challenge(headers: Mapping[str, str], body_text: str) -> bool:
    """A bot challenge, whatever the status: Cloudflare sends them as 403, 503, even 200."""
    mitigated = _lowercase_keys(headers).get("cf-mitigated", "")
    if mitigated.strip().lower() == "challenge":
        return True
    return bool(_CHALLENGE_TITLE.search(body_text)) or any(
        marker in body_text for marker in _CHALLENGE_MARKERS)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP-date); None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if _RETRY_AFTER_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now if now is not None else datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


def classify_response(url: str, status: int, headers: Mapping[str, str], body_text: str) -> None:
    """Raise the typed error a response stands for; return quietly for a usable page.

    Headers such as `server: cloudflare` or `cf-ray` prove nothing: Cloudflare
    fronts every Letterboxd response, including good pages and private 403s.
    """
    if is_cloudflare_challenge(headers, body_text):
        raise BlockedError(url, f"Cloudflare challenge (HTTP {status}); not circumventing it")
    cloudflare_error_page = _CLOUDFLARE_ERROR_TITLE in body_text
    # The rate-limit phrase alone on a 200 page could be a user's review, so it
    # only counts on an error status or on Cloudflare's own error page.
    rate_limit_page = _RATE_LIMIT_PHRASE in body_text and (cloudflare_error_page or status >= 400)
    if status == 429 or rate_limit_page:
        retry_after = parse_retry_after(_lowercase_keys(headers).get("retry-after"))
        raise RateLimitedError(url, f"rate limited (HTTP {status})", retry_after=retry_after)
    if cloudflare_error_page:
        raise BlockedError(url, f"Cloudflare denied access (HTTP {status})")
    if 200 <= status < 300:
        return
    if status == 404:
        raise NotFoundError(url, "not found (HTTP 404)")
    if status == 410:
        raise NotFoundError(url, "gone (HTTP 410)")
    if status == 403:
        if any(marker in body_text for marker in _PRIVATE_MARKERS):
            raise PrivateError(url, "not public (Letterboxd's own HTTP 403 page)")
        raise BlockedError(url, "forbidden (HTTP 403 without Letterboxd's page)")
    if status >= 500 or status in _TRANSIENT_STATUSES:
        raise TransientError(url, f"server error (HTTP {status})")
    raise PageUnavailableError(url, f"unexpected HTTP {status}")


def _lowercase_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


# --- rate limiting ----------------------------------------------------------

class RateLimiter:
    """Hands out request slots 1/rate apart (jittered) to all threads of the process.

    Slots rather than a token bucket: a bucket lets a burst through after an idle
    spell, and bursts are what get a crawler rate limited.
    """

    def __init__(self, rate: float, jitter: float = 0.0, *, clock: Clock = time.monotonic,
                 sleep: Sleep = time.sleep, rng: random.Random | None = None) -> None:
        if rate < 0:
            raise ValueError(f"rate must not be negative, got {rate}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter}")
        self._interval = 1.0 / rate if rate else 0.0
        self._jitter = jitter
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._lock = threading.Lock()
        self._next_slot = float("-inf")
        self._paused_until = float("-inf")

    def acquire(self) -> float:
        """Block until the caller may send a request; returns the slot time (clock units)."""
        while True:
            with self._lock:
                now = self._clock()
                slot = max(now, self._next_slot, self._paused_until)
                self._next_slot = slot + self._gap()
            if slot > now:
                self._sleep(slot - now)
            with self._lock:
                if self._paused_until <= slot:
                    return slot
            # A pause arrived while we slept: queue again behind it.

    def pause_until(self, until: float) -> None:
        """Nobody gets a slot before `until`: a 429 means the whole process must back off."""
        with self._lock:
            self._paused_until = max(self._paused_until, until)

    def pause_for(self, seconds: float) -> None:
        self.pause_until(self._clock() + seconds)

    def _gap(self) -> float:
        if not self._jitter:
            return self._interval
        return self._interval * self._rng.uniform(1 - self._jitter, 1 + self._jitter)


# --- robots.txt -------------------------------------------------------------

class RobotsPolicy:
    """robots.txt rules per host, loaded once on first use.

    Protego, not urllib.robotparser: the standard parser takes `*` in a path
    literally, so Letterboxd's `Disallow: /*/by/*` would never match and we
    would crawl exactly what the site asked crawlers to leave alone.
    """

    def __init__(self, load: Callable[[str], str]) -> None:
        """`load(robots_url)` returns the robots.txt text ("" when there is none) or raises."""
        self._load = load
        self._rules: dict[str, Protego] = {}
        self._lock = threading.Lock()

    def can_fetch(self, url: str, user_agent: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        # Load under the lock: other threads cannot do anything before the rules are known anyway.
        with self._lock:
            rules = self._rules.get(origin)
            if rules is None:
                rules = Protego.parse(self._load(f"{origin}/robots.txt"))
                self._rules[origin] = rules
                logger.info("loaded robots.txt for %s", origin)
            return rules.can_fetch(url, user_agent)


# --- statistics -------------------------------------------------------------

@dataclass(frozen=True)
class FetchStats:
    """A snapshot of what a Fetcher has done so far."""

    requests: int = 0
    retries: int = 0
    bytes_received: int = 0
    rate_limited: int = 0
    responses_by_status: Mapping[int, int] = field(default_factory=dict)


class _StatsCounters:
    """Thread-safe running totals behind FetchStats."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._retries = 0
        self._bytes = 0
        self._rate_limited = 0
        self._statuses: Counter[int] = Counter()

    def request_sent(self) -> None:
        with self._lock:
            self._requests += 1

    def response_received(self, status: int) -> None:
        with self._lock:
            self._statuses[status] += 1

    def body_read(self, size: int) -> None:
        with self._lock:
            self._bytes += size

    def retry_scheduled(self) -> None:
        with self._lock:
            self._retries += 1

    def rate_limit_seen(self) -> None:
        with self._lock:
            self._rate_limited += 1

    def snapshot(self) -> FetchStats:
        with self._lock:
            return FetchStats(requests=self._requests, retries=self._retries,
                              bytes_received=self._bytes, rate_limited=self._rate_limited,
                              responses_by_status=MappingProxyType(dict(self._statuses)))


# --- fetching ---------------------------------------------------------------

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_CHUNK_BYTES = 64 * 1024
# What we decompress ourselves (see `_read_body`); requests would add br or zstd when
# their packages happen to be installed.
_ACCEPT_ENCODING = "gzip, deflate"
_MAX_BACKOFF_DOUBLINGS = 30
_UNSAFE_PATH_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")
_ACCEPT = "text/html, text/plain;q=0.8"


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
    text: str


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
        self._clock = clock
        self._abort = threading.Event()
        self._sleep = sleep if sleep is not None else self._sleep_unless_aborted
        self._limiter = rate_limiter if rate_limiter is not None else RateLimiter(
            config.requests_per_second, config.rate_jitter, clock=clock, sleep=self._sleep)
        self._robots = RobotsPolicy(self._load_robots_txt)
        self._counters = _StatsCounters()
        self._origin = _origin_of(config.base_url)
        self._local = threading.local()
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
        url = self._url_for(path)
        self._raise_if_stopped(url)
        try:
            if not self._robots.can_fetch(url, self._config.user_agent):
                raise RobotsDisallowedError(url, "robots.txt disallows this URL; not requested")
            return self._with_retries(self._fetch_page, url)
        except StopCrawlError as error:
            self._stop(error)
            raise

    # -- one attempt ---------------------------------------------------------

    def _fetch_page(self, url: str) -> str:
        response = self._download(url, check_robots=True)
        self._classify(response)
        return response.text

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
        started = self._clock()
        try:
            with session.get(url, stream=True, timeout=timeout, allow_redirects=False) as response:
                self._counters.response_received(response.status_code)
                body = self._read_body(url, response, deadline=started + self._config.read_timeout)
                return _Response(url=url, status=response.status_code, headers=response.headers,
                                 text=body.decode("utf-8", errors="replace"))
        except requests.exceptions.SSLError as error:
            # A certificate or protocol mismatch does not heal on a retry.
            raise PageUnavailableError(url, f"TLS failure: {error}") from error
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
                urllib3.exceptions.HTTPError) as error:  # the body is read from urllib3
            raise TransientError(url, f"network error or truncated body ({error})") from error
        except requests.exceptions.RequestException as error:
            raise FetchError(url, f"request failed: {error}") from error

    def _read_body(self, url: str, response: requests.Response, deadline: float) -> bytes:
        """The body, refusing oversized ones and ones that trickle in too slowly.

        `read1` returns whatever has arrived, so the deadline is checked after every
        few bytes: a server trickling a byte at a time cannot hold a thread for longer
        than the deadline plus one socket read timeout. The body is read raw and
        decompressed here (urllib3 would keep reading until compressed bytes yield
        output, out of the deadline's sight), and the size limit counts decompressed
        bytes, so a compression bomb stops at the limit. A body shorter than its
        Content-Length surfaces from urllib3 as ProtocolError, which `_request_once`
        turns into TransientError.
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
                if self._clock() > deadline:
                    raise TransientError(
                        url, f"body took longer than {self._config.read_timeout} s to arrive")
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
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
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


def _origin_of(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _outcome_error(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None else None
