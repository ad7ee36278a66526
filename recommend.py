"""Recommend films a user has not seen, from the dataset's collaborative-filtering model.

    python recommend.py USERNAME                  # a dataset member, or anyone public (scraped live)
    python recommend.py --export letterboxd-me-2026-01-21-11-21-utc.zip   # no network at all
    python recommend.py --evaluate [RATINGS_CSV]  # quality against plain baselines

The model is fitted once on every rating of the dataset and cached next to it;
each user is folded into it in closed form, so a list takes well under a second.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd

import cli
from config import Config
from dataset.layout import spreadsheet_safe
from dataset.loading import load_ratings_dataset
from errors import BadInputError, ModelFileError, NotFoundError, PrivateError
from letterboxd_export import FilmMatcher, ListEntry, list_import_csv, read_export
from model_cache import CachedModel, load_or_fit
from letterboxd.urls import LIST_IMPORT_PAGE, film_url, short_link
from names import validate_username
from recommender_model import top_items
from safe_files import write_atomically

logger = logging.getLogger("letterboxd.recommend")

@dataclass(frozen=True)
class UserTaste:
    """What we know of the user, in dataset film ids."""

    name: str
    rated_films: np.ndarray       # film ids
    ratings: np.ndarray           # 1..10, aligned with rated_films
    watched: np.ndarray           # every film seen, rated or not
    watchlist: np.ndarray | None  # None when unknown
    source_note: str


@dataclass(frozen=True)
class Recommendation:
    rank: int
    slug: str
    title: str
    year: int | None
    lid: str
    predicted_rating: float   # 1..10 scale
    because: tuple[str, ...]  # "Title (Year)" of loved films most like it
    on_watchlist: bool

    @property
    def predicted_stars(self) -> float:
        return round(self.predicted_rating) / 2

    @property
    def uri(self) -> str:
        return short_link(self.lid) if self.lid else film_url(self.slug)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="recommend.py",
        description="List the films a Letterboxd user will most likely love and has not seen.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=cli.EXIT_CODES_HELP)
    who = parser.add_argument_group("whose taste")
    who.add_argument("username", nargs="?", help="a member of the dataset, or any public "
                     "Letterboxd user (scraped live through the polite fetch layer)")
    who.add_argument("--export", type=cli.existing_path, metavar="PATH",
                     help="the user's own Letterboxd export ZIP (or its unzipped folder): "
                     "no network needed")
    who.add_argument("--refresh", action="store_true",
                     help="scrape a dataset member's ratings anew instead of using stored ones")
    pick = parser.add_argument_group("what to list")
    pick.add_argument("-n", "--top", type=int, default=50, metavar="N",
                      help="how many films (default 50)")
    pick.add_argument("--min-ratings", type=int, metavar="K",
                      help="only films with at least K ratings in the dataset")
    pick.add_argument("--max-ratings", type=int, metavar="K",
                      help="only films with at most K ratings in the dataset (obscure picks)")
    pick.add_argument("--year-from", type=int, metavar="YEAR",
                      help="only films released in YEAR or later")
    pick.add_argument("--year-to", type=int, metavar="YEAR",
                      help="only films released in YEAR or earlier")
    pick.add_argument("--genre", action="append", default=[], metavar="G",
                      help="only films of this genre (repeatable; needs genre metadata, "
                      "e.g. from an imported dataset)")
    pick.add_argument("--exclude-genre", action="append", default=[], metavar="G",
                      help="leave out films of this genre (repeatable)")
    watchlist = pick.add_mutually_exclusive_group()
    watchlist.add_argument("--watchlist-only", action="store_true",
                           help="pick only from the user's watchlist")
    watchlist.add_argument("--boost-watchlist", action="store_true",
                           help="include watchlist films and rank them higher "
                           "(by default they are left out, since you know of them)")
    out = parser.add_argument_group("output and evaluation")
    out.add_argument("--format", choices=("table", "csv", "json"), default="table")
    out.add_argument("--letterboxd-list", type=Path, metavar="FILE",
                     help="also write a CSV that Letterboxd's list import accepts")
    out.add_argument("--data-dir", type=Path, metavar="DIR",
                     help="dataset folder (default output/, or test_output/ in test mode)")
    out.add_argument("--evaluate", nargs="?", const="", metavar="RATINGS_CSV",
                     help="measure quality against baselines on the dataset, or on a ratings "
                     "file in the Kaggle layout (user_id,movie_id,rating_val)")
    out.add_argument("--seed", type=int, default=0,
                     help="seed of the evaluation split (default 0)")
    cli.add_common_arguments(parser)
    args = parser.parse_args(argv)
    chosen = sum(x is not None and x is not False for x in (args.username, args.export,
                                                            args.evaluate))
    if chosen != 1:
        parser.error("give exactly one of USERNAME, --export PATH or --evaluate")
    if args.top < 1:
        parser.error("--top must be at least 1")
    if args.year_from is not None and args.year_to is not None and args.year_from > args.year_to:
        parser.error("--year-from is after --year-to")
    if (args.min_ratings is not None and args.max_ratings is not None
            and args.min_ratings > args.max_ratings):
        parser.error("--min-ratings is above --max-ratings")
    if args.letterboxd_list is not None:
        target = args.letterboxd_list
        if target.is_dir() or not target.parent.is_dir():
            parser.error(f"--letterboxd-list: cannot write a file at {target}")
    return args


# --- whose taste --------------------------------------------------------------

def taste_from_dataset(data: CachedModel, username: str) -> UserTaste | None:
    """The stored films of a member, or None when the dataset has none of theirs (never
    scraped, or every scrape failed or found them private): the site is asked then."""
    user_id = data.user_id(username)
    if user_id is None:
        return None
    films, ratings = data.user_ratings(user_id)
    unrated = data.user_unrated(user_id)
    if not len(films) and not len(unrated):
        return None
    return UserTaste(name=username, rated_films=films, ratings=ratings,
                     watched=np.union1d(films, unrated), watchlist=None,
                     source_note=f"{len(films)} ratings stored in the dataset")


def taste_from_site(data: CachedModel, username: str, config: Config) -> UserTaste:
    # Imported here: the HTTP stack costs a tenth of a second that offline runs need not pay.
    from fetch_ratings import Fetcher
    from read_in_data import scrape_user_films, scrape_watchlist

    with Fetcher(config) as fetcher:
        scraped = scrape_user_films(fetcher, username)
        try:
            watchlist_tiles = scrape_watchlist(fetcher, username)
        except (NotFoundError, PrivateError):
            watchlist_tiles = None
    film_ids = data.film_ids_for_slugs([tile.slug for tile in scraped.films])
    ratings = np.array([tile.rating or 0 for tile in scraped.films], dtype=np.int64)
    rated = (film_ids >= 0) & (ratings > 0)
    watchlist = None
    if watchlist_tiles is not None:
        ids = data.film_ids_for_slugs([tile.slug for tile in watchlist_tiles])
        watchlist = np.unique(ids[ids >= 0])
    return UserTaste(
        name=username, rated_films=film_ids[rated], ratings=ratings[rated],
        watched=np.unique(film_ids[film_ids >= 0]), watchlist=watchlist,
        source_note=f"scraped {len(scraped.films)} films ({int((ratings > 0).sum())} rated) "
        f"from {config.base_url}; {int(rated.sum())} rated films are in the dataset")


def taste_from_export(data: CachedModel, path: Path) -> UserTaste:
    export = read_export(path)
    matcher = FilmMatcher(data.films)
    rated_ids = matcher.match_all(export.ratings)
    ratings = np.array([film.rating for film in export.ratings], dtype=np.int64)
    matched = rated_ids >= 0
    seen = [rated_ids, matcher.match_all(export.watched), matcher.match_all(export.liked)]
    watched = np.unique(np.concatenate(seen))
    watchlist = matcher.match_all(export.watchlist)
    return UserTaste(
        name=path.name, rated_films=rated_ids[matched], ratings=ratings[matched],
        watched=watched[watched >= 0], watchlist=np.unique(watchlist[watchlist >= 0]),
        source_note=f"matched {int(matched.sum())} of {len(export.ratings)} rated films "
        f"and {int((watchlist >= 0).sum())} of {len(export.watchlist)} watchlist films "
        "to the dataset")


# --- choosing -------------------------------------------------------------------

UNKNOWN_WATCHLIST = ("the dataset stores no watchlists and a private one cannot be read; add "
                     "--refresh to read it from a public profile, or use --export")


def _film_genres(films: pd.DataFrame, args: argparse.Namespace) -> pd.Series:
    """Each film's genres, lower case, once the genre flags are known to make sense here."""
    genre_text = films["genres"].fillna("")
    if not (genre_text != "").any():
        raise BadInputError("this dataset has no genre metadata; import one with genres "
                            "(e.g. movie_data.csv) to filter by genre")
    genres = genre_text.str.lower().str.split("|")
    known = set().union(*genres)
    known.discard("")
    asked = {genre.lower() for genre in (*args.genre, *args.exclude_genre)}
    if asked - known:
        raise BadInputError(f"unknown genre {sorted(asked - known)[0]!r}; "
                            f"this dataset has: {', '.join(sorted(known))}")
    return genres


