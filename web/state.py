"""What the server keeps between requests: the model in memory, and the people loaded.

The CLI loads the cached model on each run; the server loads it once and again only
when the dataset's fingerprint changes, so a page answers from memory. A person's taste
(their ratings matched to the dataset) is kept under a random token, so changing a
filter re-ranks without reading an export or a profile again.
"""
from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar, cast

from flask import current_app

from config import Config
from dataset.loading import dataset_fingerprint
from recommender.cache import CachedModel, load_or_fit
from recommending.taste import UserTaste
from web.jobs import JobBoard

# People kept at once, the least recently used forgotten first (a taste is a few
# arrays of film ids: a few hundred KB at most).
KEPT_PEOPLE = 64
EXTENSION = "letterboxd"
FigureT = TypeVar("FigureT")


class ModelHolder:
    """The dataset's model, loaded (or fitted) once and shared by every request."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._lock = threading.Lock()  # one load or fit at a time; readers never wait on it
        self._model: CachedModel | None = None

    def current(self, *, refit: bool = False) -> CachedModel:
        """The model of the dataset as it is now: from memory when unchanged, else loaded
        from the cache next to it, else fitted (the slow path a job runs)."""
        with self._lock:
            model = self._model
            if refit or model is None or model.fingerprint != dataset_fingerprint(self.data_dir):
                model = load_or_fit(self.data_dir, refit=refit)
                self._model = model
            return model

    def loaded(self) -> CachedModel | None:
        """The model in memory, if any, whether or not the dataset changed since."""
        return self._model

    def adopt(self, model: CachedModel) -> None:
        """Keep a model another function refitted (a damaged cache found on the way),
        unless it is of the dataset as it was: a job that read a profile while the
        dataset changed must not put the older model back."""
        with self._lock:
            if model.fingerprint == dataset_fingerprint(self.data_dir):
                self._model = model

    def dataset_changed(self, fingerprint: str) -> bool:
        return dataset_fingerprint(self.data_dir) != fingerprint


@dataclass(frozen=True)
class LoadedPerson:
    """A person whose taste was read, with what the page says about how."""

    token: str
    taste: UserTaste
    member: int | None     # their user id when they are a member of the dataset
    fingerprint: str       # of the dataset their film ids belong to


class People:
    """The people loaded, by token."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._people: OrderedDict[str, LoadedPerson] = OrderedDict()

    def add(self, taste: UserTaste, member: int | None, fingerprint: str) -> LoadedPerson:
        person = LoadedPerson(secrets.token_urlsafe(12), taste, member, fingerprint)
        with self._lock:
            self._people[person.token] = person
            while len(self._people) > KEPT_PEOPLE:
                self._people.popitem(last=False)
        return person

    def get(self, token: str) -> LoadedPerson | None:
        with self._lock:
            person = self._people.get(token)
            if person is not None:
                self._people.move_to_end(token)
            return person


@dataclass
class Server:
    """Everything the pages share, one per app: `server_state()` finds it."""

    config: Config
    holder: ModelHolder
    people: People
    jobs: JobBoard
    max_upload_bytes: int
    # One profile read from the site at a time: each read paces its own requests, and two
    # at once would ask the site twice as often.
    site_lock: threading.Lock = field(default_factory=threading.Lock)
    # Figures summed up once per dataset (the community's, the dataset's summary): what
    # they are -> (the dataset's fingerprint, the figures), the latest dataset's only.
    figures: dict[str, tuple[str, object]] = field(default_factory=dict)
    # One lock per kind of figure and dataset, so that two first visits make it once.
    _figure_locks: dict[tuple[str, str], threading.Lock] = field(default_factory=dict)
    _figure_locks_guard: threading.Lock = field(default_factory=threading.Lock)

    def figure(self, kind: str, fingerprint: str) -> object | None:
        kept = self.figures.get(kind)
        return kept[1] if kept is not None and kept[0] == fingerprint else None

    def remember(self, kind: str, fingerprint: str, value: object) -> None:
        self.figures[kind] = (fingerprint, value)

    def figure_once(self, kind: str, fingerprint: str, make: Callable[[], FigureT],
                    usable: Callable[[FigureT], bool] = lambda value: True) -> FigureT:
        """The figure of this kind for this dataset, made by `make` only where none is kept
        (or the one kept is not `usable`): a visit arriving while another makes it waits
        for that one instead of making it again."""
        with self._figure_locks_guard:
            lock = self._figure_locks.setdefault((kind, fingerprint), threading.Lock())
        with lock:
            kept = cast(FigureT, self.figure(kind, fingerprint))  # what `make` made before
            if kept is not None and usable(kept):
                return kept
            value = make()
            self.remember(kind, fingerprint, value)
            return value


def server_state() -> Server:
    """The shared state of the app handling the current request."""
    return current_app.extensions[EXTENSION]
