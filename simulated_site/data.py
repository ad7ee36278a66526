"""What the simulated letterboxd.com knows: films, members, their ratings and watchlists.

Kept apart from the HTML and the HTTP server so the same data can be built from the
real 500k sample, generated for a seed, and changed while being served (refresh
tests), with one lock guarding every read the server makes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
import re
import threading
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pycountry

from names import SLUG_PATTERN, USERNAME_PATTERN, validate_slug, validate_username
from simulated_site.records import GridPage, MemberRow, SiteEntry, SiteFilm
from simulated_site.synthetic import generate_films, generate_members, with_made_up_details

MAX_FILM_ID = 2_000_000
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_YEAR_SUFFIX = re.compile(r"^(?P<stem>.+)-(?P<year>18[89]\d|19\d\d|20[0-3]\d)$")

# Builds a SiteEntry from a (slug, rating, liked) tuple without a Python-level call.
_new_entry = partial(tuple.__new__, SiteEntry)


class SiteData:
    """Films and members of the simulated site.

    `users` is ordered: it is the popularity order of /members/popular/ and each
    list is the order of that member's films grid. Change the data while it is being
    served only through the methods, which hold the lock.
    """

    def __init__(self, films: Iterable[SiteFilm] = (),
                 users: dict[str, Iterable[SiteEntry]] | None = None,
                 display_names: dict[str, str] | None = None,
                 watchlists: dict[str, Iterable[str]] | None = None) -> None:
        self._lock = threading.RLock()
        self.films: dict[str, SiteFilm] = {}
        self._used_ids: set[int] = set()
        self._used_lids: set[str] = set()
        for film in films:
            self._add_film(film)
        self.users: dict[str, list[SiteEntry]] = {}
        self.display_names: dict[str, str] = {}
        self.watchlists: dict[str, list[str]] = {}
        self._rating_stats: dict[str, tuple[int, int]] | None = None
        for username, entries in (users or {}).items():
            self._put_user(username, entries, (display_names or {}).get(username),
                           (watchlists or {}).get(username, ()), position=None)

    # --- building -----------------------------------------------------------

    @classmethod
    def from_ratings_csv(cls, path: str | Path,
                         movies_path: str | Path | None = None) -> "SiteData":
        """Load `user_id,movie_id,rating_val` (username, slug, 1..10); `.gz` is fine.

        Members are ordered by number of ratings (most first, ties by username); each
        grid keeps the file's order. Film metadata comes from `movies_path`
        (`movie_id,movie_title,year_released,genres`) where given, else from the slug.
        A repeated (user, film) pair keeps its last rating.
        """
        ratings = pd.read_csv(path, usecols=["user_id", "movie_id", "rating_val"],
                              dtype={"user_id": str, "movie_id": str}, keep_default_na=False)
        # Work on integer codes: validating and lowercasing 500k strings one by one is slow.
        raw_codes, raw_names = pd.factorize(ratings["user_id"])
        user_codes, unique_users = pd.factorize(np.array([name.lower() for name in raw_names],
                                                         dtype=object))
        user_codes = user_codes[raw_codes] if len(raw_codes) else raw_codes
        usernames = [str(name) for name in unique_users]
        slug_codes, unique_slugs = pd.factorize(ratings["movie_id"])
        _require_names(pd.Series(usernames, dtype=object), USERNAME_PATTERN, "username", path)
        _require_names(pd.Series(unique_slugs, dtype=object), SLUG_PATTERN, "film slug", path)
        values = pd.to_numeric(ratings["rating_val"], errors="coerce").to_numpy(dtype=float)
        if np.isnan(values).any() or ((values < 1) | (values > 10) | (values % 1 != 0)).any():
            raise ValueError(f"{path}: rating_val must be whole numbers from 1 to 10")
        stars = values.astype(np.int64)

        pair_keys = user_codes.astype(np.int64) * max(1, len(unique_slugs)) + slug_codes
        _, last_of_pair = np.unique(pair_keys[::-1], return_index=True)
        if len(last_of_pair) < len(pair_keys):
            keep = np.sort(len(pair_keys) - 1 - last_of_pair)
            user_codes, slug_codes, stars = user_codes[keep], slug_codes[keep], stars[keep]

        films = _films_from_movies_csv(movies_path) if movies_path is not None else {}
        for slug in unique_slugs:
            films.setdefault(str(slug), None)
        data = cls()
        data._add_films_in_slug_order(films)

        counts = np.bincount(user_codes, minlength=len(usernames))
        ends = np.cumsum(counts)
        grouped = np.argsort(user_codes, kind="stable")
        slug_objects = np.asarray(unique_slugs, dtype=object)[slug_codes[grouped]].tolist()
        star_values = stars[grouped].tolist()
        for index in sorted(range(len(usernames)), key=lambda i: (-counts[i], usernames[i])):
            start, end = int(ends[index] - counts[index]), int(ends[index])
            username = usernames[index]
            data.users[username] = list(map(_new_entry, zip(slug_objects[start:end],
                                                            star_values[start:end],
                                                            repeat(False))))
            data.display_names[username] = username
            data.watchlists[username] = []
        return data

    @classmethod
    def generate(cls, seed: int = 0, n_users: int = 100, n_films: int = 400, *,
                 min_watched: int = 5, max_watched: int = 300,
                 unrated_fraction: float = 0.08, liked_fraction: float = 0.12) -> "SiteData":
        """Synthetic but realistic data, identical for the same arguments.

        Film popularity is heavy-tailed; ratings lean high (mean about 7 half-stars);
        a few films have no year; some titles hold commas, quotes, `&`, `<`, non-ASCII
        and one starts with `=`. Members are in popularity order (most films first).
        """
        if n_users < 0 or n_films < 1 or not 0 <= min_watched <= max_watched:
            raise ValueError("need n_users >= 0, n_films >= 1 and 0 <= min_watched <= max_watched")
        rng = random.Random(seed)
        data = cls()
        films = generate_films(rng, n_films)
        data._add_films_in_slug_order({film.slug: film for film in films})
        members = generate_members(rng, [film.slug for film in films], n_users,
                                   min_watched=min_watched, max_watched=max_watched,
                                   unrated_fraction=unrated_fraction,
                                   liked_fraction=liked_fraction)
        for username, entries, display_name, watchlist in members:
            data._put_user(username, entries, display_name, watchlist, position=None)
        return data

    # --- changes while serving ------------------------------------------------

    def set_rating(self, username: str, slug: str, rating: int | None, *,
                   liked: bool | None = None) -> None:
        """Rate (or un-rate) a film; a film new to the member goes first on their grid."""
        if rating is not None and not 1 <= rating <= 10:
            raise ValueError(f"rating must be 1..10 or None, got {rating}")
        with self._lock:
            entries = self._entries(username)
            if slug not in self.films:
                self._add_film(self._derived_film(validate_slug(slug), None))
            for index, entry in enumerate(entries):
                if entry.slug == slug:
                    entries[index] = SiteEntry(slug, rating,
                                               entry.liked if liked is None else liked)
                    self._count_rating(slug, entry.rating, -1)
                    break
            else:
                entries.insert(0, SiteEntry(slug, rating, bool(liked)))
            self._count_rating(slug, rating, +1)

    def remove_entry(self, username: str, slug: str) -> None:
        with self._lock:
            entries = self._entries(username)
            removed = [entry for entry in entries if entry.slug == slug]
            if not removed:
                raise KeyError(f"{username} has no entry for {slug}")
            entries[:] = [entry for entry in entries if entry.slug != slug]
            for entry in removed:
                self._count_rating(slug, entry.rating, -1)

    def add_user(self, username: str, entries: Iterable[SiteEntry] = (), *,
                 display_name: str | None = None, watchlist: Iterable[str] = (),
                 position: int | None = None) -> str:
        """Add a member at `position` in the popularity order (default: last)."""
        with self._lock:
            name = validate_username(username)
            if name in self.users:
                raise ValueError(f"user {name} already exists")
            self._put_user(name, entries, display_name, watchlist, position)
            return name

    def remove_user(self, username: str) -> None:
        with self._lock:
            name = username.lower()
            if name not in self.users:
                raise KeyError(username)
            for entry in self.users.pop(name):
                self._count_rating(entry.slug, entry.rating, -1)
            self.display_names.pop(name, None)
            self.watchlists.pop(name, None)

    # --- reads for the server and for tests ------------------------------------

    def film(self, slug: str) -> SiteFilm | None:
        with self._lock:
            return self.films.get(slug)

    def has_user(self, username: str) -> bool:
        with self._lock:
            return username.lower() in self.users

    def display_name(self, username: str) -> str:
        with self._lock:
            name = username.lower()
            return self.display_names.get(name, name)

    def members_page(self, page: int, per_page: int) -> tuple[list[MemberRow], bool]:
        """Rows of one popular-members page and whether a next page exists."""
        with self._lock:
            names = list(self.users)
            start = (page - 1) * per_page
            rows = [MemberRow(name, self.display_names.get(name, name), len(self.users[name]),
                              sum(1 for entry in self.users[name] if entry.liked))
                    for name in names[start:start + per_page]]
            return rows, start + per_page < len(names)

    def films_page(self, username: str, page: int, per_page: int) -> GridPage | None:
        with self._lock:
            entries = self.users.get(username.lower())
            if entries is None:
                return None
            start = (page - 1) * per_page
            tiles = [(self.films[entry.slug], entry) for entry in entries[start:start + per_page]]
            return GridPage(tiles, len(entries))

    def watchlist_page(self, username: str, page: int, per_page: int) -> GridPage | None:
        with self._lock:
            name = username.lower()
            if name not in self.users:
                return None
            slugs = self.watchlists.get(name, [])
            start = (page - 1) * per_page
            tiles = [(self.films[slug], SiteEntry(slug, None, False))
                     for slug in slugs[start:start + per_page]]
            return GridPage(tiles, len(slugs))

    def rating_stats(self, slug: str) -> tuple[int, float | None]:
        """(number of ratings, mean rating in half-stars) across all members."""
        with self._lock:
            if self._rating_stats is None:
                totals: dict[str, tuple[int, int]] = {}
                for entries in self.users.values():
                    for entry in entries:
                        if entry.rating is not None:
                            count, total = totals.get(entry.slug, (0, 0))
                            totals[entry.slug] = (count + 1, total + entry.rating)
                self._rating_stats = totals
            count, total = self._rating_stats.get(slug, (0, 0))
            return count, (total / count if count else None)

    def entries(self, username: str) -> list[SiteEntry]:
        with self._lock:
            return list(self._entries(username))

    def rating_triples(self) -> set[tuple[str, str, int]]:
        """Every (username, slug, rating) the site shows: what a full scrape must find."""
        with self._lock:
            return {(name, entry.slug, entry.rating) for name, entries in self.users.items()
                    for entry in entries if entry.rating is not None}

    # --- internals ---------------------------------------------------------------

    def _entries(self, username: str) -> list[SiteEntry]:
        entries = self.users.get(username.lower())
        if entries is None:
            raise KeyError(f"no such user: {username}")
        return entries

    def _count_rating(self, slug: str, rating: int | None, sign: int) -> None:
        """Keep the cached per-film totals right without a full recount."""
        if self._rating_stats is None or rating is None:
            return
        count, total = self._rating_stats.get(slug, (0, 0))
        self._rating_stats[slug] = (count + sign, total + sign * rating)

    def _put_user(self, username: str, entries: Iterable[SiteEntry], display_name: str | None,
                  watchlist: Iterable[str], position: int | None) -> None:
        name = username.lower()
        entry_list = [SiteEntry(*entry) for entry in entries]
        if any(entry.rating is not None and not 1 <= entry.rating <= 10 for entry in entry_list):
            raise ValueError(f"{name}: ratings must be 1..10 or None")
        watch_list = list(watchlist)
        for slug in [entry.slug for entry in entry_list] + watch_list:
            if slug not in self.films:
                self._add_film(self._derived_film(validate_slug(slug), None))
        if position is None or position >= len(self.users):
            self.users[name] = entry_list
        else:
            ordered = list(self.users.items())
            ordered.insert(max(0, position), (name, entry_list))
            self.users = dict(ordered)
        self.display_names[name] = display_name or name
        self.watchlists[name] = watch_list
        for entry in entry_list:
            self._count_rating(entry.slug, entry.rating, +1)

    def _add_films_in_slug_order(self, films: dict[str, SiteFilm | None]) -> None:
        """Add films, deriving what is missing; sorted so derived ids never depend on file order."""
        for slug in sorted(films):
            given = films[slug]
            if given is None or not given.letterboxd_id or not given.lid:
                given = self._derived_film(slug, given)
            self._add_film(given)

    def _add_film(self, film: SiteFilm) -> None:
        if film.slug in self.films:
            raise ValueError(f"film {film.slug} defined twice")
        if film.letterboxd_id in self._used_ids or film.lid in self._used_lids:
            raise ValueError(f"film {film.slug}: id {film.letterboxd_id} or lid {film.lid} taken")
        self.films[film.slug] = film
        self._used_ids.add(film.letterboxd_id)
        self._used_lids.add(film.lid)

    def _derived_film(self, slug: str, partial: SiteFilm | None) -> SiteFilm:
        """`partial` (or a film made up from the slug) with a free id and a lid hashed from
        the slug."""
        digest = _slug_digest(slug)
        film_id = 1 + digest % MAX_FILM_ID
        while film_id in self._used_ids:
            film_id = film_id % MAX_FILM_ID + 1
        lid = _unused_lid(digest >> 32, self._used_lids)
        if partial is None:
            title, year = _title_and_year_from_slug(slug)
            return with_made_up_details(SiteFilm(slug, title, year, film_id, lid, (),
                                                 *_external_ids(slug)))
        return dataclasses.replace(partial, letterboxd_id=film_id, lid=lid)


def _slug_digest(slug: str) -> int:
    return int.from_bytes(hashlib.blake2b(slug.encode(), digest_size=16).digest(), "big")


def _external_ids(slug: str) -> tuple[int, str]:
    """Made-up but stable TMDB and IMDb ids for a film known only by its slug."""
    digest = _slug_digest(slug)
    return 1 + (digest >> 80) % 1_500_000, f"tt{(digest >> 100) % 10_000_000:07d}"


def _title_and_year_from_slug(slug: str) -> tuple[str, int | None]:
    match = _YEAR_SUFFIX.match(slug)
    stem, year = (match["stem"], int(match["year"])) if match else (slug, None)
    return " ".join(word[:1].upper() + word[1:] for word in stem.split("-")), year


def _unused_lid(number: int, used: set[str]) -> str:
    """4 to 6 base-62 characters, like the `boxd.it` short links."""
    text = _base62(number)
    for length in (4, 5, 6):
        if text[:length] not in used:
            return text[:length]
    while text in used:
        number += 1
        text = _base62(number)
    return text


def _base62(number: int, length: int = 6) -> str:
    digits = []
    for _ in range(length):
        number, remainder = divmod(number, 62)
        digits.append(_BASE62[remainder])
    return "".join(digits)


def _films_from_movies_csv(path: str | Path) -> dict[str, SiteFilm | None]:
    movies = pd.read_csv(path, usecols=lambda column: column in
                         {"movie_id", "movie_title", "year_released", "genres", "runtime",
                          "original_language", "content_type"},
                         dtype={"movie_id": str, "movie_title": str, "genres": str,
                                "original_language": str, "content_type": str})
    if "movie_id" not in movies.columns:
        raise ValueError(f"{path}: no movie_id column")
    _require_names(movies["movie_id"], SLUG_PATTERN, "film slug", path)
    films: dict[str, SiteFilm | None] = {}
    columns = {name: movies[name].tolist() if name in movies.columns else [None] * len(movies)
               for name in ("movie_id", "movie_title", "year_released", "genres", "runtime",
                            "original_language", "content_type")}
    for slug, title, year, genres, runtime, language, content_type in zip(*columns.values()):
        derived_title, derived_year = _title_and_year_from_slug(slug)
        has_year = isinstance(year, (int, float)) and not pd.isna(year)
        tmdb_id, imdb_id = _external_ids(slug)
        films[slug] = SiteFilm(
            slug=slug,
            title=title if isinstance(title, str) and title else derived_title,
            year=int(year) if has_year else derived_year,
            letterboxd_id=0, lid="",  # assigned when added, so ids stay unique
            genres=tuple(genres.split("|")) if isinstance(genres, str) and genres else (),
            tmdb_id=tmdb_id, imdb_id=imdb_id,
            runtime=int(runtime) if isinstance(runtime, float) and runtime > 0 else None,
            language=_language_name(language),
            content_type="tv" if content_type == "tv" else "film")
        films[slug] = with_made_up_details(films[slug])
    return films


def _language_name(code: object) -> str | None:
    """The name the site writes for an ISO 639-1 code ("ja" -> "Japanese")."""
    if not isinstance(code, str) or not code:
        return None
    language = pycountry.languages.get(alpha_2=code)
    return language.name if language is not None else None


def _require_names(values: pd.Series, pattern: str, what: str, path: object) -> None:
    bad = values[~values.astype(str).str.fullmatch(pattern)]
    if len(bad):
        raise ValueError(f"{path}: {len(bad)} invalid {what}s, first {bad.iloc[0]!r}")
