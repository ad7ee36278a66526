"""A local, simulated letterboxd.com for tests, benchmarks and demos.

Run it on its own with `python -m simulated_site --help`. The parts:

* `records`, `data`: what the site knows (films, members, ratings, watchlists), built
  from a ratings CSV, generated for a seed (`synthetic`), changed while serving;
* `pages`: the HTML, shaped like the real 2026 markup;
* `faults`: what goes wrong, decided per request by a seed;
* `server`: the HTTP server, its routes and request log;
* `command`: the command line.
"""
from simulated_site.data import SiteData
from simulated_site.faults import RESET, FaultConfig
from simulated_site.records import MemberRow, SiteEntry, SiteFilm
from simulated_site.server import (FILMS_PER_PAGE, MEMBERS_PER_PAGE, WATCHLIST_PER_PAGE, Reply,
                                   SimulatedSite)

__all__ = ["FILMS_PER_PAGE", "FaultConfig", "MEMBERS_PER_PAGE", "MemberRow", "RESET", "Reply",
           "SimulatedSite", "SiteData", "SiteEntry", "SiteFilm", "WATCHLIST_PER_PAGE"]
