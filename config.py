"""One settings object for the whole toolkit.

Precedence, lowest first: the defaults below, then `LETTERBOXD_*` environment
variables, then command-line flags. Everything that talks to the network reads
`Config.base_url`, so the whole toolkit can run against the local simulated
site (`python -m simulated_site`).
"""
from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from errors import ConfigError
from letterboxd.urls import SITE

# Flip to True for trial runs: data goes to test_output/ and output/ is never touched.
TEST_MODE = False

# What `python compile_training_data.py` does with no subcommand (env LETTERBOXD_MODE):
# "continue" extends the dataset, starting one when there is none; "new" starts a fresh
# one (the old one is archived, never deleted).
MODE = "continue"
BUILDER_MODES = ("new", "continue")

PROJECT_ROOT = Path(__file__).resolve().parent
OUTPUT_DIR = PROJECT_ROOT / "output"
TEST_OUTPUT_DIR = PROJECT_ROOT / "test_output"

VERSION = "0.1.0"
DEFAULT_USER_AGENT = (
    f"letterboxd-ratings-toolkit/{VERSION} "
    "(research crawler; obeys robots.txt, about 1 request/s; "
    "set LETTERBOXD_USER_AGENT to name yourself and how to reach you)"
)



def is_loopback(hostname: str) -> bool:
    try:
        return hostname == "localhost" or ipaddress.ip_address(hostname).is_loopback
    except ValueError:  # a name, not an address
        return False


@dataclass(frozen=True)
class Config:
    """All tunables. Frozen: derive a changed copy with `replace`."""

    base_url: str = SITE
    user_agent: str = DEFAULT_USER_AGENT
    # Requests per second for the whole process, all threads together; 0 disables the limit.
    requests_per_second: float = 1.0
    # Each gap between requests is 1/rate scaled by uniform(1 - jitter, 1 + jitter).
    rate_jitter: float = 0.3
    workers: int = 4
    retry_attempts: int = 5
    backoff_initial: float = 2.0
    backoff_max: float = 120.0
    # A single request gives up once its retries would wait longer than this in total.
    retry_budget_seconds: float = 600.0
    connect_timeout: float = 10.0
    # The whole of one request: connect, status line, headers and body (scraping/deadline.py).
    read_timeout: float = 30.0
    max_response_bytes: int = 8 * 1024 * 1024
    test_mode: bool = TEST_MODE
    # None means output/ (or test_output/ in test mode).
    output_dir: Path | None = None
    # None means 100 (10 in test mode).
    users: int | None = None
    # None means 50 (5 in test mode).
    batch_size: int | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"base URL must be http(s)://host[:port], got {self.base_url!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(f"base URL must not have a path or query, got {self.base_url!r}")
        object.__setattr__(self, "base_url", f"{parts.scheme}://{parts.netloc}")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            # NaN passes every comparison, so `--rate nan` would silently mean no limit.
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{field.name} must be a finite number, got {value}")
        for name in ("requests_per_second", "rate_jitter", "backoff_initial", "backoff_max",
                     "retry_budget_seconds"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")
        if self.requests_per_second == 0 and not is_loopback(parts.hostname):
            raise ConfigError("no rate limit (rate 0) is only for a site on this machine, such "
                              f"as the simulated one; {parts.hostname} gets at most about one "
                              "request per second")
        if not 0 <= self.rate_jitter < 1:
            raise ConfigError("rate_jitter must be in [0, 1)")
        for name in ("workers", "retry_attempts", "max_response_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        for name in ("connect_timeout", "read_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.users is not None and self.users < 0:
            raise ConfigError("users must not be negative")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        if not self.user_agent.strip():
            raise ConfigError("the User-Agent must name the tool")

    @property
    def data_dir(self) -> Path:
        """Where the dataset lives; test mode never points at output/."""
        if self.output_dir is not None:
            path = Path(self.output_dir)
            if self.test_mode and path.resolve().is_relative_to(OUTPUT_DIR.resolve()):
                raise ConfigError("test mode never writes to output/ or a folder in it; choose "
                                  "another --output-dir")
            return path
        return TEST_OUTPUT_DIR if self.test_mode else OUTPUT_DIR

    @property
    def user_count(self) -> int:
        if self.users is not None:
            return self.users
        return 10 if self.test_mode else 100

    @property
    def batch_users(self) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return 5 if self.test_mode else 50

    def replace(self, **changes: Any) -> "Config":
        """A copy with the given fields changed; `None` values leave a field as it is."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Config":
        """Defaults, then LETTERBOXD_* variables, then `overrides` (e.g. parsed flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for var, (field, parse) in _ENVIRONMENT.items():
            raw = environ.get(var)
            if raw is None or raw == "":
                continue
            try:
                values[field] = parse(raw)
            except ValueError:
                raise ConfigError(f"{var}={raw!r} is not a valid value") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def configured_mode(environ: Mapping[str, str] | None = None) -> str:
    """The builder's mode when no subcommand names one: LETTERBOXD_MODE, else MODE."""
    environ = os.environ if environ is None else environ
    mode = (environ.get("LETTERBOXD_MODE") or MODE).strip().lower()
    if mode not in BUILDER_MODES:
        raise ConfigError(f"the builder's mode (MODE in config.py or LETTERBOXD_MODE) must be "
                          f"{' or '.join(BUILDER_MODES)}, got {mode!r}")
    return mode


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


_ENVIRONMENT: dict[str, tuple[str, Any]] = {
    "LETTERBOXD_BASE_URL": ("base_url", str),
    "LETTERBOXD_USER_AGENT": ("user_agent", str),
    "LETTERBOXD_RATE": ("requests_per_second", float),
    "LETTERBOXD_WORKERS": ("workers", int),
    "LETTERBOXD_RETRIES": ("retry_attempts", int),
    "LETTERBOXD_TIMEOUT": ("read_timeout", float),
    "LETTERBOXD_CONNECT_TIMEOUT": ("connect_timeout", float),
    "LETTERBOXD_BACKOFF_INITIAL": ("backoff_initial", float),
    "LETTERBOXD_BACKOFF_MAX": ("backoff_max", float),
    "LETTERBOXD_MAX_RESPONSE_BYTES": ("max_response_bytes", int),
    "LETTERBOXD_TEST_MODE": ("test_mode", _parse_bool),
    "LETTERBOXD_OUTPUT_DIR": ("output_dir", Path),
}
