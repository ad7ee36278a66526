"""What goes wrong on the simulated site, and the fate of each request, decided by a seed.

The n-th request for a path always meets the same fate for a given seed, whatever the
thread interleaving, so a failing fault test can be replayed.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NamedTuple

RESET = 0  # status recorded in the request log for a connection closed without an answer


@dataclass
class FaultConfig:
    """What goes wrong, and how often. Fields may be changed while the site runs.

    Rates are probabilities per request; reset, truncated, cut page, 429 and 5xx exclude
    each other (their sum must not exceed 1), slow answers and slow headers come on top.
    robots.txt is spared unless `faults_on_robots`.

    `truncated` is a short read at the transport level (the Content-Length promises more
    than is sent); `cut_page` is a page whose document stops anywhere, sent whole with a
    consistent Content-Length, as an origin that died mid-render behind a proxy would
    leave it. `slow_headers` sends the status line and headers one byte every
    `header_byte_seconds`, then the body at once.
    """

    seed: int = 0
    rate_429: float = 0.0
    retry_after: int = 1
    rate_5xx: float = 0.0
    rate_reset: float = 0.0
    rate_truncated: float = 0.0
    rate_cut_page: float = 0.0
    rate_slow: float = 0.0
    slow_seconds: float = 2.0
    rate_slow_headers: float = 0.0
    header_byte_seconds: float = 1.0
    # Listed on /members/popular/ but their films and watchlist pages are 404s.
    vanished_users: frozenset[str] = frozenset()
    # Their films and watchlist pages are Letterboxd's own 403.
    private_users: frozenset[str] = frozenset()
    # Every request after the first N (robots.txt aside) gets the Cloudflare challenge.
    challenge_after: int | None = None
    # The 2026 markup: no data-film-id, only data-postered-identifier.
    strip_film_id: bool = False
    # The first K requests for each path fail with this status (0 = connection reset).
    fail_first: int = 0
    fail_first_status: int = 503
    faults_on_robots: bool = False

    def __post_init__(self) -> None:
        self.vanished_users = frozenset(name.lower() for name in self.vanished_users)
        self.private_users = frozenset(name.lower() for name in self.private_users)
        exclusive = (self.rate_429, self.rate_5xx, self.rate_reset, self.rate_truncated,
                     self.rate_cut_page)
        if any(not 0 <= rate <= 1 for rate in (*exclusive, self.rate_slow,
                                                self.rate_slow_headers)):
            raise ValueError("fault rates must be between 0 and 1")
        if sum(exclusive) > 1:
            raise ValueError("rate_429 + rate_5xx + rate_reset + rate_truncated + rate_cut_page "
                             "must not exceed 1")
        if min(self.retry_after, self.slow_seconds, self.header_byte_seconds,
               self.fail_first) < 0:
            raise ValueError("retry_after, slow_seconds, header_byte_seconds and fail_first "
                             "must not be negative")
        if self.challenge_after is not None and self.challenge_after < 0:
            raise ValueError("challenge_after must not be negative")


class Fate(NamedTuple):
    """What an injected fault does to one request."""

    error_status: int | None
    error_fault: str
    truncate_fault: str | None  # None, "truncated" or "cut_page"
    slow: bool
    slow_headers: bool
    cut_at: float  # where a cut page stops, as a share of its length


def draw_fate(faults: FaultConfig, path: str, attempt: int) -> Fate:
    """The fate of the `attempt`-th request for `path`: a pure function of the seed."""
    rng = random.Random(f"{faults.seed}|{path}|{attempt}")
    # Drawn in this order so that the fates of the older faults keep their seeds.
    roll, code_roll, slow_roll = rng.random(), rng.random(), rng.random()
    headers_roll, cut_at = rng.random(), rng.random()
    slow = slow_roll < faults.rate_slow
    slow_headers = headers_roll < faults.rate_slow_headers
    edge = faults.rate_reset
    if roll < edge:
        return Fate(RESET, "reset", None, slow, False, cut_at)
    edge += faults.rate_truncated
    if roll < edge:
        return Fate(None, "", "truncated", slow, slow_headers, cut_at)
    edge += faults.rate_cut_page
    if roll < edge:
        return Fate(None, "", "cut_page", slow, slow_headers, cut_at)
    edge += faults.rate_429
    if roll < edge:
        return Fate(429, "429", None, slow, slow_headers, cut_at)
    edge += faults.rate_5xx
    if roll < edge:
        return Fate((500, 502, 503)[int(code_roll * 3)], "5xx", None, slow, slow_headers, cut_at)
    return Fate(None, "", None, slow, slow_headers, cut_at)