def film_filter(data: CachedModel, args: argparse.Namespace) -> np.ndarray:
    """The films the filter flags allow, whoever asks: worked out before a profile is read,
    so that a mistyped genre costs no requests."""
    films = data.films
    mask = np.ones(len(films), dtype=bool)
    counts = data.rating_counts
    if args.min_ratings is not None:
        mask &= counts >= args.min_ratings
    if args.max_ratings is not None:
        mask &= counts <= args.max_ratings
    years = films["year"].to_numpy(dtype="float64", na_value=np.nan)
    if args.year_from is not None:
        mask &= years >= args.year_from
    if args.year_to is not None:
        mask &= years <= args.year_to
    if args.genre or args.exclude_genre:
        genres = _film_genres(films, args)
        wanted = {genre.lower() for genre in args.genre}
        unwanted = {genre.lower() for genre in args.exclude_genre}
        if wanted:
            mask &= genres.map(lambda names: bool(wanted.intersection(names))).to_numpy()
        if unwanted:
            mask &= ~genres.map(lambda names: bool(unwanted.intersection(names))).to_numpy()
    return mask


def candidate_mask(data: CachedModel, taste: UserTaste, args: argparse.Namespace,
                   allowed: np.ndarray) -> np.ndarray:
    """The `film_filter` films this user has not seen, with their watchlist as asked."""
    films = data.films
    mask = allowed.copy()
    mask[taste.watched] = False
    mask[taste.rated_films] = False
    if args.watchlist_only:
        if taste.watchlist is None:
            raise BadInputError(f"the watchlist of {taste.name} is not known: {UNKNOWN_WATCHLIST}")
        on_watchlist = np.zeros(len(films), dtype=bool)
        on_watchlist[taste.watchlist] = True
        mask &= on_watchlist
    elif not args.boost_watchlist and taste.watchlist is not None:
        mask[taste.watchlist] = False
    return mask


