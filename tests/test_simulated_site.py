"""The simulated letterboxd.com: markup, pagination, data loading, faults, lifecycle."""
from __future__ import annotations

import csv
import gzip
import json
import math
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest
import requests
from bs4 import BeautifulSoup
from protego import Protego

from names import validate_slug, validate_username
from simulated_site import (FILMS_PER_PAGE, MEMBERS_PER_PAGE, WATCHLIST_PER_PAGE, FaultConfig,
                            SimulatedSite, SiteData, SiteEntry, SiteFilm)
from simulated_site.command import main
from tests.conftest import PROJECT_ROOT

JSON_LD = re.compile(r'<script type="application/ld\+json">\s*'
                     r'/\* <!\[CDATA\[ \*/(.*?)/\* \]\]> \*/', re.S)


@pytest.fixture(scope="module")
def data() -> SiteData:
    return SiteData.generate(seed=7, n_users=70, n_films=300)


@pytest.fixture
def site(data: SiteData) -> Iterator[SimulatedSite]:
    with SimulatedSite(data) as running:
        yield running


def get(site: SimulatedSite, path: str, **kwargs: object) -> requests.Response:
    return requests.get(site.base_url + path, timeout=5, allow_redirects=False, **kwargs)


def soup(response: requests.Response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "lxml")


def last_page(page: BeautifulSoup) -> int:
    numbers = [int(li.get_text()) for li in page.select("div.pagination div.paginate-pages li")
               if li.get_text().strip().isdigit()]
    return max(numbers, default=1)


def grid_tiles(page: BeautifulSoup) -> list[tuple[str, int | None, bool, dict]]:
    """(slug, rating, liked, postered identifier) per tile, read like a scraper would."""
    tiles = []
    for item in page.select("li.griditem"):
        poster = item.select_one('div.react-component[data-component-class="LazyPoster"]')
        rating_span = item.select_one("p.poster-viewingdata span.rating")
        rating = None
        if rating_span is not None:
            rating = int(next(c for c in rating_span["class"] if c.startswith("rated-"))[6:])
        liked = item.select_one("p.poster-viewingdata .icon-liked") is not None
        tiles.append((poster["data-item-slug"], rating, liked,
                      json.loads(poster["data-postered-identifier"])))
    return tiles


def scrape_user(site: SimulatedSite, username: str) -> list[tuple[str, int | None, bool, dict]]:
    first = soup(get(site, f"/{username}/films/"))
    tiles = grid_tiles(first)
    for number in range(2, last_page(first) + 1):
        tiles += grid_tiles(soup(get(site, f"/{username}/films/page/{number}/")))
    return tiles


def user_with_pages(data: SiteData, minimum: int) -> str:
    return next(name for name, entries in data.users.items() if len(entries) > minimum)


# --- robots.txt and headers -----------------------------------------------------

def test_robots_txt_has_the_real_rules(site: SimulatedSite) -> None:
    response = get(site, "/robots.txt")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    robots = Protego.parse(response.text)
    agent = "letterboxd-ratings-toolkit/0.1.0"
    assert robots.can_fetch(f"{site.base_url}/alice/films/page/3/", agent)
    assert robots.can_fetch(f"{site.base_url}/members/popular/page/2/", agent)
    assert not robots.can_fetch(f"{site.base_url}/alice/films/by/date/", agent)
    assert not robots.can_fetch(f"{site.base_url}/members/popular/this/week/", agent)
    assert not robots.can_fetch(f"{site.base_url}/alice/films/genre/drama/", agent)
    assert not robots.can_fetch(f"{site.base_url}/films/year/2001/", agent)
    for bot in ("GPTBot", "ClaudeBot", "CCBot"):
        assert not robots.can_fetch(f"{site.base_url}/alice/films/", bot)
    assert "Crawl-delay" not in response.text


def test_every_response_looks_like_it_came_through_cloudflare(site: SimulatedSite) -> None:
    rays = set()
    for path in ("/robots.txt", "/members/popular/", "/no-such-user/films/", "/film/nope/"):
        response = get(site, path)
        assert response.headers["server"] == "cloudflare"
        assert re.fullmatch(r"[0-9a-f]{16}-[A-Z]{3}", response.headers["cf-ray"])
        rays.add(response.headers["cf-ray"])
    assert len(rays) == 4


# --- members ----------------------------------------------------------------------

