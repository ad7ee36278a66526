"""Write a synthetic ratings dataset in the store's own on-disk layout, fast.

The benchmarks need datasets of up to 20M ratings; building them through
`DatasetStore.commit_batch` one user at a time would take hours, so this writes
the same bytes directly with vectorised numpy: the update log, user and film
mappings, raw and translated ratings, the watched-unrated file and
`dataset_state.json` with the committed byte sizes. The result is what a
builder would have written had it committed the same users in batches of 50
(ids in order of first appearance, one block per user, rated films before
unrated ones); the smoke test checks that byte for byte at a tiny size. Only
the per-batch backup copies under backups/ are not written (nothing reads them).

The data is shaped like Letterboxd's: Zipf-like film popularity (with a thin
uniform floor so the long tail is reachable), log-normal ratings per user
(tens to thousands), the half-star histogram of the shared 500k sample, about
1% private profiles, some watched-but-unrated films, and a low-rank taste
structure so a recommender has something to learn.

    python benchmarks/generate_dataset.py --ratings 1000000 --seed 0 --out DIR
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dataset import layout  # noqa: E402
from dataset.token_rows import TokenRowWriter, Tokens  # noqa: E402

# Ratings 1..10 (half stars) in the shared 500k sample.
RATING_HISTOGRAM = np.array([6602, 11736, 12025, 30573, 36113, 81222, 88168, 120848, 57955,
                             64221], dtype=np.float64)
# Chance that a rating of 1..10 is also a like.
LIKE_PROBABILITY = np.array([0.01, 0.01, 0.01, 0.02, 0.03, 0.05, 0.10, 0.20, 0.40, 0.60])
BATCH_USERS = 50            # the builder's default batch size
MEMBERS_PER_PAGE = 30       # members listed per popular-members page
FIRST_SCRAPE = datetime(2026, 11, 1, tzinfo=timezone.utc)
MINUTES_PER_BATCH = 10
CHUNK_ROWS = 4_000_000      # rows (about) drawn and written at a time: bounds memory

_TITLE_WORDS = ("night", "river", "glass", "summer", "ghost", "city", "house", "last", "blue",
                "dream", "road", "winter", "silent", "paper", "heart", "storm", "golden", "dark",
                "little", "wild", "secret", "long", "broken", "lost", "iron", "red", "moon",
                "garden", "stranger", "echo", "fire", "north", "hollow", "velvet", "quiet",
                "burning", "empty", "distant", "savage", "tender")
_USER_PREFIXES = ("film", "cine", "reel", "movie", "kino", "lb", "watch", "frame", "scene",
                  "popcorn")


@dataclass(frozen=True)
class DatasetShape:
    """Knobs of the synthetic population; defaults mimic Letterboxd."""

    ratings: int
    seed: int = 0
    films: int | None = None            # None: grows like sqrt(ratings)
    median_user_ratings: float = 150.0
    user_ratings_sigma: float = 1.0     # log-normal spread of ratings per user
    max_user_ratings: int = 5000
    min_user_ratings: int = 10
    zipf_exponent: float = 1.05
    uniform_share: float = 0.05         # popularity floor so obscure films get picked
    unrated_share: float = 0.10         # watched-unrated films, as a share of rated ones
    private_share: float = 0.01         # profiles that answered "private"
    taste_rank: int = 8

    @property
    def film_count(self) -> int:
        if self.films is not None:
            return self.films
        return max(200, int(40 * math.sqrt(self.ratings)))


@dataclass(frozen=True)
class GeneratedSummary:
    ratings: int
    unrated: int
    users: int
    films: int
    seconds: float


# --- the population ----------------------------------------------------------

def _ratings_per_user(shape: DatasetShape, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Log-normal counts, clipped to [min, cap], whose total is exactly `shape.ratings`."""
    if shape.ratings == 0:
        return np.zeros(0, np.int64)
    mean = shape.median_user_ratings * math.exp(shape.user_ratings_sigma ** 2 / 2)
    counts = np.zeros(0, np.int64)
    while counts.sum() < shape.ratings:
        more = int(shape.ratings / mean * 1.2) + 16
        draw = rng.lognormal(math.log(shape.median_user_ratings), shape.user_ratings_sigma, more)
        counts = np.concatenate([counts, np.clip(np.rint(draw), shape.min_user_ratings,
                                                 cap).astype(np.int64)])
    total = np.cumsum(counts)
    n_users = int(np.searchsorted(total, shape.ratings)) + 1
    counts = counts[:n_users]
    counts[-1] -= int(total[n_users - 1]) - shape.ratings
    return counts