def recommend(data: CachedModel, taste: UserTaste, args: argparse.Namespace,
              allowed: np.ndarray) -> tuple[list[Recommendation], str | None]:
    """The ranked list among the `allowed` films (see `film_filter`) and, for a cold start,
    a note saying why it is popularity-based."""
    model = data.model
    profile = model.fold_in(taste.rated_films, taste.ratings, watched_items=taste.watched)
    mask = candidate_mask(data, taste, args, allowed)
    note = None
    if args.boost_watchlist and taste.watchlist is None:
        logger.warning("--boost-watchlist: the watchlist of %s is not known: %s", taste.name,
                       UNKNOWN_WATCHLIST)
    boosted = taste.watchlist if args.boost_watchlist else None
    if model.is_cold(profile):
        note = (f"only {len(taste.rated_films)} of this user's ratings match the dataset: "
                "showing the dataset's most loved films instead of personal picks")
        scores = model.popularity_scores().astype(np.float64)
        if boosted is not None and len(boosted) and mask.any():
            scores[boosted] += 2.0 * float(np.std(scores[mask]))
        scores[~mask] = -np.inf
        best = top_items(scores, args.top)
    else:
        best = model.rank(profile, args.top, allowed=mask, boosted=boosted)
    predicted = model.predict(profile, best)
    on_watchlist = set() if taste.watchlist is None else set(taste.watchlist.tolist())
    reasons = {film_id: () if note else model.explain(profile, film_id)
               for film_id in best.tolist()}
    shown = _films_shown(data.films, [*reasons, *(other for found in reasons.values()
                                                 for other in found)])
    picks = []
    for rank, (film_id, rating) in enumerate(zip(best.tolist(), predicted.tolist()), start=1):
        film = shown[film_id]
        # With the year: many films share a title, and a reason must not look like the pick.
        because = tuple(_title_and_year(shown[other].title, shown[other].year)
                        for other in reasons[film_id])
        picks.append(Recommendation(
            rank=rank, slug=film.slug, title=film.title, year=film.year, lid=film.lid,
            predicted_rating=float(rating), because=because,
            on_watchlist=film_id in on_watchlist))
    return picks, note


