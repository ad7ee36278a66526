"""What a response means: a usable page, or the typed error it stands for.

Pure functions of status, headers and body, so every rule (Cloudflare's challenge and
error pages, Letterboxd's own 403, Retry-After in both forms) is testable without a
server, and the fetcher only decides what to do about each error.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Mapping

from errors import (BlockedError, NotFoundError, PageUnavailableError, PrivateError,
                    RateLimitedError, TransientError)

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
# Text may hold a stray undecodable byte; a body where more than one character in this
# many fails to decode is binary data, not a page.
_CHARACTERS_PER_BAD_BYTE = 100
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


def page_text(url: str, body: bytes) -> str:
    """The text of a usable (2xx) page, or the error an empty or binary body stands for.

    An empty page is a page cut short to nothing (a cache that stored no body), so it is
    retried; binary data is no page at all. A page cut inside its last character still
    decodes here; the parser then finds its end missing.
    """
    if not body.strip():
        raise TransientError(url, "the page came back empty")
    text = body.decode("utf-8", errors="replace")
    undecodable = text.count("\ufffd")
    if b"\x00" in body or undecodable > max(1, len(text) // _CHARACTERS_PER_BAD_BYTE):
        raise PageUnavailableError(url, "the page is binary data, not text")
    return text


def _lowercase_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}