def test_members_pages_list_users_in_popularity_order(site: SimulatedSite, data: SiteData) -> None:
    listed, watched, page_number = [], [], 1
    while True:
        page = soup(get(site, f"/members/popular/page/{page_number}/"))
        rows = page.select("table.member-table tbody tr")
        assert len(rows) == min(MEMBERS_PER_PAGE, len(data.users) - len(listed))
        for row in rows:
            link = row.select_one("td.table-person a.name")
            listed.append(link["href"].strip("/"))
            assert link.get_text(strip=True) == data.display_names[listed[-1]]
            watched.append(int(row.select_one("td.col-watched a").get_text().replace(",", "")))
        if page.select_one("div.pagination a.next") is None:
            break
        page_number += 1
    assert page_number == math.ceil(len(data.users) / MEMBERS_PER_PAGE)
    assert listed == list(data.users)
    assert watched == [len(entries) for entries in data.users.values()]
    assert watched == sorted(watched, reverse=True)
    assert get(site, "/members/popular/").text == get(site, "/members/popular/page/1/").text


def test_members_page_beyond_the_last_is_empty_without_next(site: SimulatedSite) -> None:
    page = soup(get(site, "/members/popular/page/99/"))
    assert page.select_one("table.member-table") is not None
    assert page.select("td.table-person") == []
    assert page.select_one("a.next") is None


# --- a member's films ---------------------------------------------------------------

def test_films_grid_has_72_tiles_pagination_and_ratings(site: SimulatedSite,
                                                         data: SiteData) -> None:
    username = user_with_pages(data, 2 * FILMS_PER_PAGE)
    entries = data.users[username]
    pages = math.ceil(len(entries) / FILMS_PER_PAGE)
    first = soup(get(site, f"/{username}/films/"))
    assert len(first.select("li.griditem")) == FILMS_PER_PAGE
    assert last_page(first) == pages
    assert first.select_one("div.pagination a.next")["href"] == f"/{username}/films/page/2/"
    assert first.select_one("li.paginate-current").get_text() == "1"
    heading = first.select_one("h1.section-heading span.tooltip")["title"]
    assert heading == f"{len(entries):,}\xa0films"

    last = soup(get(site, f"/{username}/films/page/{pages}/"))
    assert len(last.select("li.griditem")) == len(entries) - (pages - 1) * FILMS_PER_PAGE
    assert last.select_one("div.pagination a.next") is None
    assert last_page(last) == pages

    tiles = scrape_user(site, username)
    assert [(slug, rating, liked) for slug, rating, liked, _ in tiles] == \
        [tuple(entry) for entry in entries]
    for slug, _, _, identifier in tiles:
        film = data.films[slug]
        assert identifier == {"lid": film.lid, "uid": f"film:{film.letterboxd_id}",
                              "type": "film", "typeName": "film"}


def test_rating_classes_and_star_text_match(site: SimulatedSite, data: SiteData) -> None:
    username = list(data.users)[0]
    html = get(site, f"/{username}/films/").text
    found = [int(n) for n in re.findall(r'class="rating -micro -darker rated-(\d+)"', html)]
    expected = [e.rating for e in data.users[username][:FILMS_PER_PAGE] if e.rating is not None]
    assert found == expected
    for rating, text in re.findall(r'rated-(\d+)">([^<]*)<', html):
        assert text.count("★") * 2 + text.count("½") == int(rating)
    liked = [e for e in data.users[username][:FILMS_PER_PAGE] if e.liked]
    assert html.count("icon-liked") == len(liked)


def test_raw_markup_single_quotes_json_and_can_drop_film_id(data: SiteData) -> None:
    username = list(data.users)[0]
    with SimulatedSite(data) as site:
        html = get(site, f"/{username}/films/").text
        assert html.count("data-film-id=") == FILMS_PER_PAGE
        assert re.search(r"data-postered-identifier='\{\"lid\":\"[A-Za-z0-9]{4,6}\","
                         r"\"uid\":\"film:\d+\"",
                         html)
        site.update_faults(strip_film_id=True)
        stripped = get(site, f"/{username}/films/").text
        assert "data-film-id" not in stripped
        assert stripped.count("data-postered-identifier=") == FILMS_PER_PAGE