# --- output -----------------------------------------------------------------------

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class _ShownFilm(NamedTuple):
    title: str
    year: int | None
    slug: str
    lid: str


def _films_shown(films: pd.DataFrame, film_ids: Sequence[int]) -> dict[int, _ShownFilm]:
    """The films a list names, read from the table in one go; titles lose control
    characters (a scraped or imported title must not drive the terminal)."""
    ids = sorted(set(film_ids))
    rows = films.iloc[ids]
    return {film_id: _ShownFilm(_CONTROL_CHARACTERS.sub("", str(title)),
                                None if pd.isna(year) else int(year), slug, lid or "")
            for film_id, title, year, slug, lid in zip(
                ids, rows["title"], rows["year"], rows["slug"], rows["lid"])}


def _title_and_year(title: str, year: int | None) -> str:
    return f"{title} ({year})" if year else title


def render(picks: list[Recommendation], output_format: str) -> str:
    if output_format == "json":
        return json.dumps([{
            "rank": pick.rank, "title": pick.title, "year": pick.year, "slug": pick.slug,
            "letterboxd_uri": pick.uri, "predicted_stars": pick.predicted_stars,
            "predicted_rating": round(pick.predicted_rating, 2), "because": list(pick.because),
            "on_watchlist": pick.on_watchlist} for pick in picks], ensure_ascii=False, indent=2)
    if output_format == "csv":
        frame = pd.DataFrame([{
            "rank": pick.rank, "title": pick.title, "year": pick.year or "", "slug": pick.slug,
            "letterboxd_uri": pick.uri, "predicted_stars": pick.predicted_stars,
            "because": "; ".join(pick.because),
            "on_watchlist": "yes" if pick.on_watchlist else ""} for pick in picks],
            columns=["rank", "title", "year", "slug", "letterboxd_uri", "predicted_stars",
                     "because", "on_watchlist"])
        for column in ("title", "because"):
            frame[column] = frame[column].map(spreadsheet_safe)
        return frame.to_csv(index=False, lineterminator="\n").rstrip("\n")
    lines = []
    width = max((len(_title_and_year(pick.title, pick.year)) for pick in picks), default=10)
    width = min(width, 48)
    for pick in picks:
        name = _title_and_year(pick.title, pick.year)
        name = name if len(name) <= width else name[:width - 1] + "…"
        reason = ("because you rated " + "; ".join(pick.because) + " highly") if pick.because \
            else ""
        mark = " [watchlist]" if pick.on_watchlist else ""
        lines.append(f"{pick.rank:>3}. {name:<{width}}  {stars(pick.predicted_stars):<5} "
                     f"{reason}{mark}".rstrip())
    return "\n".join(lines)


