"""`recommend.py --serve`: the page on a threaded server, on this machine only by default.

Waitress serves it: a production WSGI server in pure Python, with a pool of threads, so
one request waiting on a model fit or a profile read never holds up the next; it
buffers each request body (within a cap) before the app sees it.
"""
from __future__ import annotations

import errno
import logging
from dataclasses import dataclass

from config import Config, is_loopback
from dataset.install import dataset_exists
from errors import BadInputError, DatasetError
from flask import Flask

from web.app import WebSettings, close_app, create_app

logger = logging.getLogger("letterboxd.web")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
THREADS = 8
# Waitress refuses a body over this with a bare page of its own; up to it, the app
# answers an upload over its own cap with a clear message on the page.
_BODY_ALLOWANCE = 4


@dataclass(frozen=True)
class ServeOptions:
    host: str = DEFAULT_HOST
    port: int | None = None  # None: DEFAULT_PORT, else any free one when it is taken


def make_server(app: Flask, options: ServeOptions):
    """The server of `app`, bound and ready to `run()`; `close()` stops it."""
    from waitress import create_server  # only the page needs it

    def bound(port: int):
        return create_server(app, host=options.host, port=port, threads=THREADS,
                             max_request_body_size=_BODY_ALLOWANCE
                             * app.config["MAX_CONTENT_LENGTH"], ident="letterboxd-toolkit")

    try:
        return bound(DEFAULT_PORT if options.port is None else options.port)
    except OSError as error:
        if options.port is None and error.errno == errno.EADDRINUSE:
            logger.info("port %d is taken: using a free one", DEFAULT_PORT)
            return bound(0)
        raise BadInputError(f"cannot listen on {options.host} port "
                            f"{DEFAULT_PORT if options.port is None else options.port}: "
                            f"{error.strerror or error} (choose another with --port, or "
                            "--port 0 for any free one)") from None


def serve(config: Config, options: ServeOptions) -> int:
    """Serve until Ctrl-C; the exit code. A folder without a dataset is refused first:
    every page would only say so."""
    if not dataset_exists(config.data_dir):
        raise DatasetError(config.data_dir, "holds no dataset (no dataset_state.json); "
                           "build one with compile_training_data.py or import one")
    if not is_loopback(options.host):
        logger.warning("--host %s: the page is open to every machine that can reach this "
                       "one, with no login; anyone there can use it and upload files to it",
                       options.host)
    app = create_app(WebSettings(config=config, host=options.host))
    server = make_server(app, options)
    host = f"[{options.host}]" if ":" in options.host else options.host
    logger.info("serving the dataset in %s", config.data_dir)
    logger.info("open http://%s:%s/ in a browser (Ctrl-C stops the server)", host,
                server.effective_port)
    try:
        server.run()  # until Ctrl-C, which waitress catches
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        close_app(app)
    logger.info("stopped")
    return 0
