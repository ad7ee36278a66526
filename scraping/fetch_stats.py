"""What a Fetcher has done so far: requests, retries, bytes, statuses, counted thread-safely."""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping


@dataclass(frozen=True)
class FetchStats:
    """A snapshot of what a Fetcher has done so far."""

    requests: int = 0
    retries: int = 0
    bytes_received: int = 0
    rate_limited: int = 0
    responses_by_status: Mapping[int, int] = field(default_factory=dict)


class StatsCounters:
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
