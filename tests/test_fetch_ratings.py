"""Tests for fetch_ratings: classification, retries, robots.txt, rate limiting, size limits.

Network tests run against a tiny scripted HTTP server on 127.0.0.1 (port 0).
Retry waits go to an injected sleep, so nothing here really waits except the
one end-to-end rate-limit check (about half a second) and the checks that a real
backoff or rate-limit wait ends as soon as the crawl stops (well under a second each).
"""
from __future__ import annotations

import dataclasses
import gzip
import logging
import random
import socket
import struct
import threading
import time
import urllib.robotparser
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

import pytest
from protego import Protego

from config import Config
from errors import (BlockedError, FetchError, HostLookupError, InvalidNameError, MarkupError,
                    NotFoundError, exit_code_for, PageUnavailableError, PrivateError,
                    RateLimitedError, ResponseTooLargeError, RobotsDisallowedError,
                    TransientError)
from fetch_ratings import (Fetcher, RateLimiter, RobotsPolicy, classify_response,
                          parse_retry_after)
from read_in_data import parse_film_grid, scrape_users
from simulated_site.pages import ROBOTS_TXT
from tests.helpers import fixture_page

USER_AGENT = "fetch-ratings-tests/1.0 (+https://example.invalid/contact)"

# The Letterboxd robots.txt rules as documented in shared/docs (2025-07 snapshot).
LETTERBOXD_ROBOTS = ROBOTS_TXT

CHALLENGE_PAGE = ("<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
                  "<script src=\"https://challenges.cloudflare.com/turnstile/v0/api.js\"></script>"
                  "</body></html>")
PRIVATE_PAGE = ("<html><head><title>Letterboxd - Forbidden</title></head><body class=\"error\">"
                "<section class=\"message\"><p>The file you’re attempting to access is classified. "
                "Please contact us if you have the correct clearance.</p></section></body></html>")
NOT_FOUND_PAGE = ("<html><body class=\"error message-dark\"><strong>Sorry, we can’t find the "
                  "page you’ve requested.</strong></body></html>")
ACCESS_DENIED_PAGE = ("<html><head><title>Access denied | letterboxd.com used Cloudflare to "
                      "restrict access</title></head><body><h1>Error 1020</h1></body></html>")
RATE_LIMITED_PAGE = ("<html><head><title>Access denied | letterboxd.com used Cloudflare to "
                     "restrict access</title></head><body><h1>Error 1015</h1>"
                     "<h2>You are being rate limited</h2></body></html>")
CLOUDFLARE_HEADERS = {"Server": "cloudflare", "CF-RAY": "8a1b2c3d4e5f6789-AMS"}
REAL_PAGES = ["youngjaek__user_films_page1_thebigal_RAW.html",
                "youngjaek__film_mulholland-drive_RAW.html",
                "youngjaek__list_dave_official-top-250_page1_RAW.html",
                "sdl60660__members_popular_this-week_page1_RENDERED.html",
                "sdl60660__user_films_samtestacct_page1_RENDERED.html"]


# --- a scripted local server ------------------------------------------------

Responder = Callable[[BaseHTTPRequestHandler], None]


def reply(status: int = 200, body: str = "<html><body>ok</body></html>",
          headers: dict[str, str] | None = None) -> Responder:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        data = body.encode("utf-8")
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    return respond


def truncated(body: bytes, declared_length: int) -> Responder:
    """Promise `declared_length` bytes, send fewer, hang up."""
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(declared_length))
        handler.end_headers()
        handler.wfile.write(body)
        handler.close_connection = True
    return respond


def reset_connection() -> Responder:
    """Abort the connection (RST) without answering."""
    def respond(handler: BaseHTTPRequestHandler) -> None:
        linger_zero = struct.pack("ii", 1, 0)
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
        handler.close_connection = True
    return respond


def chunked(chunks: list[bytes]) -> Responder:
    """A body without Content-Length, sent with chunked transfer encoding."""
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Connection", "close")  # as it hangs up after the body
        handler.end_headers()
        for chunk in chunks:
            handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")
        handler.close_connection = True
    return respond


@dataclasses.dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    at: float


class ScriptedSite:
    """Answers each path with its scripted responders in turn (the last repeats), else 404."""

    def __init__(self) -> None:
        self._routes: dict[str, list[Responder]] = {}
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()
        self.requests: list[ReceivedRequest] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                site._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        class QuietServer(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients that abort a body on purpose cause broken pipes here

        self._server = QuietServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)
        self._thread.start()

    def route(self, path: str, *responders: Responder) -> None:
        with self._lock:
            self._routes[path] = list(responders)

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for request in self.requests if request.path == path)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(ReceivedRequest(handler.path, dict(handler.headers),
                                                 time.monotonic()))
            responders = self._routes.get(handler.path)
            served = self._served.get(handler.path, 0)
            self._served[handler.path] = served + 1
        if not responders:
            reply(404, NOT_FOUND_PAGE)(handler)
            return
        responders[min(served, len(responders) - 1)](handler)


@pytest.fixture
def site() -> Iterator[ScriptedSite]:
    scripted = ScriptedSite()
    yield scripted
    scripted.close()


def make_config(site: ScriptedSite, **changes: object) -> Config:
    settings: dict[str, object] = dict(
        base_url=site.base_url, user_agent=USER_AGENT, requests_per_second=0, rate_jitter=0,
        retry_attempts=3, backoff_initial=0.5, backoff_max=4, retry_budget_seconds=60,
        connect_timeout=2, read_timeout=5, max_response_bytes=64 * 1024, test_mode=True)
    settings.update(changes)
    return Config(**settings)  # type: ignore[arg-type]


class RecordingSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds


@pytest.fixture
def fetcher_for(site: ScriptedSite) -> Iterator[Callable[..., tuple[Fetcher, RecordingSleep]]]:
    fetchers: list[Fetcher] = []

    def build(**changes: object) -> tuple[Fetcher, RecordingSleep]:
        sleep = RecordingSleep()
        fetcher = Fetcher(make_config(site, **changes), sleep=sleep)
        fetchers.append(fetcher)
        return fetcher, sleep

    yield build
    for fetcher in fetchers:
        fetcher.close()


# --- classify_response --------------------------------------------------------

def test_ordinary_page_behind_cloudflare_is_fine() -> None:
    assert classify_response("u", 200, CLOUDFLARE_HEADERS, "<html>films</html>") is None


@pytest.mark.parametrize("name", REAL_PAGES)
def test_real_saved_pages_are_not_mistaken_for_errors(name: str) -> None:
    assert classify_response("u", 200, CLOUDFLARE_HEADERS, fixture_page(name)) is None


@pytest.mark.parametrize("status", [200, 403, 503])
def test_challenge_header_is_blocked_whatever_the_status(status: int) -> None:
    headers = {**CLOUDFLARE_HEADERS, "cf-mitigated": "challenge"}
    with pytest.raises(BlockedError):
        classify_response("u", status, headers, "<html></html>")


@pytest.mark.parametrize("status", [200, 403, 503])
@pytest.mark.parametrize("body", [
    CHALLENGE_PAGE,
    "<html><head><title>Just a moment...</title></head></html>",
    "<html><script src='https://challenges.cloudflare.com/x.js'></script></html>",
    "<html><form id='challenge-form' class='cf-chl-widget'></form></html>",
])
def test_challenge_body_is_blocked_whatever_the_status(status: int, body: str) -> None:
    with pytest.raises(BlockedError):
        classify_response("u", status, CLOUDFLARE_HEADERS, body)


@pytest.mark.parametrize("marker_page", [
    PRIVATE_PAGE,
    "<html><section class='message'><strong>Greetings, Professor Falken. "
    "Shall we play a game?</strong></section></html>",
])
def test_letterboxd_403_page_means_private(marker_page: str) -> None:
    with pytest.raises(PrivateError):
        classify_response("u", 403, CLOUDFLARE_HEADERS, marker_page)


def test_other_403_means_blocked_not_private() -> None:
    with pytest.raises(BlockedError):
        classify_response("u", 403, CLOUDFLARE_HEADERS, "<html><h1>403 Forbidden</h1></html>")


def test_challenge_wins_over_private_markers() -> None:
    headers = {**CLOUDFLARE_HEADERS, "cf-mitigated": "challenge"}
    with pytest.raises(BlockedError):
        classify_response("u", 403, headers, PRIVATE_PAGE)


def test_cloudflare_access_denied_page_is_blocked_even_with_200() -> None:
    with pytest.raises(BlockedError):
        classify_response("u", 200, CLOUDFLARE_HEADERS, ACCESS_DENIED_PAGE)


@pytest.mark.parametrize("status", [200, 403])
def test_cloudflare_rate_limit_page_is_rate_limited(status: int) -> None:
    with pytest.raises(RateLimitedError) as caught:
        classify_response("u", status, CLOUDFLARE_HEADERS, RATE_LIMITED_PAGE)
    assert not isinstance(caught.value, BlockedError)


def test_rate_limit_phrase_in_a_normal_page_is_not_an_error() -> None:
    review = "<html><p>My review: You are being rate limited by the runtime.</p></html>"
    assert classify_response("u", 200, CLOUDFLARE_HEADERS, review) is None


def test_429_without_retry_after() -> None:
    with pytest.raises(RateLimitedError) as caught:
        classify_response("u", 429, CLOUDFLARE_HEADERS, "slow down")
    assert caught.value.retry_after is None


def test_429_with_retry_after_seconds() -> None:
    with pytest.raises(RateLimitedError) as caught:
        classify_response("u", 429, {"retry-after": "120"}, "slow down")
    assert caught.value.retry_after == 120


def test_429_with_retry_after_http_date() -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=90)
    with pytest.raises(RateLimitedError) as caught:
        classify_response("u", 429, {"Retry-After": format_datetime(when, usegmt=True)}, "")
    assert caught.value.retry_after is not None
    assert 80 <= caught.value.retry_after <= 91


def test_parse_retry_after_variants() -> None:
    now = datetime(2026, 1, 20, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after(None, now) is None
    assert parse_retry_after(" 30 ", now) == 30
    assert parse_retry_after("1.5", now) == 1.5
    assert parse_retry_after("Tue, 20 Jan 2026 12:02:00 GMT", now) == 120
    assert parse_retry_after("Tue, 20 Jan 2026 11:00:00 GMT", now) == 0  # already passed
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) is None