def test_page_beyond_last_and_empty_user_have_empty_grid(site: SimulatedSite,
                                                         data: SiteData) -> None:
    username = list(data.users)[-1]
    beyond = soup(get(site, f"/{username}/films/page/50/"))
    assert get(site, f"/{username}/films/page/50/").status_code == 200
    assert beyond.select_one("ul.grid") is not None and beyond.select("li.griditem") == []
    assert beyond.select_one("div.pagination") is None
    data.add_user("emptyuser")
    try:
        empty = soup(get(site, "/emptyuser/films/"))
        assert empty.select_one("ul.grid") is not None and empty.select("li.griditem") == []
        assert empty.select_one("div.pagination") is None
    finally:
        data.remove_user("emptyuser")


def test_mixed_case_and_missing_slash(site: SimulatedSite, data: SiteData) -> None:
    username = list(data.users)[0]
    assert get(site, f"/{username.upper()}/films/").status_code == 200
    redirect = get(site, f"/{username}/films?x=1")
    assert redirect.status_code == 301
    assert redirect.headers["location"] == f"/{username}/films/?x=1"
    assert get(site, f"/{username}/films/page/0/").status_code == 404


def test_watchlist_has_28_tiles_per_page_and_a_count(site: SimulatedSite, data: SiteData) -> None:
    username = next(name for name, slugs in data.watchlists.items()
                    if len(slugs) > WATCHLIST_PER_PAGE)
    slugs = data.watchlists[username]
    first = soup(get(site, f"/{username}/watchlist/"))
    assert first.select_one("div.js-watchlist-content")["data-num-entries"] == str(len(slugs))
    assert len(first.select("li.griditem")) == WATCHLIST_PER_PAGE
    assert first.select("p.poster-viewingdata") == []
    assert last_page(first) == math.ceil(len(slugs) / WATCHLIST_PER_PAGE)
    second = soup(get(site, f"/{username}/watchlist/page/2/"))
    seen = [tile[0] for tile in grid_tiles(first) + grid_tiles(second)]
    assert seen == slugs[:len(seen)] and len(seen) == min(len(slugs), 2 * WATCHLIST_PER_PAGE)


# --- film pages ------------------------------------------------------------------------

def test_film_page_json_ld_and_masthead(site: SimulatedSite, data: SiteData) -> None:
    film = next(f for f in data.films.values() if "<" in f.title)
    page = get(site, f"/film/{film.slug}/")
    assert page.status_code == 200
    linked = json.loads(JSON_LD.search(page.text).group(1))
    assert linked["name"] == film.title
    assert linked["releasedEvent"][0]["startDate"] == str(film.year)
    assert linked["genre"] == list(film.genres)
    ratings = [e.rating for entries in data.users.values() for e in entries
               if e.slug == film.slug and e.rating is not None]
    assert linked["aggregateRating"]["ratingCount"] == len(ratings)
    assert linked["aggregateRating"]["ratingValue"] == round(statistics.mean(ratings) / 2, 2)
    parsed = soup(page)
    assert parsed.select_one("section.production-masthead h1 .name").get_text() == film.title
    assert parsed.select_one(".releasedate a").get_text() == str(film.year)
    poster = parsed.select_one('#js-poster-col [data-component-class="LazyPoster"]')
    assert json.loads(poster["data-postered-identifier"])["uid"] == f"film:{film.letterboxd_id}"
    assert parsed.select_one('meta[property="og:type"]')["content"] == "video.movie"


def test_film_page_external_links(site: SimulatedSite, data: SiteData) -> None:
    films = list(data.films.values())
    without_links = [f for f in films if f.tmdb_id is None][:3] + \
        [f for f in films if f.imdb_id is None][:3]
    assert len(without_links) == 6
    for film in without_links + films[:10]:
        parsed = soup(get(site, f"/film/{film.slug}/"))
        tmdb = parsed.select_one('a[data-track-action="TMDB"]')
        imdb = parsed.select_one('a[data-track-action="IMDb"]')
        kind = "tv" if film.content_type == "tv" else "movie"
        assert (tmdb["href"] if tmdb else None) == (
            f"https://www.themoviedb.org/{kind}/{film.tmdb_id}/" if film.tmdb_id else None)
        assert (imdb["href"] if imdb else None) == (
            f"http://www.imdb.com/title/{film.imdb_id}/maindetails" if film.imdb_id else None)
        # As on the real site, a series' page has no TMDB id on its body.
        assert parsed.body["data-tmdb-id"] == str(film.tmdb_id or "" if kind == "movie" else "")


