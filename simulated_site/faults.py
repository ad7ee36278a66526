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

    Rates are probabilities per request; reset, truncated, 429 and 5xx exclude each
    other (their sum must not exceed 1), slowness comes on top. robots.txt is spared
    unless `faults_on_robots`.
    """

    seed: int = 0
    rate_429: float = 0.0
    retry_after: int = 1
    rate_5xx: float = 0.0
    rate_reset: float = 0.0
    rate_truncated: float = 0.0
    rate_slow: float = 0.0
    slow_seconds: float = 2.0
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
        rates = (self.rate_429, self.rate_5xx, self.rate_reset, self.rate_truncated,
                 self.rate_slow)
        if any(not 0 <= rate <= 1 for rate in rates):
            raise ValueError("fault rates must be between 0 and 1")
        if self.rate_429 + self.rate_5xx + self.rate_reset + self.rate_truncated > 1:
            raise ValueError("rate_429 + rate_5xx + rate_reset + rate_truncated must not exceed 1")
        if self.retry_after < 0 or self.slow_seconds < 0 or self.fail_first < 0:
            raise ValueError("retry_after, slow_seconds and fail_first must not be negative")
        if self.challenge_after is not None and self.challenge_after < 0:
            raise ValueError("challenge_after must not be negative")


class Fate(NamedTuple):
    """What an injected fault does to one request."""

    error_status: int | None
    error_fault: str
    truncate_fault: str | None
    slow: bool


def draw_fate(faults: FaultConfig, path: str, attempt: int) -> Fate:
    """The fate of the `attempt`-th request for `path`: a pure function of the seed."""
    rng = random.Random(f"{faults.seed}|{path}|{attempt}")
    roll, code_roll, slow_roll = rng.random(), rng.random(), rng.random()
    slow = slow_roll < faults.rate_slow
    edge = faults.rate_reset
    if roll < edge:
        return Fate(RESET, "reset", None, slow)
    edge += faults.rate_truncated
    if roll < edge:
        return Fate(None, "", "truncated", slow)
    edge += faults.rate_429
    if roll < edge:
        return Fate(429, "429", None, slow)
    edge += faults.rate_5xx
    if roll < edge:
        return Fate((500, 502, 503)[int(code_roll * 3)], "5xx", None, slow)
    return Fate(None, "", None, slow)