@pytest.mark.parametrize("status, error", [
    (404, NotFoundError), (410, NotFoundError), (500, TransientError), (502, TransientError),
    (503, TransientError), (504, TransientError), (408, TransientError), (425, TransientError),
])
def test_status_codes(status: int, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        classify_response("https://x/y/", status, CLOUDFLARE_HEADERS, "<html></html>")
    assert caught.value.url == "https://x/y/"  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", [301, 400, 418, 426, 451])
def test_other_statuses_make_the_page_unavailable(status: int) -> None:
    with pytest.raises(PageUnavailableError):
        classify_response("u", status, {}, "")


# --- retries -----------------------------------------------------------------

def test_two_503_then_success(site: ScriptedSite, fetcher_for, caplog) -> None:
    site.route("/thebigal/films/", reply(503, "busy"), reply(503, "busy"), reply(200, "films"))
    fetcher, sleep = fetcher_for(retry_attempts=5)
    with caplog.at_level(logging.WARNING, logger="fetch_ratings"):
        assert fetcher.get_html("/thebigal/films/") == "films"
    assert site.count("/thebigal/films/") == 3
    assert len(sleep.calls) == 2
    assert all(0.5 <= wait <= 4 for wait in sleep.calls)
    assert sum("retry" in record.getMessage() for record in caplog.records) == 2
    stats = fetcher.stats()
    assert stats.retries == 2
    assert stats.requests == 4  # robots.txt + three attempts
    assert stats.responses_by_status[503] == 2


def test_connection_reset_is_retried(site: ScriptedSite, fetcher_for) -> None:
    site.route("/p/", reset_connection(), reply(200, "after reset"))
    fetcher, _ = fetcher_for()
    assert fetcher.get_html("/p/") == "after reset"
    assert site.count("/p/") == 2


def test_truncated_body_is_retried(site: ScriptedSite, fetcher_for) -> None:
    site.route("/p/", truncated(b"<html>half a pa", 5000), reply(200, "whole page"))
    fetcher, _ = fetcher_for()
    assert fetcher.get_html("/p/") == "whole page"
    assert site.count("/p/") == 2


def test_retries_exhausted_raise_transient_error(site: ScriptedSite, fetcher_for) -> None:
    site.route("/p/", reply(502, "bad gateway"))
    fetcher, sleep = fetcher_for(retry_attempts=4)
    with pytest.raises(TransientError):
        fetcher.get_html("/p/")
    assert site.count("/p/") == 4
    assert len(sleep.calls) == 3
    assert sleep.calls[-1] >= 2  # 0.5 doubled twice: the backoff grows


def test_retry_budget_stops_retries_early(site: ScriptedSite, fetcher_for) -> None:
    site.route("/p/", reply(503))
    # waits are 0.5-1.0 s then 1-1.5 s: the second would push the total past 1 s
    fetcher, sleep = fetcher_for(retry_attempts=10, retry_budget_seconds=1.0)
    with pytest.raises(TransientError):
        fetcher.get_html("/p/")
    assert site.count("/p/") == 2
    assert len(sleep.calls) == 1


@pytest.mark.parametrize("responder, error", [
    (reply(404, NOT_FOUND_PAGE), NotFoundError),
    (reply(403, PRIVATE_PAGE), PrivateError),
    (reply(410), NotFoundError),
    (reply(451), FetchError),
])
def test_permanent_errors_are_not_retried(site: ScriptedSite, fetcher_for,
                                          responder: Responder, error: type[Exception]) -> None:
    site.route("/p/", responder)
    fetcher, sleep = fetcher_for(retry_attempts=5)
    with pytest.raises(error):
        fetcher.get_html("/p/")
    assert site.count("/p/") == 1
    assert sleep.calls == []
    assert not fetcher.stopped


def trickle(length: int, pause: float) -> Responder:
    """Promise `length` bytes and send them one at a time, `pause` seconds apart."""
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(length))
        handler.end_headers()
        handler.close_connection = True
        try:
            for _ in range(length):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(pause)
        except OSError:
            pass  # the client gave up, as it should
    return respond


def test_a_trickling_body_is_abandoned_at_the_deadline_in_real_time(site: ScriptedSite) -> None:
    """Each byte arrives well within the socket timeout; only the body deadline stops it.
    Read in 64 KiB chunks, this 400-byte page would have held the thread for 8 s."""
    site.route("/p/", trickle(400, 0.02))
    with Fetcher(make_config(site, read_timeout=0.5, retry_attempts=1)) as fetcher:
        started = time.monotonic()
        with pytest.raises(TransientError, match="no complete answer within 0.5 s"):
            fetcher.get_html("/p/")
        assert time.monotonic() - started < 4


def slow_head(pause: float) -> Responder:
    """Send the status line and headers one byte every `pause` seconds, then a page."""
    def respond(handler: BaseHTTPRequestHandler) -> None:
        page = b"<html><body>at last</body></html>"
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(page)}"
                f"\r\nX-Padding: {'p' * 200}\r\n\r\n").encode()
        handler.close_connection = True
        try:
            for byte in head:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(pause)
            handler.wfile.write(page)
        except OSError:
            pass  # the client gave up, as it should
    return respond


def test_a_status_line_and_headers_sent_a_byte_at_a_time_end_at_the_deadline(
        site: ScriptedSite) -> None:
    """Every byte comes well within the socket's read timeout; the head would take 13 s.
    Only the request's one deadline, covering the head too, ends the wait."""
    site.route("/p/", slow_head(0.05))
    with Fetcher(make_config(site, read_timeout=0.5, retry_attempts=1)) as fetcher:
        started = time.monotonic()
        with pytest.raises(TransientError, match="no complete answer within 0.5 s") as caught:
            fetcher.get_html("/p/")
        assert time.monotonic() - started < 3
    assert exit_code_for(caught.value) == 4


def test_a_slow_head_is_retried_and_a_prompt_answer_is_kept(site: ScriptedSite) -> None:
    site.route("/p/", slow_head(0.05), reply(200, "prompt"))
    with Fetcher(make_config(site, read_timeout=0.5, backoff_initial=0.01)) as fetcher:
        assert fetcher.get_html("/p/") == "prompt"
    assert site.count("/p/") == 2