def test_film_without_year_or_ratings(data: SiteData) -> None:
    yearless = next(f for f in data.films.values() if f.year is None)
    local = SiteData(films=[yearless])
    with SimulatedSite(local) as site:
        page = get(site, f"/film/{yearless.slug}/")
    linked = json.loads(JSON_LD.search(page.text).group(1))
    assert "releasedEvent" not in linked and "aggregateRating" not in linked
    assert soup(page).select_one(".releasedate") is None


# --- error, private and block pages ---------------------------------------------------------

def test_unknown_pages_are_letterboxd_404s(site: SimulatedSite) -> None:
    for path in ("/nosuchuser/films/", "/nosuchuser/watchlist/", "/film/no-such-film/",
                 "/what/ever/deep/"):
        response = get(site, path)
        assert response.status_code == 404
        assert soup(response).body["class"] == ["error", "message-dark"]
        assert "Sorry, we can’t find the page you’ve requested." in response.text


def test_private_users_get_letterboxds_own_403(data: SiteData) -> None:
    username = list(data.users)[1]
    with SimulatedSite(data, FaultConfig(private_users=frozenset({username.upper()}))) as site:
        for path in (f"/{username}/films/", f"/{username}/watchlist/"):
            response = get(site, path)
            assert response.status_code == 403
            assert "<title>Letterboxd - Forbidden</title>" in response.text
            assert "correct clearance" in response.text
            assert "cf-mitigated" not in response.headers
        assert get(site, f"/{list(data.users)[0]}/films/").status_code == 200


def test_vanished_users_stay_listed_but_404(data: SiteData) -> None:
    username = list(data.users)[0]
    with SimulatedSite(data, FaultConfig(vanished_users=frozenset({username}))) as site:
        assert f'href="/{username}/" class="name"' in get(site, "/members/popular/").text
        assert get(site, f"/{username}/films/").status_code == 404


def test_challenge_after_n_requests(data: SiteData) -> None:
    with SimulatedSite(data, FaultConfig(challenge_after=2)) as site:
        assert get(site, "/members/popular/").status_code == 200
        assert get(site, "/robots.txt").status_code == 200  # never counted
        assert get(site, "/members/popular/page/2/").status_code == 200
        blocked = get(site, "/members/popular/page/3/")
        assert blocked.status_code == 403
        assert blocked.headers["cf-mitigated"] == "challenge"
        assert "<title>Just a moment...</title>" in blocked.text
        assert 'src="https://challenges.cloudflare.com/' in blocked.text
        assert get(site, "/robots.txt").status_code == 200
        assert get(site, "/members/popular/").status_code == 403
        assert site.fault_counts["challenge"] == 2


def test_429_carries_retry_after(data: SiteData) -> None:
    with SimulatedSite(data, FaultConfig(rate_429=1.0, retry_after=7)) as site:
        response = get(site, "/members/popular/")
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"
        assert get(site, "/robots.txt").status_code == 200


# --- fault knobs -----------------------------------------------------------------------------

def test_5xx_rate(data: SiteData) -> None:
    with SimulatedSite(data, FaultConfig(rate_5xx=1.0)) as site:
        statuses = {get(site, f"/film/{slug}/").status_code for slug in list(data.films)[:30]}
        assert statuses <= {500, 502, 503} and len(statuses) > 1
        assert get(site, "/robots.txt").status_code == 200
        site.update_faults(faults_on_robots=True)
        assert get(site, "/robots.txt").status_code >= 500


def test_reset_closes_without_an_answer(data: SiteData) -> None:
    with SimulatedSite(data, FaultConfig(rate_reset=1.0)) as site:
        with pytest.raises(requests.ConnectionError):
            get(site, "/members/popular/")
        assert site.request_log[-1][1:] == ("/members/popular/", 0)
        assert site.fault_counts == {"reset": 1}


def test_truncated_body_fails_the_read(data: SiteData) -> None:
    with SimulatedSite(data, FaultConfig(rate_truncated=1.0)) as site:
        with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
            get(site, "/members/popular/")
        assert site.fault_counts == {"truncated": 1}


