"""The process-wide request rate: evenly spaced, jittered slots shared by every thread."""
from __future__ import annotations

import random
import threading
import time
from typing import Callable

Clock = Callable[[], float]
Sleep = Callable[[float], None]


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
