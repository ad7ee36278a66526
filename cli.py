"""Plumbing the two commands share: common flags, logging beside tqdm bars, exit codes."""
from __future__ import annotations

import argparse
import logging
import os
import stat
import sys
from pathlib import Path
from typing import Callable, NoReturn, Sequence

from tqdm import tqdm

from config import Config
from errors import EXIT_UNEXPECTED, BadInputError, LetterboxdError, exit_code_for

logger = logging.getLogger("letterboxd")

EXIT_CODES_HELP = """exit codes:
  0  done
  1  something unexpected (a bug: please report it with the log)
  2  bad input: a flag, a name, a dataset or export file that cannot be used
  3  stopped because Letterboxd blocked us (challenge page, access denied or persistent
     rate limiting); we never try to get around that
  4  the site stayed unreachable or kept failing through every retry; try again later
  130  interrupted twice; nothing is half-written (one Ctrl-C saves and exits 0)
"""


class _TqdmHandler(logging.Handler):
    """Writes log lines above the progress bars instead of through them."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never take the program down
            self.handleError(record)


def configure_logging(verbosity: int) -> None:
    """-q: warnings only; default: progress info; -v: debug detail."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "requests"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    network = parser.add_argument_group("site and politeness")
    network.add_argument("--base-url", help="site to read (default https://letterboxd.com; "
                         "e.g. the local simulated site); env LETTERBOXD_BASE_URL")
    network.add_argument("--rate", type=float, dest="requests_per_second", metavar="R",
                         help="requests per second for the whole run (default 1; 0 = no "
                         "limit, refused unless the site is on this machine); env LETTERBOXD_RATE")
    network.add_argument("--workers", type=int, metavar="W",
                         help="users scraped at once (default 4); env LETTERBOXD_WORKERS")
    data = parser.add_argument_group("data")
    data.add_argument("--test-mode", action="store_const", const=True, default=None,
                      help="trial run: use test_output/ and small defaults; output/ is never "
                      "touched (same as TEST_MODE in config.py); env LETTERBOXD_TEST_MODE")
    output = parser.add_argument_group("output")
    output.add_argument("-v", "--verbose", action="count", default=0, help="more detail")
    output.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")


def config_from_args(args: argparse.Namespace, **extra: object) -> Config:
    return Config.from_env(
        base_url=args.base_url, requests_per_second=args.requests_per_second,
        workers=args.workers, test_mode=args.test_mode, **extra)


def verbosity(args: argparse.Namespace) -> int:
    return -1 if args.quiet else args.verbose


def existing_path(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    return path


def check_output_file(path: Path) -> None:
    """Refuse, in one line, a target that is not a regular file or a new one in an existing
    folder: files are replaced whole, so a folder, a device, a pipe or a link is never
    written to or through."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise BadInputError(f"cannot write {path}: the folder {path.parent} does not "
                                "exist") from None
        return
    if stat.S_ISDIR(mode):
        raise BadInputError(f"cannot write {path}: it is a folder; name a file")
    if not stat.S_ISREG(mode):
        raise BadInputError(f"cannot write {path}: it is not a regular file (a device, pipe "
                            "or link), and is never replaced")


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> NoReturn:
    """Run a command's main and turn what escapes it into one line and an exit code."""
    try:
        code = main(argv)
    except LetterboxdError as error:
        logger.error("%s", error)
        code = exit_code_for(error)
    except KeyboardInterrupt:
        logger.error("interrupted")
        code = 130
    except Exception:
        logger.exception("unexpected error")
        code = EXIT_UNEXPECTED
    sys.exit(code)
