"""The simulated letterboxd.com's HTTP server: routing, injected faults, the request log.

Serves robots.txt, the popular-members table, members' film grids and watchlists and
film pages in the real 2026 markup, plus the site's error, private and Cloudflare
pages, from a `SiteData`. A `FaultConfig` injects 429s, 5xx, resets, slow answers,
headers sent a byte at a time, bodies truncated at the transport level, pages cut
short as documents, vanished and private members and a Cloudflare challenge. Binds
127.0.0.1 only unless told otherwise.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import socket
import struct
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterable, NamedTuple
from urllib.parse import urlsplit

import simulated_site.pages as pages
from letterboxd.completeness import FILMS_PER_PAGE, MEMBERS_PER_PAGE, WATCHLIST_PER_PAGE
from simulated_site.data import SiteData
from simulated_site.faults import RESET, Fate, FaultConfig, draw_fate

__all__ = ["FILMS_PER_PAGE", "MEMBERS_PER_PAGE", "Reply", "SimulatedSite", "WATCHLIST_PER_PAGE"]

logger = logging.getLogger(__name__)

_MEMBERS = re.compile(r"/members/popular/(?:page/(?P<page>\d+)/)?")
_FILM = re.compile(r"/film/(?P<slug>[^/]+)/")
_USER_GRID = re.compile(r"/(?P<user>[A-Za-z0-9_]{1,15})/(?P<kind>films|watchlist)/"
                        r"(?:page/(?P<page>\d+)/)?")


class Reply(NamedTuple):
    """Everything the handler needs to answer one request, decided up front."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    # None, "reset", "truncated", "cut_page", "429", "5xx", "challenge", "fail_first"
    fault: str | None
    delay: float
    header_byte_seconds: float = 0.0  # > 0: the status line and headers trickle out