def encoded(body: bytes, encoding: str) -> Responder:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Encoding", encoding)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return respond


def test_compressed_bodies_are_decoded_and_limited_by_their_decoded_size(
        site: ScriptedSite, fetcher_for) -> None:
    page = "<html><body>" + "café " * 2000 + "</body></html>"
    site.route("/gzip/", encoded(gzip.compress(page.encode()), "gzip"))
    site.route("/deflate/", encoded(zlib.compress(page.encode()), "deflate"))
    site.route("/bomb/", encoded(gzip.compress(b"0" * 5_000_000), "gzip"))  # 5 MB from 5 kB
    site.route("/corrupt/", encoded(b"\x1f\x8b\x08 not really gzip", "gzip"))
    site.route("/br/", encoded(b"whatever", "br"))
    fetcher, sleep = fetcher_for(max_response_bytes=64 * 1024)
    assert fetcher.get_html("/gzip/") == page
    assert fetcher.get_html("/deflate/") == page
    with pytest.raises(ResponseTooLargeError):
        fetcher.get_html("/bomb/")
    for path in ("/corrupt/", "/br/"):
        with pytest.raises(PageUnavailableError):
            fetcher.get_html(path)
    assert site.requests[-1].headers.get("Accept-Encoding") == "gzip, deflate"
    assert sleep.calls == []  # nothing here is worth a retry


def test_a_trickling_compressed_body_is_abandoned_at_the_deadline(site: ScriptedSite) -> None:
    """urllib3 decoding it would keep reading until the compressed bytes yield output."""
    # A gzip header with a long comment: valid so far, and not one decoded byte yet.
    header_only = b"\x1f\x8b\x08\x10\x00\x00\x00\x00\x00\xff" + b"c" * 390
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(header_only)))
        handler.end_headers()
        handler.close_connection = True
        try:
            for byte in header_only:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(0.02)
        except OSError:
            pass
    site.route("/p/", respond)
    with Fetcher(make_config(site, read_timeout=0.5, retry_attempts=1)) as fetcher:
        started = time.monotonic()
        with pytest.raises(TransientError, match="no complete answer within 0.5 s"):
            fetcher.get_html("/p/")
        assert time.monotonic() - started < 4


def test_a_tls_failure_is_an_unusable_page_not_a_bug(site: ScriptedSite) -> None:
    site.route("/robots.txt", reply(200, ROBOTS_TXT))
    https = make_config(site, base_url=site.base_url.replace("http://", "https://"))
    with Fetcher(https) as fetcher, pytest.raises(PageUnavailableError, match="TLS") as caught:
        fetcher.get_html("/p/")
    assert exit_code_for(caught.value) == 4


# --- rate limiting (429) -------------------------------------------------------

def test_retry_after_is_honoured_and_pauses_every_thread(site: ScriptedSite) -> None:
    site.route("/p/", reply(429, "slow down", {"Retry-After": "7"}), reply(200, "ok"))
    limiter_clock = FakeClock(start=100.0)
    limiter = RateLimiter(0, clock=limiter_clock, sleep=limiter_clock.sleep)
    other_thread_slots: list[float] = []
    retry_waits: list[float] = []

    def retry_sleep(seconds: float) -> None:
        # While this thread backs off, another worker asks for a slot.
        retry_waits.append(seconds)
        other = threading.Thread(target=lambda: other_thread_slots.append(limiter.acquire()))
        other.start()
        other.join()

    with Fetcher(make_config(site), rate_limiter=limiter, sleep=retry_sleep) as fetcher:
        assert fetcher.get_html("/p/") == "ok"
        assert fetcher.stats().rate_limited == 1
    assert retry_waits and retry_waits[0] >= 7
    assert other_thread_slots[0] >= 107  # not before the pause the 429 asked for
    assert site.count("/p/") == 2


def test_retry_after_beyond_budget_gives_up_at_once(site: ScriptedSite, fetcher_for) -> None:
    site.route("/p/", reply(429, "slow down", {"Retry-After": "3600"}))
    fetcher, sleep = fetcher_for(retry_attempts=5, retry_budget_seconds=600)
    with pytest.raises(RateLimitedError) as caught:
        fetcher.get_html("/p/")
    assert caught.value.retry_after == 3600
    assert site.count("/p/") == 1
    assert sleep.calls == []


# --- blocks ------------------------------------------------------------------------

def test_challenge_stops_the_fetcher_after_one_request(site: ScriptedSite, fetcher_for) -> None:
    site.route("/p/", reply(403, CHALLENGE_PAGE, {"cf-mitigated": "challenge"}))
    site.route("/q/", reply(200, "fine"))
    fetcher, sleep = fetcher_for(retry_attempts=5)
    with pytest.raises(BlockedError):
        fetcher.get_html("/p/")
    sent = len(site.requests)
    for path in ("/p/", "/q/", "/r/"):
        with pytest.raises(BlockedError, match="stopped"):
            fetcher.get_html(path)
    assert site.count("/p/") == 1
    assert site.count("/q/") == 0
    assert len(site.requests) == sent
    assert sleep.calls == []
    assert fetcher.stopped


