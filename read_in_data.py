"""Letterboxd pages in, small frozen records out; and the pool that scrapes many users.

The public face of the scraping side, so `from read_in_data import X` keeps working.
The work lives behind it:

* `letterboxd.records`: the page records (Member, FilmTile, FilmDetails...);
* `letterboxd.grid_page`, `letterboxd.members_page`, `letterboxd.film_page`: the pure
  parsers, HTML text to records;
* `scraping.walk`: one member's grid, a watchlist, a film, the popular members, page
  after page through a fetcher;
* `scraping.crawl`: many users at once, results in input order.
"""
from __future__ import annotations

from letterboxd.film_page import parse_film_page
from letterboxd.grid_page import parse_film_grid
from letterboxd.members_page import parse_members_page
from letterboxd.records import (FilmDetails, FilmGridPage, FilmTile, Member, MembersPage,
                                UserFilms)
# The paths the walks request, for callers that name them too.
from letterboxd.urls import film_path, popular_members_path, user_films_path, watchlist_path
from scraping.crawl import USER_LEVEL_ERRORS, UserResult, scrape_users
from scraping.walk import (MAX_GRID_PAGES, HtmlFetcher, iter_popular_members, read_members_page,
                           scrape_film, scrape_user_films, scrape_watchlist)

__all__ = ["FilmDetails", "FilmGridPage", "FilmTile", "HtmlFetcher", "MAX_GRID_PAGES", "Member",
           "MembersPage", "USER_LEVEL_ERRORS", "UserFilms", "UserResult", "film_path",
           "iter_popular_members", "parse_film_grid", "parse_film_page", "parse_members_page",
           "popular_members_path", "read_members_page", "scrape_film", "scrape_user_films",
           "scrape_users", "scrape_watchlist", "user_films_path", "watchlist_path"]
