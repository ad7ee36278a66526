"""Made-up but realistic films and members for the simulated site, identical for a seed.

Film popularity is heavy-tailed; ratings lean high; a few films have no year; some
titles hold commas, quotes, `&`, `<`, non-ASCII and one starts with `=`, to break
naive CSV writers, HTML templating and spreadsheets; two hold underscores, which
Letterboxd keeps in their slugs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
import re
import unicodedata

import numpy as np

from names import validate_username
from simulated_site.records import SiteEntry, SiteFilm

# Paths of the real site that a generated username must not shadow.
_RESERVED_NAMES = frozenset({"film", "films", "members", "list", "lists", "about", "search",
                             "settings", "pro", "journal", "csi", "esi", "ajax", "tmdb", "imdb"})
# Half-star weights for 1..10, shaped like real Letterboxd ratings (mean about 7.1).
_RATING_WEIGHTS = (1, 2, 3, 5, 8, 14, 20, 22, 11, 14)
_GENRES = ("Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama",
           "Family", "Fantasy", "History", "Horror", "Music", "Mystery", "Romance",
           "Science Fiction", "Thriller", "TV Movie", "War", "Western")
_ADJECTIVES = ("Silent", "Last", "Crimson", "Hidden", "Broken", "Golden", "Endless", "Quiet",
               "Wild", "Lonely", "Electric", "Frozen", "Distant", "Secret", "Burning", "Pale")
_NOUNS = ("River", "Summer", "Mirror", "Garden", "Empire", "Harbor", "Letter", "Station",
          "Forest", "Machine", "Winter", "Island", "Promise", "Shadow", "Highway", "Orchard")
# Titles that break naive CSV writers, HTML templating and spreadsheets.
_AWKWARD_TITLES = (
    "Love, Actually, Again",
    'The "Perfect" Heist',
    "Amélie’s Café",
    "=1+1 Is Two",
    "Tom & Jerry’s <Big> Night",
    "O'Brien's Road",
    "Crouching Tiger 卧虎藏龙",
    "Żółć, Sól i Pieprz",
    "Cry_Wolf",  # Letterboxd keeps underscores in slugs: /film/cry_wolf/
    "#cats_the_mewvie",
)
_SYLLABLES = ("ka", "lo", "mi", "ra", "ven", "to", "sa", "ne", "bo", "di", "jun", "el", "ar",
              "fi", "mo", "zu", "le", "na", "ty", "or")
_FIRST_NAMES = ("Anna", "Zoë", "José", "Mika", "Sam", "Léa", "Omar", "Yuki", "Björn", "Ada")


_LANGUAGES = ("English", "English", "English", "French", "Japanese", "Korean", "Spanish",
              "German", "Italian")
_COUNTRIES = ("USA", "UK", "France", "Japan", "South Korea", "Spain", "Germany", "Italy")


def with_made_up_details(film: SiteFilm) -> SiteFilm:
    """The film with a runtime, language, countries and (rarely) a series' content type,
    stable per slug and drawn from its hash, so that adding them changes no other
    random draw of the site."""
    digest = int.from_bytes(hashlib.blake2b(film.slug.encode(), digest_size=16,
                                            person=b"details").digest(), "big")
    return dataclasses.replace(
        film,
        runtime=film.runtime or 70 + digest % 110,
        language=film.language or _LANGUAGES[(digest >> 8) % len(_LANGUAGES)],
        countries=film.countries or tuple(dict.fromkeys(
            _COUNTRIES[(digest >> shift) % len(_COUNTRIES)] for shift in (16, 24)[
                :1 + (digest >> 32) % 2])),
        content_type=film.content_type if film.content_type != "film" else (
            "tv" if (digest >> 40) % 25 == 0 else "film"))


def generate_films(rng: random.Random, n_films: int) -> list[SiteFilm]:
    """Films in popularity order, awkward titles among the popular ones."""
    awkward_at = {1 + 2 * i: title for i, title in enumerate(_AWKWARD_TITLES)
                  if 1 + 2 * i < n_films}
    yearless_at = {i for i in range(n_films) if rng.random() < 0.01}
    if n_films >= 20:
        yearless_at.add(n_films // 3)
    films: list[SiteFilm] = []
    slugs: set[str] = set()
    for index in range(n_films):
        title = awkward_at.get(index) or _random_title(rng)
        year = None if index in yearless_at else max(1900, 2025 - int(abs(rng.gauss(0, 22))))
        slug = _unique_slug(_slugify(title), year, slugs)
        genres = tuple(rng.sample(_GENRES, rng.randint(1, 3)))
        tmdb_id = None if rng.random() < 0.03 else rng.randint(2, 1_400_000)
        imdb_id = None if rng.random() < 0.05 else f"tt{rng.randint(1, 9_999_999):07d}"
        films.append(with_made_up_details(SiteFilm(slug, title, year, 0, "", genres, tmdb_id,
                                                   imdb_id)))
    return films


def _random_title(rng: random.Random) -> str:
    adjective, noun, other = rng.choice(_ADJECTIVES), rng.choice(_NOUNS), rng.choice(_NOUNS)
    return rng.choice((f"The {adjective} {noun}", f"{noun} of the {other}", f"{adjective} {noun}s",
                       f"{noun}", f"A {adjective} {noun} in {rng.randint(1950, 2030)}"))


def _slugify(title: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9_]+", "-", ascii_text.lower()).strip("-") or "film"


def _unique_slug(base: str, year: int | None, taken: set[str]) -> str:
    """Letterboxd's habit: a remake gets `-YEAR`, then `-1`, `-2`..."""
    candidates = [base] + ([f"{base}-{year}"] if year is not None else [])
    candidates += [f"{base}-{n}" for n in range(1, len(taken) + 2)]
    slug = next(candidate for candidate in candidates if candidate not in taken)
    taken.add(slug)
    return slug