def test_a_thread_waiting_for_its_slot_does_not_send_after_a_block(site: ScriptedSite) -> None:
    site.route("/challenge/", reply(503, CHALLENGE_PAGE))
    site.route("/page/", reply(200, "fine"))
    clock = FakeClock()
    errors: list[BaseException] = []

    def sleep_while_another_thread_is_blocked(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 1:  # only the main thread's wait; the helper must not recurse
            helper = threading.Thread(target=lambda: _capture(fetcher.get_html, "/challenge/",
                                                              errors))
            helper.start()
            helper.join()

    limiter = RateLimiter(1.0, clock=clock, sleep=sleep_while_another_thread_is_blocked)
    with Fetcher(make_config(site), rate_limiter=limiter, sleep=RecordingSleep()) as fetcher:
        with pytest.raises(BlockedError, match="stopped"):
            fetcher.get_html("/page/")
    assert isinstance(errors[0], BlockedError)
    assert site.count("/challenge/") == 1
    assert site.count("/page/") == 0


def _capture(call: Callable[[str], str], path: str, errors: list[BaseException]) -> None:
    try:
        call(path)
    except BaseException as error:  # noqa: BLE001 - handed back to the test thread
        errors.append(error)


# --- stopping: no thread outlives the crawl -----------------------------------------

# Long enough that a test waiting it out would time out; the waits below must be cut short.
LONG_WAIT_SECONDS = 30.0
# How long a woken thread may take to notice; far below LONG_WAIT_SECONDS.
PROMPTLY = 2.0


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PROMPTLY
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.005)


def start_capturing(call: Callable[[str], str], path: str,
                    errors: list[BaseException]) -> threading.Thread:
    # Daemon, so a regression that leaves it sleeping cannot hold up the test run.
    thread = threading.Thread(target=_capture, args=(call, path, errors), daemon=True)
    thread.start()
    return thread


def backing_off(caplog: pytest.LogCaptureFixture) -> Callable[[], bool]:
    """True once a retry wait has been announced (it is logged just before the sleep)."""
    return lambda: any("retry 1 of" in record.getMessage() for record in caplog.records)


def slow_retries(site: ScriptedSite) -> Config:
    return make_config(site, retry_attempts=5, backoff_initial=LONG_WAIT_SECONDS,
                       backoff_max=LONG_WAIT_SECONDS, retry_budget_seconds=600)


def test_close_cuts_a_retry_backoff_short(site: ScriptedSite, caplog) -> None:
    site.route("/p/", reply(503, "busy"))
    fetcher = Fetcher(slow_retries(site))
    errors: list[BaseException] = []
    worker = start_capturing(fetcher.get_html, "/p/", errors)
    wait_until(backing_off(caplog))
    fetcher.close()
    worker.join(PROMPTLY)
    assert not worker.is_alive()
    assert isinstance(errors[0], FetchError) and "closed" in str(errors[0])
    assert site.count("/p/") == 1


def test_close_cuts_a_wait_for_a_rate_limit_slot_short(site: ScriptedSite) -> None:
    site.route("/p/", reply(200, "page"))
    # robots.txt takes the first slot; /p/ would get the next one a long wait later.
    fetcher = Fetcher(make_config(site, requests_per_second=1 / LONG_WAIT_SECONDS))
    errors: list[BaseException] = []
    worker = start_capturing(fetcher.get_html, "/p/", errors)
    wait_until(lambda: site.count("/robots.txt") == 1)
    fetcher.close()
    worker.join(PROMPTLY)
    assert not worker.is_alive()
    assert isinstance(errors[0], FetchError) and "closed" in str(errors[0])
    assert site.count("/p/") == 0


def test_a_block_wakes_threads_backing_off_elsewhere(site: ScriptedSite, caplog) -> None:
    site.route("/flaky/", reply(503, "busy"))
    site.route("/challenge/", reply(403, CHALLENGE_PAGE, {"cf-mitigated": "challenge"}))
    with Fetcher(slow_retries(site)) as fetcher:
        errors: list[BaseException] = []
        worker = start_capturing(fetcher.get_html, "/flaky/", errors)
        wait_until(backing_off(caplog))
        with pytest.raises(BlockedError):
            fetcher.get_html("/challenge/")
        worker.join(PROMPTLY)
        assert not worker.is_alive()
    assert isinstance(errors[0], BlockedError) and "stopped" in str(errors[0])
    assert site.count("/flaky/") == 1


def test_a_persistent_429_stops_every_later_request(site: ScriptedSite, fetcher_for) -> None:
    site.route("/p/", reply(429, "slow down", {"Retry-After": "5"}))
    site.route("/q/", reply(200, "fine"))
    fetcher, sleep = fetcher_for(retry_attempts=2)
    with pytest.raises(RateLimitedError):
        fetcher.get_html("/p/")
    assert fetcher.stopped
    waits = len(sleep.calls)
    with pytest.raises(RateLimitedError, match="stopped"):
        fetcher.get_html("/q/")
    assert site.count("/p/") == 2
    assert site.count("/q/") == 0
    assert len(sleep.calls) == waits  # refused at once, not after the 429's pause


def test_closed_fetcher_sends_nothing(site: ScriptedSite, fetcher_for) -> None:
    site.route("/p/", reply(200, "fine"))
    fetcher, _ = fetcher_for()
    assert fetcher.get_html("/p/") == "fine"
    fetcher.close()
    sent = len(site.requests)
    with pytest.raises(FetchError, match="closed"):
        fetcher.get_html("/p/")
    assert len(site.requests) == sent
    assert not fetcher.stopped  # closing is not a block


