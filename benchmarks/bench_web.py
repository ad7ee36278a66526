"""Figure 11: a recommendation through the local web page against the CLI's, model cached.

The same person (a new user's export ZIP, as in figure 6) gets the same 50-film list
four ways, on a dataset whose model is already fitted and cached:

* the CLI end to end: `python recommend.py --export ZIP --data-dir DIR` in a subprocess
  (start-up, imports, loading the cached model, matching the export, ranking);
* the CLI in-process: `recommend.main` called again in this process (loading the cached
  model, matching, ranking; no start-up);
* the page end to end: `recommend.py --serve` running in a subprocess, and an HTTP
  client uploading the ZIP (POST /people, then GET of the list it leads to), and
  changing a filter (GET /picks with `year_from`), each on a new connection;
* the page in-process: the same two requests through Flask's test client.

The server keeps the model in memory once its first page loaded it, which the CLI
reads from disk on every run. Target: the page's answer within 0.2 s of the CLI's.

    python benchmarks/bench_web.py [--sizes 1000000] [--repeats 5]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402
from benchmarks.bench_recommend import EXPORT_RATINGS, run_command, write_export_zip  # noqa: E402

MARGIN_SECONDS = 0.2
FILTER = "year_from=1990"


def start_server(data_dir: Path, env: dict[str, str] | None) -> tuple[subprocess.Popen, str]:
    """`recommend.py --serve` on a free port, and its address once it listens."""
    server = subprocess.Popen(
        [sys.executable, "recommend.py", "--serve", "--port", "0", "--data-dir",
         str(data_dir)], cwd=harness.PROJECT_ROOT, stderr=subprocess.PIPE, text=True,
        env={**(env or os.environ), "PYTHONUNBUFFERED": "1"})
    for line in server.stderr:
        if "open http://" in line:
            return server, line.split("open ", 1)[1].split()[0].rstrip("/")
    raise RuntimeError(f"the server did not start (exit {server.wait()})")


def http_list(address: str, export: Path) -> tuple[float, str]:
    """Seconds to upload the export and get its list over HTTP; the list's address."""
    import requests

    start = time.perf_counter()
    with export.open("rb") as handle:
        answer = requests.post(f"{address}/people", files={"export": handle},
                               headers={"Origin": address, "Connection": "close"},
                               allow_redirects=False, timeout=120)
    location = answer.headers["Location"]
    if not location.startswith("/picks"):
        raise RuntimeError(f"the upload led to {location}, not a list")
    page = requests.get(address + location, headers={"Connection": "close"}, timeout=60)
    page.raise_for_status()
    return time.perf_counter() - start, location


def http_get(address: str, location: str) -> float:
    import requests

    start = time.perf_counter()
    requests.get(address + location, headers={"Connection": "close"},
                 timeout=60).raise_for_status()
    return time.perf_counter() - start


def in_process_page(data_dir: Path, export: Path
                    ) -> tuple[Callable[[], str], Callable[[str], None]]:
    """The upload-and-list and a later page, through Flask's test client."""
    from config import Config
    from web.app import WebSettings, create_app

    client = create_app(WebSettings(config=Config(output_dir=data_dir))).test_client()

    def upload() -> str:
        with export.open("rb") as handle:
            answer = client.post("/people", data={"export": (handle, export.name)},
                                 content_type="multipart/form-data")
        location = answer.headers["Location"]
        if client.get(location).status_code != 200:
            raise RuntimeError("the list page failed")
        return location

    def get(location: str) -> None:
        if client.get(location).status_code != 200:
            raise RuntimeError("the list page failed")

    return upload, get


def cli_in_process(data_dir: Path, export: Path) -> Callable[[], None]:
    from recommend import main

    def run() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            if main(["--export", str(export), "--data-dir", str(data_dir), "-q"]) != 0:
                raise RuntimeError("recommend.py failed")

    return run


def measure(size: int, args: argparse.Namespace, env: dict[str, str] | None,
            scratch: Path) -> bool:
    data_dir = harness.ensure_dataset(size, args.seed, args.data_root)
    export = scratch / f"export_{size}.zip"
    write_export_zip(data_dir, export, EXPORT_RATINGS, args.seed)
    cli = ["recommend.py", "--export", str(export), "--data-dir", str(data_dir), "-q"]
    first = run_command(cli, env)  # fits and caches the model if need be
    repeats = args.repeats
    cli_end = harness.Timing(tuple(run_command(cli, env) for _ in range(repeats)))
    cli_in = harness.time_runs(cli_in_process(data_dir, export), repeats, warmup=1)

    server, address = start_server(data_dir, env)
    try:
        first_page, location = http_list(address, export)  # loads the model into memory
        page_end = harness.Timing(tuple(http_list(address, export)[0] for _ in range(repeats)))
        filtered = f"{location}&{FILTER}"
        filter_end = harness.Timing(tuple(http_get(address, filtered) for _ in range(repeats)))
    finally:
        server.terminate()
        server.wait(timeout=30)
    upload, get = in_process_page(data_dir, export)
    location = upload()  # loads the model into memory
    page_in = harness.time_runs(upload, repeats)
    filter_in = harness.time_runs(lambda: get(f"{location}&{FILTER}"), repeats)

    met = (page_end.median <= cli_end.median + MARGIN_SECONDS
           and page_in.median <= cli_in.median + MARGIN_SECONDS)
    print(f"{size:,} ratings (first CLI run, fit + cache if needed: {first:.1f} s)")
    rows = (("CLI, end to end (subprocess)", cli_end),
            ("page, upload + list, end to end (HTTP)", page_end),
            ("page, a filter changed, end to end", filter_end),
            ("CLI, in-process (recommend.main)", cli_in),
            ("page, upload + list, in-process", page_in),
            ("page, a filter changed, in-process", filter_in))
    for name, timing in rows:
        print(f"  {name:<42} {timing.median:6.3f} s  ({timing.spread})")
    print(f"  page's first list after start (model loaded)  {first_page:6.3f} s")
    print(f"  page minus CLI: end to end {page_end.median - cli_end.median:+.3f} s, "
          f"in-process {page_in.median - cli_in.median:+.3f} s")
    return met


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Figure 11: the web page against the CLI.")
    harness.add_latency_arguments(parser, [1_000_000], "dataset sizes in ratings")
    args = parser.parse_args(argv)
    harness.print_header("Figure 11: a recommendation through the page against the CLI, "
                         "model cached")
    env = harness.blas_thread_env(args.blas_threads)
    scratch = Path(tempfile.mkdtemp(prefix="bench_web_"))
    met = True
    try:
        for size in args.sizes:
            met &= measure(size, args, env, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"target: the page within {MARGIN_SECONDS:g} s of the CLI; targets met: {met}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