class SimulatedSite:
    """The HTTP server. Use as a context manager, or call `start()` and `stop()`."""

    def __init__(self, data: SiteData, faults: FaultConfig | None = None, *,
                 robots_txt: str = pages.ROBOTS_TXT) -> None:
        self.data = data
        self.robots_txt = robots_txt
        # Read afresh by every request: assign a new FaultConfig or change its fields at will.
        self.faults = faults or FaultConfig()
        self._lock = threading.Lock()
        self._log: list[tuple[float, str, int]] = []
        self._path_counts: Counter[str] = Counter()
        self._fault_counts: Counter[str] = Counter()
        self._faultable_requests = 0
        self._served = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.base_url = ""

    # --- lifecycle ------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a daemon thread; returns the base URL, e.g. http://127.0.0.1:PORT."""
        if self._server is not None:
            raise RuntimeError("the simulated site is already running")
        self._stopping.clear()
        self._server = _Server((host, port), _Handler, self)
        bound_host, bound_port = self._server.server_address[:2]
        self.base_url = f"http://{bound_host}:{bound_port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.01},
                                        name=f"simulated-site-{bound_port}", daemon=True)
        self._thread.start()
        logger.debug("simulated site listening at %s", self.base_url)
        return self.base_url

    def stop(self) -> None:
        """Stop listening and cut open connections, so no client hangs on a dead site."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_open_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "SimulatedSite":
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- faults and observation ---------------------------------------------------

    def update_faults(self, **changes: object) -> FaultConfig:
        """Replace some fault settings (validated) while serving."""
        self.faults = dataclasses.replace(self.faults, **changes)
        return self.faults

    def sleep_unless_stopping(self, seconds: float) -> bool:
        """Wait `seconds` (a slow answer), cut short by `stop()`; True if the site is stopping."""
        return self._stopping.wait(seconds)

    @property
    def request_log(self) -> list[tuple[float, str, int]]:
        """(monotonic arrival time, path, status) per request; status 0 = reset."""
        with self._lock:
            return list(self._log)

    def request_count(self, path_prefix: str | None = None) -> int:
        with self._lock:
            if path_prefix is None:
                return len(self._log)
            return sum(1 for _, path, _ in self._log if path.startswith(path_prefix))

    @property
    def fault_counts(self) -> dict[str, int]:
        """How often each fault was injected, e.g. {"429": 3, "reset": 1}."""
        with self._lock:
            return dict(self._fault_counts)

    def clear_log(self) -> None:
        """Forget requests seen so far, including per-path counts for `fail_first`."""
        with self._lock:
            self._log.clear()
            self._path_counts.clear()
            self._fault_counts.clear()
            self._faultable_requests = 0

    # --- answering ----------------------------------------------------------------

    def reply(self, target: str) -> Reply:
        """Decide the answer to GET `target`, and log it. No I/O: the handler sends it."""
        arrived = time.monotonic()
        path = urlsplit(target).path or "/"
        faults = self.faults
        exempt = path == "/robots.txt" and not faults.faults_on_robots
        with self._lock:
            self._served += 1
            ray = _ray_id(faults.seed, self._served)
            attempt = self._path_counts[path]
            self._path_counts[path] += 1
            if not exempt:
                self._faultable_requests += 1
            faultable_number = self._faultable_requests
        draw = None if exempt else draw_fate(faults, path, attempt)
        reply = None if draw is None else self._injected_fault(faults, draw, attempt,
                                                                faultable_number, ray)
        if reply is None:
            status, body, headers = self._route(path, target, faults, ray)
            fault = draw.truncate_fault if draw else None
            if fault == "cut_page" and status != 200:
                fault = None
            elif fault == "cut_page":
                # Whole at the HTTP level (the length will match), cut as a document.
                body = body[:int(len(body) * draw.cut_at)]
            reply = Reply(status, body, headers, fault, 0.0)
        if draw is not None and draw.slow:
            reply = reply._replace(delay=faults.slow_seconds)
        if draw is not None and draw.slow_headers and reply.fault != "reset":
            reply = reply._replace(header_byte_seconds=faults.header_byte_seconds)
        with self._lock:
            self._log.append((arrived, target, RESET if reply.fault == "reset" else reply.status))
            if reply.fault is not None:
                self._fault_counts[reply.fault] += 1
            if reply.delay:
                self._fault_counts["slow"] += 1
            if reply.header_byte_seconds:
                self._fault_counts["slow_headers"] += 1
        return reply

    def _injected_fault(self, faults: FaultConfig, draw: Fate, attempt: int,
                        faultable_number: int, ray: str) -> Reply | None:
        if faults.challenge_after is not None and faultable_number > faults.challenge_after:
            return _html_reply(403, pages.challenge_page(ray), ray, "challenge",
                               extra=(("cf-mitigated", "challenge"),
                                      ("cache-control", "private, max-age=0, no-store, no-cache")))
        if attempt < faults.fail_first:
            return self._error_reply(faults.fail_first_status, faults, ray, "fail_first")
        if draw.error_status is not None:
            return self._error_reply(draw.error_status, faults, ray, draw.error_fault)
        return None

    @staticmethod
    def _error_reply(status: int, faults: FaultConfig, ray: str, fault: str) -> Reply:
        if status == RESET:
            return Reply(RESET, b"", (), "reset", 0.0)
        if status == 429:
            return _html_reply(429, pages.rate_limited_page(), ray, fault,
                               extra=(("retry-after", str(faults.retry_after)),))
        return _html_reply(status, pages.server_error_page(status, ray), ray, fault)

    def _route(self, path: str, target: str, faults: FaultConfig,
               ray: str) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
        if path == "/robots.txt":
            return 200, self.robots_txt.encode(), _headers("text/plain; charset=utf-8", ray)
        if not path.endswith("/") and _routable(path + "/"):
            query = urlsplit(target).query
            location = path + "/" + (f"?{query}" if query else "")
            return 301, b"", _headers("text/html; charset=utf-8", ray) + (("location", location),)
        status, html = self._page(path, faults)
        return status, html.encode(), _headers("text/html; charset=utf-8", ray)

    def _page(self, path: str, faults: FaultConfig) -> tuple[int, str]:
        if match := _MEMBERS.fullmatch(path):
            page = _page_number(match["page"])
            if page is None:
                return 404, pages.not_found_page()
            rows, has_next = self.data.members_page(page, MEMBERS_PER_PAGE)
            return 200, pages.members_page(rows, page, has_next)
        if match := _FILM.fullmatch(path):
            film = self.data.film(match["slug"])
            if film is None:
                return 404, pages.not_found_page()
            count, mean = self.data.rating_stats(film.slug)
            return 200, pages.film_page(film, count, mean, strip_film_id=faults.strip_film_id)
        if match := _USER_GRID.fullmatch(path):
            return self._grid_page(match["user"].lower(), match["kind"],
                                   _page_number(match["page"]), faults)
        return 404, pages.not_found_page()

    def _grid_page(self, username: str, kind: str, page: int | None,
                   faults: FaultConfig) -> tuple[int, str]:
        if page is None or not self.data.has_user(username) or username in faults.vanished_users:
            return 404, pages.not_found_page()
        if username in faults.private_users:
            return 403, pages.forbidden_page()
        per_page = FILMS_PER_PAGE if kind == "films" else WATCHLIST_PER_PAGE
        fetch = self.data.films_page if kind == "films" else self.data.watchlist_page
        grid = fetch(username, page, per_page)
        if grid is None:  # removed between the two calls
            return 404, pages.not_found_page()
        last_page = max(1, -(-grid.total // per_page))
        display_name = self.data.display_name(username)
        if kind == "films":
            return 200, pages.films_page(username, display_name, grid.tiles, page, last_page,
                                         grid.total, strip_film_id=faults.strip_film_id)
        return 200, pages.watchlist_page(username, display_name, [film for film, _ in grid.tiles],
                                         page, last_page, grid.total,
                                         strip_film_id=faults.strip_film_id)


def _ray_id(seed: int, number: int) -> str:
    return hashlib.blake2b(f"{seed}:{number}".encode(), digest_size=8).hexdigest() + "-LHR"


def _headers(content_type: str, ray: str) -> tuple[tuple[str, str], ...]:
    # `server: cloudflare` comes from the handler's version string.
    return (("content-type", content_type), ("cf-ray", ray),
            ("cache-control", "private, max-age=0"), ("vary", "Accept-Encoding"))


def _html_reply(status: int, html: str, ray: str, fault: str,
                extra: Iterable[tuple[str, str]] = ()) -> Reply:
    return Reply(status, html.encode(), _headers("text/html; charset=utf-8", ray) + tuple(extra),
                  fault, 0.0)


def _page_number(text: str | None) -> int | None:
    """Page 1 when absent; None (a 404) for page 0."""
    page = 1 if text is None else int(text)
    return page if page >= 1 else None


def _routable(path: str) -> bool:
    return any(pattern.fullmatch(path) for pattern in (_MEMBERS, _FILM, _USER_GRID))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 site: SimulatedSite) -> None:
        self.site = site
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: object) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: object, client_address: object) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            logger.debug("connection from %s ended: %r", client_address, error)
        else:
            logger.exception("simulated site failed answering %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 60
    server: _Server

    def version_string(self) -> str:
        return "cloudflare"

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        site = self.server.site
        reply = site.reply(self.path)
        if reply.delay and site.sleep_unless_stopping(reply.delay):
            self.close_connection = True
            return
        if reply.fault == "reset":
            # Linger 0: close() sends a TCP RST, like a dropped upstream connection.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        body = reply.body
        headers = list(reply.headers)
        if reply.fault == "truncated":
            # Promise more than we send, then hang up: the client sees a short read.
            headers += [("content-length", str(2 * len(body) + 1)), ("connection", "close")]
            body = body[: len(body) // 2]
            self.close_connection = True
        else:
            headers.append(("content-length", str(len(body))))
        self.log_request(reply.status)
        head = self._head(reply.status, headers)
        if reply.header_byte_seconds:
            for index in range(len(head)):
                self.wfile.write(head[index:index + 1])
                self.wfile.flush()
                if site.sleep_unless_stopping(reply.header_byte_seconds):
                    self.close_connection = True
                    return
        else:
            self.wfile.write(head)
        if send_body:
            self.wfile.write(body)

    def _head(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        """The status line and headers, as send_response and send_header would write them."""
        reason = self.responses.get(status, ("",))[0]
        lines = [f"{self.protocol_version} {status} {reason}",
                 f"Server: {self.version_string()}", f"Date: {self.date_time_string()}",
                 *(f"{name}: {value}" for name, value in headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