def test_no_scrape_thread_outlives_a_blocked_crawl(site: ScriptedSite, caplog) -> None:
    """user0 is backing off when user1 meets a challenge: the crawl and its threads end at once."""
    site.route("/user0/films/", reply(503, "busy"))
    site.route("/user1/films/", reply(403, CHALLENGE_PAGE, {"cf-mitigated": "challenge"}))
    before = set(threading.enumerate())
    errors: list[BaseException] = []
    fetcher = Fetcher(slow_retries(site))

    def crawl() -> None:
        try:
            list(scrape_users(fetcher, ["user0", "user1"], workers=2, progress=False))
        except BaseException as error:  # noqa: BLE001 - handed back to the test thread
            errors.append(error)

    consumer = threading.Thread(target=crawl, daemon=True)
    consumer.start()
    consumer.join(PROMPTLY)
    assert not consumer.is_alive()
    assert errors and isinstance(errors[0], BlockedError)
    workers = [thread for thread in set(threading.enumerate()) - before
               if thread.name.startswith("scrape-user")]
    for thread in workers:
        thread.join(PROMPTLY)
        assert not thread.is_alive(), f"{thread.name} outlived the crawl"
    assert site.count("/user0/films/") == 1
    fetcher.close()


# --- robots.txt --------------------------------------------------------------------

def test_letterboxd_robots_rules_are_obeyed(site: ScriptedSite, fetcher_for) -> None:
    site.route("/robots.txt", reply(200, LETTERBOXD_ROBOTS, {"Content-Type": "text/plain"}))
    for path in ("/thebigal/films/page/2/", "/members/popular/page/2/", "/thebigal/films/"):
        site.route(path, reply(200, f"page {path}"))
    fetcher, _ = fetcher_for()
    for refused in ("/thebigal/films/by/date/", "/members/popular/this/week/",
                    "/films/year/2024/", "/thebigal/friends/films/"):
        with pytest.raises(RobotsDisallowedError):
            fetcher.get_html(refused)
        assert site.count(refused) == 0
    assert fetcher.get_html("/thebigal/films/page/2/") == "page /thebigal/films/page/2/"
    assert fetcher.get_html("/members/popular/page/2/") == "page /members/popular/page/2/"
    assert fetcher.get_html("/thebigal/films/") == "page /thebigal/films/"
    assert site.count("/robots.txt") == 1
    assert not fetcher.stopped


def test_stdlib_robotparser_would_have_allowed_the_wildcard_rule() -> None:
    """Why Protego: urllib.robotparser reads `*` in a path literally."""
    url = "https://letterboxd.com/thebigal/films/by/date/"
    stdlib = urllib.robotparser.RobotFileParser()
    stdlib.parse(LETTERBOXD_ROBOTS.splitlines())
    assert stdlib.can_fetch(USER_AGENT, url)  # wrong, but that is what it says
    assert not Protego.parse(LETTERBOXD_ROBOTS).can_fetch(url, USER_AGENT)
    assert not RobotsPolicy(lambda _: LETTERBOXD_ROBOTS).can_fetch(url, USER_AGENT)


def test_named_ai_crawler_gets_nothing() -> None:
    policy = RobotsPolicy(lambda _: LETTERBOXD_ROBOTS)
    assert not policy.can_fetch("https://letterboxd.com/thebigal/films/", "GPTBot/1.2")
    assert policy.can_fetch("https://letterboxd.com/thebigal/films/", USER_AGENT)


def test_robots_policy_loads_once_per_host_and_does_not_cache_failures() -> None:
    loads: list[str] = []
    failures = [TransientError("robots", "down")]

    def load(url: str) -> str:
        loads.append(url)
        if failures:
            raise failures.pop()
        return LETTERBOXD_ROBOTS

    policy = RobotsPolicy(load)
    with pytest.raises(TransientError):
        policy.can_fetch("https://a.example/x/", USER_AGENT)
    for _ in range(3):
        assert policy.can_fetch("https://a.example/x/", USER_AGENT)
    assert not policy.can_fetch("https://b.example/x/by/y/", USER_AGENT)
    assert loads == ["https://a.example/robots.txt", "https://a.example/robots.txt",
                     "https://b.example/robots.txt"]


def test_robots_fetched_once_across_threads(site: ScriptedSite, fetcher_for) -> None:
    site.route("/robots.txt", reply(200, LETTERBOXD_ROBOTS))
    paths = [f"/user{number}/films/" for number in range(30)]
    for path in paths:
        site.route(path, reply(200, path))
    fetcher, _ = fetcher_for()
    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(fetcher.get_html, paths)) == paths
    assert site.count("/robots.txt") == 1


def test_missing_robots_allows_everything(site: ScriptedSite, fetcher_for) -> None:
    site.route("/thebigal/films/by/date/", reply(200, "sorted"))
    fetcher, _ = fetcher_for()
    assert fetcher.get_html("/thebigal/films/by/date/") == "sorted"
    assert site.count("/robots.txt") == 1


def test_robots_server_errors_mean_no_crawling(site: ScriptedSite, fetcher_for) -> None:
    site.route("/robots.txt", reply(503, "down"))
    site.route("/p/", reply(200, "page"))
    fetcher, _ = fetcher_for(retry_attempts=3)
    with pytest.raises(TransientError):
        fetcher.get_html("/p/")
    assert site.count("/robots.txt") == 3
    assert site.count("/p/") == 0


def test_robots_challenge_blocks(site: ScriptedSite, fetcher_for) -> None:
    site.route("/robots.txt", reply(403, CHALLENGE_PAGE, {"cf-mitigated": "challenge"}))
    fetcher, _ = fetcher_for()
    with pytest.raises(BlockedError):
        fetcher.get_html("/p/")
    assert site.count("/p/") == 0
    assert fetcher.stopped