def _keep_first_per_user(users: np.ndarray, films: np.ndarray, needs: np.ndarray,
                         n_films: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop repeated (user, film) draws, keep each user's first `needs[user]` films.

    Rows must come grouped by user, in draw order within a user.
    """
    key = users * n_films + films
    by_key = np.argsort(key, kind="stable")
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[by_key[1:]] != key[by_key[:-1]]
    kept = np.sort(by_key[first])
    users, films = users[kept], films[kept]
    starts = np.searchsorted(users, users, side="left")
    rank = np.arange(len(users)) - starts
    within = rank < needs[users]
    return users[within], films[within], rank[within]


def _draw_films(needs: np.ndarray, popularity: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each user's `needs[u]` distinct films, drawn by popularity, grouped by user."""
    n_films = len(popularity)
    cumulative = np.cumsum(popularity)
    cumulative /= cumulative[-1]
    done_users: list[np.ndarray] = []
    done_films: list[np.ndarray] = []
    users = np.zeros(0, np.int64)
    films = np.zeros(0, np.int64)
    short = np.flatnonzero(needs > 0)
    have = np.zeros(len(needs), np.int64)
    for _ in range(200):
        if len(short) == 0:
            break
        extra = np.ceil((needs[short] - have[short]) * 1.25).astype(np.int64) + 2
        new_users = np.repeat(short, extra)
        new_films = np.minimum(np.searchsorted(cumulative, rng.random(len(new_users))),
                               n_films - 1)
        users = np.concatenate([users, new_users])
        films = np.concatenate([films, new_films])
        order = np.argsort(users, kind="stable")
        users, films, _ = _keep_first_per_user(users[order], films[order], needs, n_films)
        have[short] = np.bincount(users, minlength=len(needs))[short]
        complete = have[users] >= needs[users]
        done_users.append(users[complete])
        done_films.append(films[complete])
        users, films = users[~complete], films[~complete]
        short = short[have[short] < needs[short]]
    if len(short):
        raise RuntimeError("film sampling did not converge; lower max_user_ratings")
    users = np.concatenate(done_users) if done_users else np.zeros(0, np.int64)
    films = np.concatenate(done_films) if done_films else np.zeros(0, np.int64)
    order = np.argsort(users, kind="stable")
    return users[order], films[order]


def _quantile_ratings(scores: np.ndarray) -> np.ndarray:
    """Ratings 1..10 in score order, with exactly the sample's histogram shape."""
    n = len(scores)
    expected = RATING_HISTOGRAM / RATING_HISTOGRAM.sum() * n
    counts = np.floor(expected).astype(np.int64)
    remainder_order = np.argsort(-(expected - counts), kind="stable")
    counts[remainder_order[:n - counts.sum()]] += 1
    ratings = np.empty(n, np.int8)
    ratings[np.argsort(scores, kind="stable")] = np.repeat(np.arange(1, 11, dtype=np.int8), counts)
    return ratings


# --- names ----------------------------------------------------------------------

def _csv_fields(fields: Sequence[object]) -> str:
    """One CSV record without its line ending, quoted exactly like the store quotes."""
    return layout.csv_bytes([fields]).decode("utf-8")[:-1]


@dataclass(frozen=True)
class _Film:
    slug: str
    lid: str
    letterboxd_id: int
    title: str
    year: int | None


def _catalogue(n: int, rng: np.random.Generator) -> list[_Film]:
    """Every film that may be drawn, by catalogue position (most popular first)."""
    words = rng.integers(0, len(_TITLE_WORDS), (n, 2))
    years = rng.integers(1920, 2027, n)
    unknown_year = rng.random(n) < 0.02
    letterboxd_ids = 1000 + 13 * rng.permutation(n) + rng.integers(0, 13, n)
    films = []
    for position in range(n):
        first, second = (_TITLE_WORDS[index] for index in words[position])
        title = f"{first.title()} {second.title()}"
        if position % 41 == 7:
            title = f"{first.title()}, {second.title()}"
        elif position % 211 == 13:
            title = f'The "{first.title()}" {second.title()}'
        elif position % 499 == 17:
            title = f"-{first.title()}-"
        year = None if unknown_year[position] else int(years[position])
        slug = (f"{first}-{second}-{position}" if year is None
                else f"{first}-{second}-{year}-{position}")
        lid = np.base_repr(int(letterboxd_ids[position]) * 7919 % 60_466_176, 36).lower()
        films.append(_Film(slug, lid, int(letterboxd_ids[position]), title, year))
    return films


def _usernames(n: int, rng: np.random.Generator) -> list[str]:
    prefixes = rng.integers(0, len(_USER_PREFIXES), n)
    return [f"{_USER_PREFIXES[prefix]}{slot}" for slot, prefix in enumerate(prefixes.tolist())]


# --- the population, then its rows chunk by chunk ---------------------------------------

@dataclass
class _Population:
    """Everything about users and films, drawn up front: O(users + films) memory."""

    n_ratings: np.ndarray     # per user (0 for private profiles)
    n_unrated: np.ndarray
    private: np.ndarray
    popularity: np.ndarray    # draw probability per catalogue film
    taste: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    films: list[_Film]        # by catalogue position
    usernames: list[str]

    @property
    def n_users(self) -> int:
        return len(self.n_ratings)


def _population(shape: DatasetShape, rng: np.random.Generator) -> _Population:
    n_catalogue = shape.film_count
    cap = max(1, min(shape.max_user_ratings, n_catalogue // 4))
    rated_counts = _ratings_per_user(shape, cap, rng)
    unrated_counts = rng.binomial(rated_counts, shape.unrated_share)
    n_private = rng.binomial(len(rated_counts), shape.private_share) if len(rated_counts) else 0
    n_users = len(rated_counts) + n_private
    private = np.zeros(n_users, dtype=bool)
    if n_private:
        private[rng.choice(n_users, n_private, replace=False)] = True
    n_ratings = np.zeros(n_users, np.int64)
    n_unrated = np.zeros(n_users, np.int64)
    n_ratings[~private] = rated_counts
    n_unrated[~private] = unrated_counts
    ranks = np.arange(n_catalogue, dtype=np.float64)
    popularity = (ranks + 2.0) ** -shape.zipf_exponent
    popularity = ((1 - shape.uniform_share) * popularity / popularity.sum()
                  + shape.uniform_share / n_catalogue)
    rank = shape.taste_rank
    taste = (rng.normal(0, 0.5, n_users).astype(np.float32),
             rng.normal(0, 0.6, n_catalogue).astype(np.float32),
             rng.normal(0, 0.9 / math.sqrt(rank), (n_users, rank)).astype(np.float32),
             rng.normal(0, 0.9 / math.sqrt(rank), (n_catalogue, rank)).astype(np.float32))
    return _Population(n_ratings=n_ratings, n_unrated=n_unrated, private=private,
                       popularity=popularity, taste=taste, films=_catalogue(n_catalogue, rng),
                       usernames=_usernames(n_users, rng))


@dataclass(frozen=True)
class _Chunk:
    """The rows of a run of consecutive users, grouped by user, rated films first."""

    users: np.ndarray       # per row
    films: np.ndarray       # catalogue position per row
    rated: np.ndarray       # bool per row
    ratings: np.ndarray     # int64 1..10 per rated row
    liked: np.ndarray       # bool per rated row


def _user_runs(population: _Population) -> list[tuple[int, int]]:
    """Consecutive users holding about CHUNK_ROWS rows each."""
    rows = np.cumsum(population.n_ratings + population.n_unrated)
    bounds = np.searchsorted(rows, np.arange(CHUNK_ROWS, int(rows[-1]) if len(rows) else 0,
                                             CHUNK_ROWS), side="right")
    edges = [0, *sorted(set(bounds.tolist()) - {0, population.n_users}), population.n_users]
    return list(zip(edges[:-1], edges[1:]))


def _chunk(population: _Population, first: int, last: int, seed: Sequence[int]) -> _Chunk:
    """Rows of users first..last-1, from a random stream of their own."""
    rng = np.random.default_rng(seed)
    needs = population.n_ratings[first:last] + population.n_unrated[first:last]
    users, films = _draw_films(needs, population.popularity, rng)
    users = users + first
    position = np.arange(len(users)) - np.searchsorted(users, users)
    rated = position < population.n_ratings[users]
    user_bias, film_bias, user_taste, film_taste = population.taste
    scores = np.empty(int(rated.sum()), np.float32)
    rated_users, rated_films = users[rated], films[rated]
    for start in range(0, len(scores), 2_000_000):
        u = rated_users[start:start + 2_000_000]
        f = rated_films[start:start + 2_000_000]
        scores[start:start + len(u)] = (user_bias[u] + film_bias[f]
                                        + np.einsum("ij,ij->i", user_taste[u], film_taste[f]))
    scores += rng.normal(0, 0.7, len(scores)).astype(np.float32)
    ratings = _quantile_ratings(scores).astype(np.int64)
    liked = rng.random(len(ratings)) < LIKE_PROBABILITY[ratings - 1]
    return _Chunk(users=users, films=films, rated=rated, ratings=ratings, liked=liked)


class _FilmIds:
    """Film ids in order of first appearance, as commit_batch assigns them."""

    def __init__(self, n_catalogue: int) -> None:
        self.id_of = np.full(n_catalogue, -1, np.int64)
        self.catalogue_of: list[np.ndarray] = []
        self.count = 0

    def assign(self, films: np.ndarray) -> np.ndarray:
        seen, first_row = np.unique(films, return_index=True)
        new = seen[np.argsort(first_row)]
        new = new[self.id_of[new] < 0]
        self.id_of[new] = np.arange(self.count, self.count + len(new))
        self.catalogue_of.append(new)
        self.count += len(new)
        return self.id_of[films]

    def catalogue_order(self) -> np.ndarray:
        return np.concatenate(self.catalogue_of) if self.catalogue_of else np.zeros(0, np.int64)


def _id_tokens(n: int) -> tuple[Tokens, Tokens]:
    """Numbers 0..n-1, each followed by a comma, and by a line end."""
    return (Tokens([f"{number}," for number in range(n)]),
            Tokens([f"{number}\n" for number in range(n)]))


def _write_rows(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> int:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        layout.write_csv_rows(handle, [header])
        layout.write_csv_rows(handle, rows)
        return handle.tell()


# --- the whole dataset -------------------------------------------------------------

def _prepare(out: Path, shape: DatasetShape) -> Path:
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists")
    staging = out.with_name(out.name + ".generating")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def generate_dataset(out: Path, *, ratings: int, seed: int = 0,
                     shape: DatasetShape | None = None) -> GeneratedSummary:
    """Write a dataset of exactly `ratings` ratings to `out`, which must not exist yet.

    Written into a sibling temp folder and renamed at the end, so an
    interrupted run never leaves something that looks like a dataset. Rows are drawn
    and written a run of users at a time, each run from a random stream of its own,
    so memory stays that of the users, the films and one run, at any size.
    """
    started = time.perf_counter()
    shape = shape or DatasetShape(ratings=ratings, seed=seed)
    staging = _prepare(out, shape)
    population = _population(shape, np.random.default_rng(shape.seed))
    n_users, catalogue = population.n_users, population.films
    film_ids = _FilmIds(len(catalogue))
    ids_then_comma, ids_then_newline = _id_tokens(max(n_users, len(catalogue), 11))
    # The translated row's parts (dataset.layout), each rendered once and then gathered.
    user_tokens = Tokens([_csv_fields(layout.translated_user_cells(name)) + ","
                          for name in population.usernames])
    film_middle = Tokens([_csv_fields(layout.translated_film_cells(film.title, film.year,
                                                                   film.slug)) + ","
                          for film in catalogue])
    verdicts = Tokens([_csv_fields(layout.translated_verdict_cells(rating, like)) + ","
                       for like in (False, True) for rating in range(1, 11)])
    film_urls = Tokens([_csv_fields(layout.translated_url_cells(film.slug)) + "\n"
                        for film in catalogue])
    names = (layout.RATINGS_FILE, layout.UNRATED_FILE, layout.TRANSLATED_FILE)
    handles = {name: open(staging / name, "wb") for name in names}
    try:
        for name, handle in handles.items():
            handle.write(layout.header_bytes(name))
        raw = TokenRowWriter(handles[layout.RATINGS_FILE],
                             [ids_then_comma, ids_then_comma, ids_then_newline])
        unrated = TokenRowWriter(handles[layout.UNRATED_FILE], [ids_then_comma, ids_then_newline])
        translated = TokenRowWriter(handles[layout.TRANSLATED_FILE],
                                    [user_tokens, film_middle, verdicts, film_urls])
        n_rated = n_unrated = 0
        for number, (first, last) in enumerate(_user_runs(population)):
            chunk = _chunk(population, first, last, (shape.seed, number))
            ids = film_ids.assign(chunk.films)
            rated_users, rated_films = chunk.users[chunk.rated], chunk.films[chunk.rated]
            raw.write([rated_users, ids[chunk.rated], chunk.ratings])
            unrated.write([chunk.users[~chunk.rated], ids[~chunk.rated]])
            translated.write([rated_users, rated_films, chunk.ratings - 1 + 10 * chunk.liked,
                              rated_films])
            n_rated += len(chunk.ratings)
            n_unrated += int((~chunk.rated).sum())
        committed = {name: handle.tell() for name, handle in handles.items()}
    finally:
        for handle in handles.values():
            handle.close()

    batch_of_user = np.arange(n_users) // BATCH_USERS
    stamps = [layout.format_time(FIRST_SCRAPE + timedelta(minutes=MINUTES_PER_BATCH * batch))
              for batch in range(int(batch_of_user[-1]) + 1 if n_users else 0)]
    usernames = population.usernames
    display_names = [name.rstrip("0123456789").title() + f" {slot}" if slot % 3 else ""
                     for slot, name in enumerate(usernames)]
    committed[layout.USER_MAPPINGS_FILE] = _write_rows(
        staging / layout.USER_MAPPINGS_FILE, layout.USERS_HEADER,
        [(user_id, name, display) for user_id, (name, display)
         in enumerate(zip(usernames, display_names))])
    committed[layout.FILM_MAPPINGS_FILE] = _write_rows(
        staging / layout.FILM_MAPPINGS_FILE, layout.FILMS_HEADER,
        [(film_id, film.slug, film.lid, film.letterboxd_id, film.title,
          "" if film.year is None else film.year, *layout.NO_FILM_METADATA)
         for film_id, film in enumerate(catalogue[position]
                                        for position in film_ids.catalogue_order())])
    committed[layout.USER_UPDATES_FILE] = _write_rows(
        staging / layout.USER_UPDATES_FILE, layout.UPDATES_HEADER,
        [(user_id, usernames[user_id], stamps[batch_of_user[user_id]],
          (layout.ScrapeStatus.PRIVATE if population.private[user_id]
           else layout.ScrapeStatus.OK).value,
          int(population.n_ratings[user_id]), int(population.n_unrated[user_id]))
         for user_id in range(n_users)])
    state = layout.DatasetState(committed={name: committed[name] for name in layout.HEADERS},
                                next_members_page=1 + math.ceil(n_users / MEMBERS_PER_PAGE),
                                batches=len(stamps))
    (staging / layout.STATE_FILE).write_bytes(state.to_bytes())
    os.replace(staging, out)
    return GeneratedSummary(ratings=n_rated, unrated=n_unrated, users=n_users,
                            films=film_ids.count, seconds=time.perf_counter() - started)


# The Kaggle layout `import` reads (see dataset/published.py).
PUBLISHED_RATINGS = "ratings_export.csv"
PUBLISHED_MOVIES = "movie_data.csv"


def generate_published(out: Path, *, ratings: int, seed: int = 0,
                       shape: DatasetShape | None = None) -> GeneratedSummary:
    """The same population's ratings as a published dataset: `ratings_export.csv`
    (user_id, movie_id, rating_val: usernames, slugs, half stars) and `movie_data.csv`
    (movie_id, movie_title, year_released) of the films rated, what `import` reads.
    Watched-unrated films and private profiles have no rows in that layout.
    """
    started = time.perf_counter()
    shape = shape or DatasetShape(ratings=ratings, seed=seed)
    staging = _prepare(out, shape)
    population = _population(shape, np.random.default_rng(shape.seed))
    catalogue = population.films
    film_ids = _FilmIds(len(catalogue))
    columns = [Tokens([f"{name}," for name in population.usernames]),
               Tokens([f"{film.slug}," for film in catalogue]),
               Tokens([f"{rating}\n" for rating in range(11)])]
    n_rated = 0
    with open(staging / PUBLISHED_RATINGS, "wb") as handle:
        handle.write(b"user_id,movie_id,rating_val\n")
        writer = TokenRowWriter(handle, columns)
        for number, (first, last) in enumerate(_user_runs(population)):
            chunk = _chunk(population, first, last, (shape.seed, number))
            film_ids.assign(chunk.films[chunk.rated])
            writer.write([chunk.users[chunk.rated], chunk.films[chunk.rated], chunk.ratings])
            n_rated += len(chunk.ratings)
    _write_rows(staging / PUBLISHED_MOVIES, ("movie_id", "movie_title", "year_released"),
                [(film.slug, film.title, "" if film.year is None else film.year)
                 for film in (catalogue[position] for position in film_ids.catalogue_order())])
    os.replace(staging, out)
    return GeneratedSummary(ratings=n_rated, unrated=0, users=int((population.n_ratings > 0).sum()),
                            films=film_ids.count, seconds=time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", type=int, default=1_000_000, help="ratings to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--films", type=int, default=None,
                        help="catalogue size (default grows like the square root of --ratings)")
    parser.add_argument("--out", type=Path, required=True, help="new folder for the dataset")
    parser.add_argument("--published", action="store_true",
                        help="write the published (Kaggle) layout that `import` reads instead")
    args = parser.parse_args(argv)
    if args.ratings < 0:
        parser.error("--ratings must not be negative")
    generate = generate_published if args.published else generate_dataset
    summary = generate(args.out, ratings=args.ratings, seed=args.seed,
                       shape=DatasetShape(ratings=args.ratings, seed=args.seed, films=args.films))
    print(f"wrote {summary.ratings:,} ratings, {summary.unrated:,} unrated, "
          f"{summary.users:,} users, {summary.films:,} films to {args.out} "
          f"in {summary.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
