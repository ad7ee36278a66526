"""Figure 2: scraping throughput against the local simulated site, no rate limit.

The site runs in its own process (`python -m simulated_site`), as the
real one would be on another machine, so client and server do not share one
GIL. For 1, 2, 4 and 8 workers the script scrapes the same members with
`scrape_users` (scraping.crawl) through a `fetch_ratings.Fetcher` built with
requests_per_second=0, and reports grid pages per second (median of runs) plus
the CPU seconds the client and the server spent per page, which tells which
side is the bottleneck. Target: >= 50 pages/s on 2 cores.

    python benchmarks/bench_scrape_throughput.py [--users 200] [--workers 1 2 4 8]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402
from config import Config  # noqa: E402
from fetch_ratings import Fetcher  # noqa: E402
from scraping.crawl import scrape_users  # noqa: E402
from scraping.walk import read_members_page  # noqa: E402

TARGET_PAGES_PER_SECOND = 50.0
SITE_START_TIMEOUT = 60.0


@contextmanager
def simulated_site(users: int, seed: int) -> Iterator[tuple[str, int]]:
    """(base URL, server pid) of a simulated site running in a child process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "simulated_site", "--generate-users", str(users),
         "--seed", str(seed), "--port", "0"],
        cwd=harness.PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + SITE_START_TIMEOUT
        assert process.stdout is not None
        line = ""
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if line.startswith("Simulated Letterboxd at ") or not line:
                break
        if not line.startswith("Simulated Letterboxd at "):
            raise RuntimeError(f"the simulated site did not start: {process.stderr.read()}")
        yield line.split(" at ", 1)[1].strip(), process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of another process, from /proc (0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def list_members(fetcher: Fetcher, wanted: int) -> list[str]:
    names: list[str] = []
    page = 1
    while len(names) < wanted:
        members = read_members_page(fetcher, page)
        names.extend(member.username for member in members.members)
        if not members.has_next:
            break
        page += 1
    return names[:wanted]


def scrape_once(base_url: str, usernames: Sequence[str], workers: int) -> tuple[int, int, float]:
    """(grid pages fetched, users that failed, seconds) for one full scrape."""
    config = Config(base_url=base_url, requests_per_second=0, workers=workers)
    with Fetcher(config) as fetcher:
        start = time.perf_counter()
        results = list(scrape_users(fetcher, usernames, workers, progress=False))
        elapsed = time.perf_counter() - start
    pages = sum(result.pages_fetched for result in results)
    failed = sum(result.error is not None for result in results)
    return pages, failed, elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Figure 2: scraping throughput.")
    parser.add_argument("--users", type=int, default=200, help="members on the site to scrape")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    harness.print_header("Figure 2: scraping throughput, simulated site, no rate limit")
    best = 0.0
    with simulated_site(args.users, args.seed) as (base_url, server_pid):
        with Fetcher(Config(base_url=base_url, requests_per_second=0)) as fetcher:
            usernames = list_members(fetcher, args.users)
        print(f"site {base_url}: {len(usernames)} members")
        print(f"{'workers':>7} {'pages/s':>9} {'pages':>6} {'failed':>6} "
              f"{'client CPU ms/page':>19} {'server CPU ms/page':>19}")
        for workers in args.workers:
            rates, pages, failed = [], 0, 0
            client_cpu = server_cpu = 0.0
            for _ in range(args.repeats):
                client_before, server_before = own_cpu_seconds(), process_cpu_seconds(server_pid)
                pages, failed, elapsed = scrape_once(base_url, usernames, workers)
                client_cpu += own_cpu_seconds() - client_before
                server_cpu += process_cpu_seconds(server_pid) - server_before
                rates.append(pages / elapsed)
            rate = harness.Timing(tuple(rates)).median
            best = max(best, rate)
            total_pages = max(pages * args.repeats, 1)
            print(f"{workers:>7} {rate:>9.1f} {pages:>6} {failed:>6} "
                  f"{client_cpu / total_pages * 1000:>19.2f} "
                  f"{server_cpu / total_pages * 1000:>19.2f}")
    print(f"best: {best:.1f} pages/s (target >= {TARGET_PAGES_PER_SECOND:g} pages/s); "
          f"targets met: {best >= TARGET_PAGES_PER_SECOND}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