# --- request rate --------------------------------------------------------------------

def test_limiter_spaces_slots_across_threads() -> None:
    rate, jitter, threads, per_thread = 10.0, 0.3, 8, 25
    clock = FakeClock(start=5.0)
    limiter = RateLimiter(rate, jitter, clock=clock, sleep=RecordingSleep(),
                          rng=random.Random(1))
    slots: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(per_thread):
            slot = limiter.acquire()
            with lock:
                slots.append(slot)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    slots.sort()
    gaps = [later - earlier for earlier, later in zip(slots, slots[1:])]
    assert len(slots) == threads * per_thread
    assert slots[0] == 5.0
    assert min(gaps) >= 1 / rate * (1 - jitter) - 1e-9
    assert max(gaps) <= 1 / rate * (1 + jitter) + 1e-9
    assert max(gaps) - min(gaps) > 0.01  # the jitter is really applied


def test_limiter_idle_time_does_not_allow_a_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2.0, clock=clock, sleep=clock.sleep)
    assert limiter.acquire() == 0.0
    clock.sleep(60)
    assert limiter.acquire() == 60.0
    assert limiter.acquire() == 60.5


def test_unlimited_rate_never_sleeps() -> None:
    sleep = RecordingSleep()
    limiter = RateLimiter(0, clock=FakeClock(), sleep=sleep)
    assert [limiter.acquire() for _ in range(5)] == [0.0] * 5
    assert sleep.calls == []


def test_pause_that_arrives_during_a_wait_requeues_the_sleeper() -> None:
    clock = FakeClock()
    limiter: RateLimiter

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 1:
            limiter.pause_until(50.0)  # another thread got a 429 meanwhile

    limiter = RateLimiter(1.0, clock=clock, sleep=sleep)
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == 50.0
    assert clock() == 50.0


def test_limiter_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RateLimiter(-1)
    with pytest.raises(ValueError):
        RateLimiter(1, jitter=1.0)


def test_server_sees_the_configured_rate(site: ScriptedSite) -> None:
    rate, jitter, count = 50.0, 0.3, 25
    paths = [f"/user{number}/films/" for number in range(count)]
    for path in paths:
        site.route(path, reply(200, path))
    with Fetcher(make_config(site, requests_per_second=rate, rate_jitter=jitter)) as fetcher:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(fetcher.get_html, paths))
    times = sorted(request.at for request in site.requests if request.path in paths)
    assert len(times) == count
    # A small allowance for localhost delivery delays; without the limiter it is far faster.
    assert times[-1] - times[0] >= (count - 1) / rate * (1 - jitter) - 0.05


# --- size limits ---------------------------------------------------------------------

def test_content_length_over_the_limit_is_refused_unread(site: ScriptedSite, fetcher_for) -> None:
    site.route("/big/", truncated(b"x" * 100, 10_000_000))
    fetcher, sleep = fetcher_for(max_response_bytes=1000)
    with pytest.raises(ResponseTooLargeError):
        fetcher.get_html("/big/")
    assert site.count("/big/") == 1
    assert sleep.calls == []


def test_chunked_body_over_the_limit_is_aborted(site: ScriptedSite, fetcher_for) -> None:
    site.route("/big/", chunked([b"y" * 400] * 10))
    site.route("/small/", chunked([b"z" * 400] * 2))
    fetcher, sleep = fetcher_for(max_response_bytes=1000)
    assert fetcher.get_html("/small/") == "z" * 800
    with pytest.raises(ResponseTooLargeError):
        fetcher.get_html("/big/")
    assert site.count("/big/") == 1
    assert sleep.calls == []


def test_invalid_utf8_is_replaced_not_fatal(site: ScriptedSite, fetcher_for) -> None:
    site.route("/p/", chunked([b"caf\xe9 ok"]))
    fetcher, _ = fetcher_for()
    assert fetcher.get_html("/p/") == "caf\ufffd ok"


def binary(body: bytes) -> Responder:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return respond


def test_an_empty_page_is_retried_then_unavailable_with_its_url(site: ScriptedSite,
                                                                fetcher_for) -> None:
    site.route("/p/", reply(200, ""), reply(200, " \n"), reply(200, "whole"))
    site.route("/q/", reply(200, ""))
    fetcher, sleep = fetcher_for(retry_attempts=3)
    assert fetcher.get_html("/p/") == "whole"
    with pytest.raises(TransientError) as caught:
        fetcher.get_html("/q/")
    assert str(caught.value) == f"the page came back empty: {site.base_url}/q/"
    assert exit_code_for(caught.value) == 4 and site.count("/q/") == 3


@pytest.mark.parametrize("body", [gzip.compress(b"<html>" * 50), b"PK\x03\x04\x00\x00" * 20,
                                  bytes(range(256)) * 4])
def test_a_binary_page_is_unusable_not_retried(site: ScriptedSite, fetcher_for,
                                               body: bytes) -> None:
    site.route("/p/", binary(body))
    fetcher, sleep = fetcher_for()
    with pytest.raises(PageUnavailableError) as caught:
        fetcher.get_html("/p/")
    assert str(caught.value) == f"the page is binary data, not text: {site.base_url}/p/"
    assert exit_code_for(caught.value) == 4 and sleep.calls == []