def test_cut_pages_are_whole_at_the_http_level_but_stop_anywhere(data: SiteData) -> None:
    paths = [f"/film/{slug}/" for slug in list(data.films)[:30]]
    with SimulatedSite(data) as site:
        whole = {path: get(site, path).content for path in paths}
    with SimulatedSite(data, FaultConfig(rate_cut_page=1.0, seed=3)) as site:
        cut = {}
        for path in paths:
            response = get(site, path)
            assert response.status_code == 200
            assert int(response.headers["content-length"]) == len(response.content)
            cut[path] = response.content
        assert site.fault_counts == {"cut_page": len(paths)}
        assert get(site, "/no/such/page/").status_code == 404  # only whole pages are cut
    assert all(whole[path].startswith(cut[path]) and len(cut[path]) < len(whole[path])
               for path in paths)
    shares = [len(cut[path]) / len(whole[path]) for path in paths]
    assert min(shares) < 0.25 and max(shares) > 0.75  # anywhere, not at one place


def test_slow_headers_come_a_byte_at_a_time(data: SiteData) -> None:
    faults = FaultConfig(rate_slow_headers=1.0, header_byte_seconds=0.002)
    with SimulatedSite(data, faults) as site, socket.create_connection(
            ("127.0.0.1", int(site.base_url.rsplit(":", 1)[1])), timeout=5) as connection:
        connection.sendall(b"GET /members/popular/ HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        received = b""
        while b"\r\n\r\n" not in received:
            received += connection.recv(4096)
        head = received.split(b"\r\n\r\n")[0]
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length" in head
        assert time.monotonic() - started >= len(head) * 0.002 * 0.8
        assert site.fault_counts == {"slow_headers": 1}
        assert get(site, "/robots.txt").status_code == 200  # robots.txt is spared


def test_slow_answers_wait(data: SiteData) -> None:
    with SimulatedSite(data, FaultConfig(rate_slow=1.0, slow_seconds=0.2)) as site:
        started = time.monotonic()
        assert get(site, "/members/popular/").status_code == 200
        assert time.monotonic() - started >= 0.2
        started = time.monotonic()
        assert get(site, "/robots.txt").status_code == 200
        assert time.monotonic() - started < 0.2


def test_fail_first_k_per_path(data: SiteData) -> None:
    with SimulatedSite(data, FaultConfig(fail_first=2, fail_first_status=429)) as site:
        assert [get(site, "/members/popular/").status_code for _ in range(3)] == [429, 429, 200]
        assert get(site, "/members/popular/page/2/").status_code == 429
        site.clear_log()
        assert get(site, "/members/popular/").status_code == 429


def test_faults_are_deterministic_per_seed_and_path(data: SiteData) -> None:
    faults = dict(rate_429=0.2, rate_5xx=0.2, rate_reset=0.1, seed=11)
    paths = [f"/film/{slug}/" for slug in list(data.films)[:40]]

    def statuses(site: SimulatedSite, order: list[str]) -> dict[str, int]:
        result = {}
        for path in order:
            try:
                result[path] = get(site, path).status_code
            except requests.ConnectionError:
                result[path] = 0
        return result

    with SimulatedSite(data, FaultConfig(**faults)) as one:
        first = statuses(one, paths)
    with SimulatedSite(data, FaultConfig(**faults)) as two:
        second = statuses(two, list(reversed(paths)))
    assert first == second
    assert {0, 200, 429} <= set(first.values())
    with SimulatedSite(data, FaultConfig(**{**faults, "seed": 12})) as three:
        assert statuses(three, paths) != first


def test_fault_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        FaultConfig(rate_429=0.7, rate_5xx=0.7)
    with pytest.raises(ValueError):
        FaultConfig(rate_slow=1.5)
    with pytest.raises(ValueError):
        FaultConfig(rate_cut_page=0.6, rate_truncated=0.6)
    with pytest.raises(ValueError):
        FaultConfig(header_byte_seconds=-1)


# --- data: generate and load ---------------------------------------------------------------------

def test_generate_is_deterministic_and_realistic() -> None:
    one = SiteData.generate(seed=5, n_users=60, n_films=250)
    two = SiteData.generate(seed=5, n_users=60, n_films=250)
    other = SiteData.generate(seed=6, n_users=60, n_films=250)
    assert (one.films, one.users, one.display_names, one.watchlists) == \
        (two.films, two.users, two.display_names, two.watchlists)
    assert one.users != other.users
    for name, entries in one.users.items():
        assert validate_username(name) == name
        assert 5 <= len(entries) <= 300
        assert len({e.slug for e in entries}) == len(entries)
    assert all(validate_slug(slug) == slug for slug in one.films)
    assert len({f.letterboxd_id for f in one.films.values()}) == len(one.films)
    assert len({f.lid for f in one.films.values()}) == len(one.films)
    ratings = [e.rating for entries in one.users.values() for e in entries if e.rating is not None]
    assert 6.5 <= statistics.mean(ratings) <= 7.5 and set(ratings) == set(range(1, 11))
    entries = [e for es in one.users.values() for e in es]
    assert any(e.rating is None for e in entries) and any(e.liked for e in entries)
    titles = [f.title for f in one.films.values()]
    assert any(t.startswith("=") for t in titles)
    assert any("," in t for t in titles) and any('"' in t for t in titles)
    assert any(not t.isascii() for t in titles)
    assert any(f.year is None for f in one.films.values())
    assert any(len(w) > WATCHLIST_PER_PAGE for w in one.watchlists.values())


def test_generated_film_popularity_is_heavy_tailed() -> None:
    data = SiteData.generate(seed=5, n_users=100, n_films=1000)
    watchers = Counter(entry.slug for entries in data.users.values() for entry in entries)
    counts = sorted((watchers[slug] for slug in data.films), reverse=True)
    assert counts[0] > 5 * statistics.median(counts)
    assert counts[-1] <= 2


def write_ratings(path: Path, rows: list[tuple[str, str, int]]) -> None:
    with gzip.open(path, "wt", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "movie_id", "rating_val"])
        writer.writerows(rows)


