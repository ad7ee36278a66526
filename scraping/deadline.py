"""One deadline per request: connect, status line, headers and body together.

requests' timeouts bound each socket operation, not the request: a server that sends
its status line or headers one byte a second never trips a 30 s read timeout, and
would hold a worker thread (and, since saving is in order, every user after it)
forever. So each request runs under a `Deadline`; the connections of a
`DeadlineAdapter` hand it their socket, and one watcher thread shuts that socket down
when the deadline passes. The blocked read then returns at once and the request fails
like a dropped connection, which the fetcher retries as a timeout.

The TCP connect itself (and a TLS handshake) keeps its own connect timeout; a
connection that only comes up after the deadline is cut as soon as it is handed over.
"""
from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

from requests.adapters import HTTPAdapter
from urllib3 import PoolManager, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# The deadline of the request this thread is making, for the connection to find.
_current = threading.local()


class Deadline:
    """The end of one request's time. Thread-safe: the watcher expires it, the requesting
    thread attaches sockets and finishes it."""

    def __init__(self, at: float) -> None:
        self.at = at
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._expired = False
        self._finished = False

    @property
    def expired(self) -> bool:
        with self._lock:
            return self._expired

    def attach(self, sock: socket.socket | None) -> None:
        """The socket the request now uses; cut at once if the time is already up."""
        with self._lock:
            if self._finished or sock is None:
                return
            self._socket = sock
            if self._expired:
                _shut_down(sock)

    def expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self._expired = True
            if self._socket is not None:
                _shut_down(self._socket)

    def finish(self) -> None:
        """The request is over: its socket goes back to the pool and must not be cut."""
        with self._lock:
            self._finished = True
            self._socket = None


def _shut_down(sock: socket.socket) -> None:
    # socket.socket's own shutdown, also for a TLS socket: SSLSocket.shutdown would tear
    # down its TLS state under the thread that is reading from it.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to cut


class DeadlineWatch:
    """One daemon thread that expires the deadlines of every request of a fetcher."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._queue: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextmanager
    def limit(self, seconds: float) -> Iterator[Deadline]:
        """Run the block's request under a deadline `seconds` from now."""
        deadline = Deadline(time.monotonic() + seconds)
        with self._condition:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="request-deadlines",
                                                daemon=True)
                self._thread.start()
            heapq.heappush(self._queue, (deadline.at, next(self._order), deadline))
            if self._queue[0][2] is deadline:  # the watcher sleeps until the earliest only
                self._condition.notify()
        previous = getattr(_current, "deadline", None)
        _current.deadline = deadline
        try:
            yield deadline
        finally:
            _current.deadline = previous
            deadline.finish()

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify()

    def _run(self) -> None:
        with self._condition:
            while not self._closed:
                now = time.monotonic()
                while self._queue and self._queue[0][0] <= now:
                    heapq.heappop(self._queue)[2].expire()
                wait = self._queue[0][0] - now if self._queue else None
                self._condition.wait(wait)


def _attach_current(sock: socket.socket | None) -> None:
    deadline: Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.attach(sock)


class _DeadlineHTTPConnection(HTTPConnection):
    """Hands its socket to the deadline of the request under way: on connecting, and
    on every request over a kept-alive connection."""

    def connect(self) -> None:
        super().connect()
        _attach_current(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_current(self.sock)  # None on a new connection: connect() hands it over
        super().request(*args, **kwargs)


class _DeadlineHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _attach_current(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_current(self.sock)
        super().request(*args, **kwargs)


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


_POOLS_BY_SCHEME = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter, with connections whose socket a Deadline can cut, also
    through an HTTP proxy (a SOCKS proxy keeps its own connections)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS_BY_SCHEME

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is ProxyManager:
            manager.pool_classes_by_scheme = _POOLS_BY_SCHEME
        return manager
