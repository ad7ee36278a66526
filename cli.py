"""Plumbing the two commands share: common flags, logging beside tqdm bars, exit codes."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable, NoReturn, Sequence

from tqdm import tqdm

from config import Config
from errors import (EXIT_PIPE_CLOSED, EXIT_UNEXPECTED, DiskFullError, LetterboxdError,
                    exit_code_for, one_line)
from safe_files import is_disk_full

logger = logging.getLogger("letterboxd")

EXIT_CODES_HELP = """exit codes:
  0    done
  1    something unexpected (a bug: please report it with the log)
  2    bad input: a flag, a name, a dataset or export file that cannot be used
  3    stopped because Letterboxd blocked us (challenge page, access denied or
       persistent rate limiting); we never try to get around that
  4    a page stayed unreachable, kept failing or came back cut short through
       every retry, or came back unusable (empty, binary, a status such as 451),
       or this machine is offline; everything finished is saved, try again later
  5    the disk (or quota) is full: nothing was lost; free space and run
       `continue`
  130  interrupted twice; nothing is half-written (one Ctrl-C saves and exits 0)
  141  whoever read the output stopped reading (`| head`), as `git log | head`
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


def add_site_arguments(parser: argparse.ArgumentParser, *, workers: bool = True) -> None:
    """The flags of a command that talks to the site; `workers` where it scrapes many
    users at once."""
    network = parser.add_argument_group("site and politeness")
    network.add_argument("--base-url", help="site to read (default https://letterboxd.com; "
                         "e.g. the local simulated site); env LETTERBOXD_BASE_URL")
    network.add_argument("--rate", type=float, dest="requests_per_second", metavar="R",
                         help="requests per second for the whole run (default 1; 0 = no "
                         "limit, refused unless the site is on this machine); env LETTERBOXD_RATE")
    if workers:
        network.add_argument("--workers", type=int, metavar="W",
                             help="users scraped at once (default 4); env LETTERBOXD_WORKERS")


def add_data_and_output_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every command has: test mode, and how much it says."""
    data = parser.add_argument_group("data")
    data.add_argument("--test-mode", action="store_const", const=True, default=None,
                      help="trial run: use test_output/ and small defaults; output/ is never "
                      "touched (same as TEST_MODE in config.py); env LETTERBOXD_TEST_MODE")
    output = parser.add_argument_group("output")
    output.add_argument("-v", "--verbose", action="count", default=0, help="more detail")
    output.add_argument("-q", "--quiet", action="store_true",
                        help="warnings and errors only, no progress bars")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Every shared flag: for a command that scrapes many users."""
    add_site_arguments(parser)
    add_data_and_output_arguments(parser)


def config_from_args(args: argparse.Namespace, **extra: object) -> Config:
    """The settings, with what the flags a command has override (those it lacks are None)."""
    return Config.from_env(
        base_url=getattr(args, "base_url", None),
        requests_per_second=getattr(args, "requests_per_second", None),
        workers=getattr(args, "workers", None), test_mode=args.test_mode, **extra)


def verbosity(args: argparse.Namespace) -> int:
    return -1 if args.quiet else args.verbose


def existing_path(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    return path


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit cannot fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> NoReturn:
    """Run a command's main and turn what escapes it into one line and an exit code.

    A reader of the output that goes away (`| head -1`) ends the command quietly, and a
    full disk is one line: every write commits whole or not at all.
    """
    try:
        code = main(argv)
        sys.stdout.flush()  # a closed pipe shows here, rather than as an error at exit
    except BrokenPipeError:
        _silence_stdout()
        code = EXIT_PIPE_CLOSED
    except LetterboxdError as error:
        logger.error("%s", one_line(str(error)))
        code = exit_code_for(error)
    except KeyboardInterrupt:
        logger.error("interrupted")
        code = 130
    except Exception as error:
        if is_disk_full(error):  # a write no safe_files helper made
            full = DiskFullError(getattr(error, "filename", None) or "a file")
            logger.error("%s", full)
            code = full.exit_code
        else:
            logger.exception("unexpected error")
            code = EXIT_UNEXPECTED
    sys.exit(code)
