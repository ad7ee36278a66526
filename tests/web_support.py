"""What the web page's tests share: a small imported dataset with film metadata and a
hostile title, an export ZIP of someone outside it, and the page on a real server."""
from __future__ import annotations

import csv
import io
import threading
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import requests

from config import Config
from simulated_site import SiteData
from simulated_site.records import SiteEntry, SiteFilm
from web.app import WebSettings, close_app, create_app
from web.server import ServeOptions, make_server
from web.state import EXTENSION, Server

N_FILMS = 60
N_USERS = 50
HOSTILE = 7  # the film whose title tries to run a script
HOSTILE_TITLE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">Night'
FIRST_YEAR = 1960  # film i came out in FIRST_YEAR + i


def title_of(index: int) -> str:
    return HOSTILE_TITLE if index == HOSTILE else f"Film {index}"


def year_of(index: int) -> int:
    return FIRST_YEAR + index


def write_published_dataset(folder: Path) -> tuple[Path, Path]:
    """A ratings file and a movies file in the published (Kaggle) layout: two tastes,
    horror (even films) and comedy (odd films); popularity falls off with the index."""
    rng = np.random.default_rng(17)
    popularity = 1.0 / (1 + np.arange(N_FILMS)) ** 0.5
    lines = ["user_id,movie_id,rating_val"]
    for user in range(N_USERS):
        taste = user % 2
        weights = popularity * np.where(np.arange(N_FILMS) % 2 == taste, 4.0, 1.0)
        for index in rng.choice(N_FILMS, size=25, replace=False, p=weights / weights.sum()):
            loved = index % 2 == taste
            rating = int(np.clip(round(rng.normal(8.5 if loved else 3.5, 1.0)), 1, 10))
            lines.append(f"u{user},film-{index},{rating}")
    ratings = folder / "ratings.csv"
    ratings.write_text("\n".join(lines) + "\n")
    movies = folder / "movies.csv"
    with movies.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["movie_id", "movie_title", "year_released", "genres"])
        for index in range(N_FILMS):
            writer.writerow([f"film-{index}", title_of(index), year_of(index),
                             "Horror" if index % 2 == 0 else "Comedy"])
    return ratings, movies


def build_dataset(folder: Path) -> Path:
    from load_save_and_translate_data import import_published_dataset

    folder.mkdir(parents=True, exist_ok=True)
    ratings, movies = write_published_dataset(folder)
    data_dir = folder / "data"
    import_published_dataset(ratings, data_dir, movies_path=movies)
    return data_dir


# The export's person loves horror: the films they rated, and one only watched.
EXPORT_RATED = {index: 4.5 for index in range(10, 34, 2)} | {index: 1.5 for index in (11, 13, 15)}
EXPORT_WATCHED = (40,)


def export_zip(path: Path) -> Path:
    """A Letterboxd export of someone outside the dataset, as Letterboxd writes it."""
    def rows(indices, rated: bool) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(["Date", "Name", "Year", "Letterboxd URI"] + (["Rating"] if rated else []))
        for index in indices:
            writer.writerow(["2026-01-01", title_of(index), year_of(index),
                             f"https://letterboxd.com/film/film-{index}/"]
                            + ([f"{EXPORT_RATED[index]:g}"] if rated else []))
        return buffer.getvalue()

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ratings.csv", rows(EXPORT_RATED, rated=True))
        archive.writestr("watched.csv", rows([*EXPORT_RATED, *EXPORT_WATCHED], rated=False))
    return path


def film_index(title: str) -> int:
    """The index of a film of this dataset by the title the page shows."""
    return HOSTILE if title == HOSTILE_TITLE else int(title.removeprefix("Film "))


@dataclass(frozen=True)
class RunningPage:
    url: str
    state: Server  # what the app's pages share

    def session(self) -> requests.Session:
        """A client that closes each connection: the server stops at once at the end
        (it waits for open connections to go)."""
        session = requests.Session()
        session.headers["Connection"] = "close"
        return session


@contextmanager
def running_page(data_dir: Path, *, max_upload_bytes: int | None = None,
                 config: Config | None = None) -> Iterator[RunningPage]:
    """The page served as `recommend.py --serve` serves it, on a free port."""
    config = config or Config(output_dir=data_dir)
    app = create_app(WebSettings(config=config, **({"max_upload_bytes": max_upload_bytes}
                                                   if max_upload_bytes else {})))
    server = make_server(app, ServeOptions(port=0))
    stopping = threading.Event()

    def run() -> None:
        try:
            server.run()
        except OSError:  # its select() saw the sockets `close` shut from this thread
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield RunningPage(f"http://127.0.0.1:{server.effective_port}", app.extensions[EXTENSION])
    finally:
        stopping.set()
        server.close()
        thread.join(5)
        close_app(app)


OUTSIDER = "outsider"  # on the simulated site, not in the dataset: loves horror


def outsider_site() -> SiteData:
    """A simulated site with the dataset's films and one member outside the dataset."""
    films = [SiteFilm(slug=f"film-{index}", title=title_of(index), year=year_of(index),
                      letterboxd_id=1000 + index, lid=f"L{index:03d}")
             for index in range(N_FILMS)]
    entries = [SiteEntry(f"film-{index}", 9 if index % 2 == 0 else 3)
               for index in range(12, 36)]
    return SiteData(films=films, users={OUTSIDER: entries})