def _generate_usernames(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    taken: set[str] = set()
    while len(names) < count:
        stem = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        suffix = rng.choice(("", "", "_", str(rng.randint(1, 99)), f"_{rng.randint(1, 999)}"))
        name = (stem + suffix)[:15].rstrip("_") or stem[:15]
        if name in taken or name in _RESERVED_NAMES:
            continue
        taken.add(validate_username(name))
        names.append(name)
    return names


def _display_name(rng: random.Random, username: str) -> str:
    style = rng.random()
    if style < 0.4:
        return username
    if style < 0.8:
        return f"{rng.choice(_FIRST_NAMES)} {username.strip('_0123456789').title()}"
    if style < 0.9:
        return f"{rng.choice(_FIRST_NAMES)} & \"{username}\""
    return f"{rng.choice(_FIRST_NAMES)} ({username})"


def _watchlist_size(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.7:
        return rng.randint(0, 8)
    if roll < 0.9:
        return rng.randint(9, 27)
    return rng.randint(29, 60)


def _weighted_sample(rng: random.Random, population: int, cumulative: list[float],
                     count: int) -> list[int]:
    """`count` distinct indices, popular ones likelier, in draw order."""
    chosen: dict[int, None] = {}
    for _ in range(50):
        if len(chosen) >= count:
            break
        for index in rng.choices(range(population), cum_weights=cumulative, k=count):
            chosen.setdefault(index, None)
            if len(chosen) >= count:
                break
    if len(chosen) < count:
        rest = [i for i in range(population) if i not in chosen]
        for index in rng.sample(rest, count - len(chosen)):
            chosen[index] = None
    return list(chosen)


def generate_members(rng: random.Random, slugs: list[str], n_users: int, *, min_watched: int,
                     max_watched: int, unrated_fraction: float, liked_fraction: float
                     ) -> list[tuple[str, list[SiteEntry], str, list[str]]]:
    """(username, entries, display name, watchlist) per member, most films first.

    `slugs` are in popularity order: popular films are watched more, and each film
    has a hidden quality that pulls its ratings up or down.
    """
    quality = [rng.gauss(0.0, 1.0) for _ in slugs]
    cumulative = list(np.cumsum([1.0 / (rank + 1) ** 0.85 for rank in range(len(slugs))]))
    members = []
    for username in _generate_usernames(rng, n_users):
        watched_count = min(len(slugs), min_watched + int((max_watched - min_watched)
                                                          * rng.random() ** 3))
        watched = _weighted_sample(rng, len(slugs), cumulative, watched_count)
        bias = rng.gauss(0.0, 0.6)
        unrated_chance = unrated_fraction * 2 * rng.random()
        entries = []
        for film_index in watched:
            rating = None
            if rng.random() >= unrated_chance:
                drawn = rng.choices(range(1, 11), weights=_RATING_WEIGHTS)[0]
                rating = min(10, max(1, round(drawn + 0.8 * quality[film_index] + bias)))
            like_chance = liked_fraction * (2.5 if rating is not None and rating >= 9 else 0.6)
            entries.append(SiteEntry(slugs[film_index], rating, rng.random() < like_chance))
        watched_set = set(watched)
        unwatched_pool = [i for i in range(len(slugs)) if i not in watched_set]
        watchlist = [slugs[i] for i in rng.sample(unwatched_pool, min(len(unwatched_pool),
                                                                      _watchlist_size(rng)))]
        members.append((username, entries, _display_name(rng, username), watchlist))
    members.sort(key=lambda member: (-len(member[1]), member[0]))
    return members