def test_a_failed_name_lookup_is_one_short_line_and_not_retried(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What an offline machine gives: no retries, no library chain in the message."""
    lookups: list[str] = []

    def offline(host: str, *args: object, **kwargs: object) -> list:
        lookups.append(host)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    sleep = RecordingSleep()
    config = Config(base_url="https://letterboxd.invalid", user_agent=USER_AGENT,
                    retry_attempts=5)
    with Fetcher(config, sleep=sleep) as fetcher, pytest.raises(HostLookupError) as caught:
        fetcher.get_html("/p/")
    assert str(caught.value) == (
        "cannot look up letterboxd.invalid: no network or no DNS ([Errno -3] Temporary failure "
        "in name resolution): https://letterboxd.invalid/robots.txt")
    assert lookups == ["letterboxd.invalid"] and sleep.calls == []
    assert exit_code_for(caught.value) == 4


def test_other_network_errors_keep_one_short_line(fetcher_for, site: ScriptedSite) -> None:
    closed_port = ScriptedSite()
    closed_port.close()
    config = make_config(site, base_url=closed_port.base_url, retry_attempts=1)
    with Fetcher(config) as fetcher, pytest.raises(TransientError) as caught:
        fetcher.get_html("/p/")
    assert str(caught.value) == ("network error or truncated body ([Errno 111] Connection "
                                 f"refused): {closed_port.base_url}/robots.txt")


def test_a_page_its_reader_finds_cut_short_is_read_again(site: ScriptedSite,
                                                       fetcher_for) -> None:
    whole = fixture_page("user_films_page2.html")
    site.route("/u/films/", reply(200, whole[:len(whole) // 2]), reply(200, whole))
    site.route("/v/films/", reply(200, whole[:-20]))
    fetcher, sleep = fetcher_for(retry_attempts=3)
    assert fetcher.get_page("/u/films/", parse_film_grid) == parse_film_grid(whole)
    assert site.count("/u/films/") == 2 and len(sleep.calls) == 1
    with pytest.raises(TransientError) as caught:
        fetcher.get_page("/v/films/", parse_film_grid)
    assert str(caught.value) == ("page cut short (the document has no closing </html>): "
                                 f"{site.base_url}/v/films/")
    assert site.count("/v/films/") == 3


def test_a_page_of_the_wrong_shape_names_its_url_and_is_not_retried(site: ScriptedSite,
                                                                    fetcher_for) -> None:
    site.route("/u/films/", reply(200, "<html><body>a captive portal</body></html>"))
    fetcher, sleep = fetcher_for()
    with pytest.raises(MarkupError) as caught:
        fetcher.get_page("/u/films/", parse_film_grid)
    assert str(caught.value).endswith(f": {site.base_url}/u/films/") and sleep.calls == []


# --- requests and paths --------------------------------------------------------------

def test_sends_the_configured_user_agent(site: ScriptedSite, fetcher_for) -> None:
    site.route("/p/", reply(200, "ok"))
    fetcher, _ = fetcher_for()
    fetcher.get_html("/p/")
    received = [request for request in site.requests if request.path == "/p/"][0]
    assert received.headers["User-Agent"] == USER_AGENT
    assert received.headers["Accept"].startswith("text/html")


@pytest.mark.parametrize("path", [
    "thebigal/films/", "http://evil.example/x/", "//evil.example/x/", "/a/../b/", "/a b/",
    "/a\\b/", "/x/#frag", "", "/a/\n/", "/a/%2e%2e/b/", "/a/.%2E/b/", "/%2e/",
])
def test_paths_that_could_leave_the_site_are_rejected(site: ScriptedSite, fetcher_for,
                                                      path: str) -> None:
    fetcher, _ = fetcher_for()
    with pytest.raises(InvalidNameError):
        fetcher.get_html(path)
    assert site.requests == []


def test_same_site_redirect_is_followed(site: ScriptedSite, fetcher_for) -> None:
    site.route("/TheBigAl/films/", reply(301, "", {"Location": "/thebigal/films/"}))
    site.route("/thebigal/films/", reply(200, "films"))
    fetcher, _ = fetcher_for()
    assert fetcher.get_html("/TheBigAl/films/") == "films"


def test_redirect_to_another_host_is_refused(site: ScriptedSite, fetcher_for) -> None:
    elsewhere = ScriptedSite()
    try:
        elsewhere.route("/x/", reply(200, "elsewhere"))
        site.route("/p/", reply(302, "", {"Location": f"{elsewhere.base_url}/x/"}))
        fetcher, sleep = fetcher_for()
        with pytest.raises(FetchError, match="redirect"):
            fetcher.get_html("/p/")
        assert elsewhere.requests == []
        assert sleep.calls == []
    finally:
        elsewhere.close()


def test_redirect_into_a_disallowed_path_is_refused(site: ScriptedSite, fetcher_for) -> None:
    site.route("/robots.txt", reply(200, LETTERBOXD_ROBOTS))
    site.route("/p/", reply(302, "", {"Location": "/thebigal/films/by/date/"}))
    fetcher, _ = fetcher_for()
    with pytest.raises(RobotsDisallowedError):
        fetcher.get_html("/p/")
    assert site.count("/thebigal/films/by/date/") == 0


def test_stats_snapshot_is_frozen(site: ScriptedSite, fetcher_for) -> None:
    site.route("/p/", reply(200, "12345"))
    fetcher, _ = fetcher_for()
    fetcher.get_html("/p/")
    stats = fetcher.stats()
    assert stats.requests == 2
    assert stats.bytes_received == len(NOT_FOUND_PAGE.encode()) + 5
    assert dict(stats.responses_by_status) == {404: 1, 200: 1}
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.requests = 0  # type: ignore[misc]
    fetcher.get_html("/p/")
    assert stats.requests == 2  # a snapshot, not a live view