def stars(value: float) -> str:
    whole = int(value)
    return "★" * whole + ("½" if value - whole >= 0.5 else "")


def list_entries(picks: list[Recommendation]) -> list[ListEntry]:
    return [ListEntry(uri=pick.uri, title=pick.title, year=pick.year,
                      review=f"predicted {pick.predicted_stars:g}★"
                      + (f" · because you rated {'; '.join(pick.because)} highly"
                         if pick.because else ""))
            for pick in picks]


# --- the command ----------------------------------------------------------------------

def run_evaluation(args: argparse.Namespace, config: Config) -> int:
    import evaluation  # only this path needs it

    started = time.monotonic()
    watched = None  # a published ratings file has no watched-unrated films
    if args.evaluate:
        table = evaluation.load_ratings_table(Path(args.evaluate))
    else:
        data = load_ratings_dataset(config.data_dir)
        table = (data.user_index, data.film_index, data.rating, data.n_users, data.n_films)
        watched = (data.unrated_user, data.unrated_film)
    try:
        report = evaluation.evaluate(*table, seed=args.seed, watched=watched)
    except ValueError as error:  # too few ratings or users for the protocol
        raise BadInputError(f"cannot evaluate: {error}") from None
    print(evaluation.format_report(report))
    logger.info("evaluation took %.1f s", time.monotonic() - started)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    cli.configure_logging(cli.verbosity(args))
    config = cli.config_from_args(args, output_dir=args.data_dir)
    if args.evaluate is not None:
        return run_evaluation(args, config)
    data = load_or_fit(config.data_dir)
    allowed = film_filter(data, args)
    if args.export is not None:
        taste = taste_from_export(data, args.export)
    else:
        username = validate_username(args.username.strip())
        try:
            taste = None if args.refresh else taste_from_dataset(data, username)
        except ModelFileError as damage:
            logger.warning("%s: fitting the model again", damage)
            data = load_or_fit(config.data_dir, refit=True)
            taste = taste_from_dataset(data, username)
        if taste is None:
            logger.info("no stored films of %s (or --refresh): reading their profile from %s",
                        username, config.base_url)
            try:
                taste = taste_from_site(data, username, config)
            except NotFoundError:
                raise BadInputError(f"there is no Letterboxd user {username!r}") from None
            except PrivateError:
                raise BadInputError(f"the films of {username!r} are not public") from None
    logger.info("%s: %s", taste.name, taste.source_note)
    if len(taste.watched) == 0 and len(taste.rated_films) == 0:
        raise BadInputError(f"{taste.name} has no ratings that match the dataset's films")
    picks, note = recommend(data, taste, args, allowed)
    if note:
        logger.warning("%s", note)
    if not picks:
        logger.warning("no film passes the filters")
    if picks or args.format != "table":  # an empty JSON list or CSV header still parses
        print(render(picks, args.format))
    if args.letterboxd_list is not None:
        try:
            write_atomically(args.letterboxd_list,
                             list_import_csv(list_entries(picks)).encode())
        except OSError as error:
            raise BadInputError(f"cannot write {args.letterboxd_list}: "
                                f"{error.strerror or error}") from None
        logger.info("wrote %s: import it at %s", args.letterboxd_list, LIST_IMPORT_PAGE)
    return 0


if __name__ == "__main__":
    cli.run(main)