def test_ratings_csv_round_trips_through_the_served_pages(tmp_path: Path) -> None:
    rows = [("bigfan", f"film-number-{n}", 1 + n % 10) for n in range(150)]
    rows += [("casual_1", "film-number-3", 10), ("casual_1", "the-thing-1982", 2),
             ("abe", "the-thing-1982", 6), ("zed", "film-number-7", 4), ("zed", "film-number-8", 5)]
    write_ratings(tmp_path / "ratings.csv.gz", rows)
    (tmp_path / "movies.csv").write_text(
        'movie_id,movie_title,year_released,genres\n'
        'film-number-3,"Three, ""the"" Film",1999,Drama|Comedy\n'
        'the-thing-1982,,,\n', encoding="utf-8")
    data = SiteData.from_ratings_csv(tmp_path / "ratings.csv.gz", tmp_path / "movies.csv")
    assert list(data.users) == ["bigfan", "casual_1", "zed", "abe"]
    assert data.films["film-number-3"].title == 'Three, "the" Film'
    assert data.films["film-number-3"].genres == ("Drama", "Comedy")
    the_thing = data.films["the-thing-1982"]
    assert (the_thing.title, the_thing.year) == ("The Thing", 1982)
    assert data.films["film-number-9"].year is None

    with SimulatedSite(data) as site:
        served = set()
        for username in data.users:
            served |= {(username, slug, rating)
                       for slug, rating, _, _ in scrape_user(site, username)}
        listed = [a["href"].strip("/") for a in soup(get(site, "/members/popular/"))
                  .select("td.table-person a.name")]
    assert served == set(rows)
    assert listed == list(data.users)


def test_ratings_csv_rejects_bad_values(tmp_path: Path) -> None:
    write_ratings(tmp_path / "bad.csv.gz", [("ann", "a-film", 11)])
    with pytest.raises(ValueError, match="rating_val"):
        SiteData.from_ratings_csv(tmp_path / "bad.csv.gz")
    write_ratings(tmp_path / "slug.csv.gz", [("ann", "../etc", 5)])
    with pytest.raises(ValueError, match="slug"):
        SiteData.from_ratings_csv(tmp_path / "slug.csv.gz")


def test_loads_the_500k_sample_quickly(shared_dataset_dir: Path) -> None:
    started = time.monotonic()
    data = SiteData.from_ratings_csv(shared_dataset_dir / "ratings.csv.gz",
                                     shared_dataset_dir / "movies.csv.gz")
    assert time.monotonic() - started < 10
    assert len(data.users) == 2187 and len(data.films) == 4974
    assert sum(len(entries) for entries in data.users.values()) == 509_463
    counts = [len(entries) for entries in data.users.values()]
    assert counts == sorted(counts, reverse=True)
    assert len({f.lid for f in data.films.values()}) == 4974


# --- changes while serving, concurrency, lifecycle ---------------------------------------------

