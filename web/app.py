"""The Flask app: its pages, and what keeps it safe on a machine with other users.

Safe by default: it answers only requests addressed to this machine's loopback names
(so a web page elsewhere cannot reach it through DNS rebinding; opened to the network,
to an address or the machine's own name), refuses form posts
from other origins, caps uploads, escapes every value it shows (Jinja2's autoescaping),
runs no inline script (a strict Content-Security-Policy) and never shows a stack trace.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, SecurityError

from config import Config, is_loopback
from errors import LetterboxdError, one_line
from web import (list_pages, people_pages, statistics_pages, status_page,
                 together_pages)
from web.jobs import UNEXPECTED, JobBoard
from web.state import EXTENSION, ModelHolder, People, Server
from web.uploads import megabytes

logger = logging.getLogger("letterboxd.web")

# A real export ZIP is a few MB; this is far more than any, and far less than memory.
DEFAULT_MAX_UPLOAD_BYTES = 32 * 1024 * 1024
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")
_OPEN_HOST_NAMES = "LETTERBOXD_OPEN_HOST_NAMES"  # app.config key
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class WebSettings:
    config: Config                 # the same settings object as the CLI's
    host: str = "127.0.0.1"        # the address served on (--host)
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES


def trusted_hosts(host: str) -> list[str] | None:
    """The host names a request may be addressed to: this machine's loopback names and
    the loopback address served on (`--host 127.0.0.2` is opened as that); None once the
    page is open to the network on purpose (then `_refuse_rebound_names` decides)."""
    if not is_loopback(host):
        return None
    return list(dict.fromkeys([*LOOPBACK_NAMES, f"[{host}]" if ":" in host else host]))


def _open_host_names(host: str) -> frozenset[str]:
    """The names a page open to the network may be reached by: this machine's own."""
    return frozenset(name.lower() for name in (
        *LOOPBACK_NAMES, host, socket.gethostname(), socket.getfqdn()) if name)


def _refuse_rebound_names() -> None:
    """With --host open to the network, a request must still name this machine: by an
    address, or by its own host name. Any other name is a page elsewhere that pointed
    its own name at this machine (DNS rebinding) to read it from a visitor's browser."""
    name = urlsplit(f"//{request.host}").hostname or ""
    try:
        ipaddress.ip_address(name)
        return
    except ValueError:
        pass
    if name not in current_app.config[_OPEN_HOST_NAMES]:
        raise SecurityError(f"host {name!r} is not this machine's")


def create_app(settings: WebSettings) -> Flask:
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_upload_bytes,
                      TRUSTED_HOSTS=trusted_hosts(settings.host))
    app.extensions[EXTENSION] = Server(
        config=settings.config, holder=ModelHolder(settings.config.data_dir), people=People(),
        jobs=JobBoard(), max_upload_bytes=settings.max_upload_bytes)
    for pages in (people_pages, list_pages, statistics_pages, together_pages, status_page):
        app.register_blueprint(pages.blueprint)
    if not is_loopback(settings.host):
        app.config[_OPEN_HOST_NAMES] = _open_host_names(settings.host)
        app.before_request(_refuse_rebound_names)
    app.before_request(_refuse_posts_from_elsewhere)
    app.after_request(_add_security_headers)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(SecurityError, _not_for_this_host)
    app.register_error_handler(LetterboxdError, _bad_input)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def close_app(app: Flask) -> None:
    """The server is stopping: free what unfinished background work holds (an upload's
    temporary folder)."""
    app.extensions[EXTENSION].jobs.close()


def _same_origin(source: str) -> bool:
    parts = urlsplit(source)
    return (parts.scheme, parts.netloc) == (request.scheme, request.host)


def _refuse_posts_from_elsewhere() -> Response | None:
    """A form posted by a page of another site (cross-site request forgery) is refused:
    browsers name the page's origin on every POST. A client that names none (curl, a
    script) is no browser tricked into posting."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if source is None or _same_origin(source):
        return None
    return _message_page("Refused", "This form was sent from another site's page; open the "
                         "page from this server and send it again.", 403)


def _add_security_headers(response: Response) -> Response:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _message_page(title: str, message: str, status: int) -> Response:
    return Response(render_template("message.html", title=title, message=message),
                    status=status, mimetype="text/html")


def _too_large(error: RequestEntityTooLarge) -> Response:
    cap = int(request.max_content_length or 0)
    size = request.content_length
    if size is not None and size <= cap:  # within the upload cap: a text field too long
        return people_pages.home_with_error("A field of that form is far too long.", 413)
    message = (f"That file is {megabytes(size)}; " if size else "That file is too large; ") + (
        f"an export ZIP may be at most {megabytes(cap)} here (a real Letterboxd export is a "
        "few MB).")
    return people_pages.home_with_error(message, 413)


def _not_for_this_host(error: SecurityError) -> Response:
    """A request for another host name (a page elsewhere rebinding its name to this
    machine): plain text, as no page of this app may be built for that host."""
    return Response("This server answers only requests addressed to this machine "
                    "(127.0.0.1 or localhost; see --host).\n", status=400,
                    mimetype="text/plain")


def _bad_input(error: LetterboxdError) -> Response:
    return _message_page("That did not work", one_line(str(error)), 400)


def _http_error(error: HTTPException) -> Response:
    return _message_page(f"{error.code} {error.name}", error.description or error.name,
                         error.code or 500)


def _unexpected(error: Exception) -> Response:
    logger.exception("a page failed")
    return _message_page("Something went wrong", UNEXPECTED, 500)
