"""The whole toolkit end to end with no internet: simulated site → dataset → recommendations.

    python demo.py [--users 60] [--seed 1]

It starts the simulated Letterboxd (simulated_site/) on 127.0.0.1, builds a fresh
dataset from it in test mode (so into test_output/; output/ is never touched),
and recommends films for one of its members. Each step runs the real command,
as a user would.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from simulated_site import SiteData, SimulatedSite

PROJECT_ROOT = Path(__file__).resolve().parent


def run(command: list[str]) -> None:
    print("\n$ " + " ".join(command[1:] if command[0] == sys.executable else command),
          flush=True)
    completed = subprocess.run(command, cwd=PROJECT_ROOT)
    if completed.returncode:
        sys.exit(completed.returncode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=60, help="members of the simulated site")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    site_data = SiteData.generate(seed=args.seed, n_users=args.users, n_films=600)
    with SimulatedSite(site_data) as site:
        print(f"Simulated Letterboxd with {args.users} members at {site.base_url}")
        common = ["--test-mode", "--base-url", site.base_url, "--rate", "0"]
        run([sys.executable, "compile_training_data.py", "new", *common,
             "--users", str(args.users - 10)])
        run([sys.executable, "compile_training_data.py", "continue", *common, "--users", "5"])
        someone = list(site_data.users)[3]
        run([sys.executable, "recommend.py", someone, *common, "--top", "15"])


if __name__ == "__main__":
    main()