def test_changes_show_up_while_serving() -> None:
    data = SiteData.generate(seed=1, n_users=10, n_films=60)
    with SimulatedSite(data) as site:
        username = list(data.users)[0]
        slug = data.users[username][0].slug

        def rating_count() -> int:
            page = get(site, f"/film/{slug}/").text
            return json.loads(JSON_LD.search(page).group(1))["aggregateRating"]["ratingCount"]

        expected = sum(1 for es in data.users.values() for e in es
                       if e.slug == slug and e.rating is not None)
        assert rating_count() == expected
        was_rated = data.users[username][0].rating is not None
        data.set_rating(username, slug, 3)
        assert rating_count() == expected + (not was_rated)
        assert grid_tiles(soup(get(site, f"/{username}/films/")))[0][:2] == (slug, 3)
        data.set_rating(username, "brand-new-film-2031", 9)
        first_tile = grid_tiles(soup(get(site, f"/{username}/films/")))[0]
        assert first_tile[:2] == ("brand-new-film-2031", 9)
        assert get(site, "/film/brand-new-film-2031/").status_code == 200
        data.remove_entry(username, slug)
        assert slug not in [t[0] for t in scrape_user(site, username)]
        assert rating_count() == expected - was_rated
        data.add_user("newcomer", [SiteEntry(slug, 8, True)], display_name="New & Co", position=0)
        first_row = soup(get(site, "/members/popular/")).select_one("td.table-person a.name")
        assert first_row["href"] == "/newcomer/" and first_row.get_text(strip=True) == "New & Co"
        data.remove_user(username)
        assert get(site, f"/{username}/films/").status_code == 404


def test_concurrent_requests_while_data_changes() -> None:
    data = SiteData.generate(seed=2, n_users=40, n_films=200)
    usernames = list(data.users)
    with SimulatedSite(data) as site:
        def fetch(index: int) -> int:
            with requests.Session() as session:
                return session.get(f"{site.base_url}/{usernames[index % 40]}/films/",
                                   timeout=5).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = pool.map(fetch, range(120))
            for number in range(100):
                data.set_rating(usernames[number % 40], f"extra-film-{number}", 1 + number % 10)
            assert set(results) == {200}
        assert site.request_count() == 120
        assert site.request_count(f"/{usernames[0]}/") == 3


def test_stop_cuts_keep_alive_connections(data: SiteData) -> None:
    site = SimulatedSite(data)
    site.start()
    with requests.Session() as session:
        assert session.get(site.base_url + "/robots.txt", timeout=5).status_code == 200
        site.stop()
        with pytest.raises(requests.ConnectionError):
            session.get(site.base_url + "/robots.txt", timeout=5)


def test_request_log_records_time_path_status(site: SimulatedSite) -> None:
    before = time.monotonic()
    get(site, "/members/popular/")
    get(site, "/nobody/films/")
    log = site.request_log
    assert [(path, status) for _, path, status in log[-2:]] == \
        [("/members/popular/", 200), ("/nobody/films/", 404)]
    assert before <= log[-2][0] <= log[-1][0] <= time.monotonic()
    assert site.request_count("/members/") == 1


def test_command_line_serves_generated_data() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "simulated_site", "--generate-users", "12", "--films", "40",
         "--strip-film-id"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        line = process.stdout.readline()
        match = re.fullmatch(r"Simulated Letterboxd at (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line + process.stderr.read()
        response = requests.get(match.group(1) + "/members/popular/", timeout=5)
        members = soup(response).select("td.table-person a.name")
        assert len(members) == 12
        films = requests.get(f"{match.group(1)}{members[0]['href']}films/", timeout=5).text
        assert "data-postered-identifier" in films and "data-film-id" not in films
        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)


def test_command_line_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--generate-users", "3", "--rate-429", "2"]) == 2
    assert "fault rates" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--port", "0"])  # no data source


def test_site_film_display_name() -> None:
    assert SiteFilm("x", "X", 2001, 1, "abcd").display_name == "X (2001)"
    assert SiteFilm("x", "X", None, 1, "abcd").display_name == "X"


def test_faults_change_at_runtime_and_head_works(data: SiteData) -> None:
    with SimulatedSite(data) as site:
        assert get(site, "/members/popular/").status_code == 200
        site.faults.rate_5xx = 1.0
        assert get(site, "/members/popular/").status_code >= 500
        site.faults = FaultConfig()
        head = requests.head(site.base_url + "/members/popular/", timeout=5)
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) > 1000
