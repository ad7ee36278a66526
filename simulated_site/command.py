"""The simulated site's command line: serve it on this machine until Ctrl-C.

    python -m simulated_site --generate-users 200 --films 800 --port 8000
    python -m simulated_site --ratings ../shared/datasets/letterboxd_ratings_500k/ratings.csv.gz
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import Sequence

from simulated_site.data import SiteData
from simulated_site.faults import FaultConfig
from simulated_site.server import SimulatedSite


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulated_site",
        description="Serve a simulated letterboxd.com on this machine for tests and demos.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ratings", metavar="FILE",
                        help="ratings CSV (user_id,movie_id,rating_val), .gz allowed")
    source.add_argument("--generate-users", type=int, metavar="N",
                        help="generate N synthetic members instead")
    parser.add_argument("--movies", metavar="FILE", help="film metadata CSV for --ratings")
    parser.add_argument("--films", type=int, default=None, metavar="M",
                        help="number of generated films (default: 4 per member, at least 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed for generated data and faults")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--strip-film-id", action="store_true",
                        help="omit data-film-id, as the real site has since April 2026")
    parser.add_argument("--rate-429", type=float, default=0.0)
    parser.add_argument("--retry-after", type=int, default=1, metavar="SECONDS")
    parser.add_argument("--rate-5xx", type=float, default=0.0)
    parser.add_argument("--rate-reset", type=float, default=0.0)
    parser.add_argument("--rate-truncated", type=float, default=0.0,
                        help="share of bodies cut short at the transport level (shorter than "
                        "their Content-Length)")
    parser.add_argument("--rate-cut-page", type=float, default=0.0,
                        help="share of pages cut anywhere as documents, sent with status 200 "
                        "and a Content-Length that matches")
    parser.add_argument("--rate-slow", type=float, default=0.0,
                        help="share of answers that wait --slow-seconds before starting")
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    parser.add_argument("--rate-slow-headers", type=float, default=0.0,
                        help="share of answers whose status line and headers are sent one byte "
                        "every --header-byte-seconds")
    parser.add_argument("--header-byte-seconds", type=float, default=1.0)
    parser.add_argument("--challenge-after", type=int, default=None, metavar="N",
                        help="answer every request after the first N with a Cloudflare challenge")
    parser.add_argument("--fail-first", type=int, default=0, metavar="K",
                        help="fail the first K requests for each path")
    parser.add_argument("--fail-first-status", type=int, default=503)
    parser.add_argument("--private-user", action="append", default=[], metavar="NAME")
    parser.add_argument("--vanished-user", action="append", default=[], metavar="NAME")
    parser.add_argument("--faults-on-robots", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser


def next_steps(data: SiteData, url: str) -> str:
    """Members to try and the commands that use them: a newcomer's next step needs a name.

    The first members are the most popular, the first a dataset built from here holds;
    one three quarters down the list is outside a small dataset, so recommend.py reads
    that profile live."""
    users = list(data.users)
    popular = users[:3]
    lines = [f"Members to try: {', '.join(popular)} (the most popular: in any dataset)"]
    if len(users) > 20:
        lines.append(f"  and {users[len(users) * 3 // 4]} (outside a small one: "
                     "recommend.py reads the profile live)")
    if popular:
        lines += ["Next, in another terminal:",
                  "  python compile_training_data.py new --test-mode --rate 0 --users 20 \\",
                  f"      --base-url {url}",
                  f"  python recommend.py {popular[0]} --test-mode --base-url {url}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        faults = FaultConfig(
            seed=args.seed, rate_429=args.rate_429, retry_after=args.retry_after,
            rate_5xx=args.rate_5xx, rate_reset=args.rate_reset,
            rate_truncated=args.rate_truncated, rate_cut_page=args.rate_cut_page,
            rate_slow=args.rate_slow, slow_seconds=args.slow_seconds,
            rate_slow_headers=args.rate_slow_headers,
            header_byte_seconds=args.header_byte_seconds, challenge_after=args.challenge_after,
            fail_first=args.fail_first, fail_first_status=args.fail_first_status,
            private_users=frozenset(args.private_user),
            vanished_users=frozenset(args.vanished_user),
            strip_film_id=args.strip_film_id, faults_on_robots=args.faults_on_robots)
        if args.ratings:
            data = SiteData.from_ratings_csv(args.ratings, args.movies)
        else:
            films = args.films if args.films is not None else max(50, 4 * args.generate_users)
            data = SiteData.generate(args.seed, args.generate_users, films)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    site = SimulatedSite(data, faults)
    try:
        url = site.start(args.host, args.port)
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    print(f"Simulated Letterboxd at {url}", flush=True)
    print(f"{len(data.users)} members, {len(data.films)} films. Ctrl-C stops.", flush=True)
    print(next_steps(data, url), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        site.stop()
    return 0
