"""robots.txt, obeyed before any request: the rules per host, loaded once on first use."""
from __future__ import annotations

import logging
import threading
from typing import Callable
from urllib.parse import urlsplit

from protego import Protego

logger = logging.getLogger(__name__)


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
