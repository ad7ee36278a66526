"""The builder's open dataset: in-memory indexes and crash-safe batch saves.

A batch appends to every file, then replaces the state file: that rename is its
commit point (see dataset.layout). Opening a dataset first finishes or undoes
whatever a killed run left, then validates every committed byte before anything
new is appended.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Sequence

import numpy as np

from dataset import checks, film_table
from dataset.install import (commit_staging, finish_interrupted_install, fresh_staging,
                             install_staged)
from dataset.layout import (BACKUP_DIR, COMPACT_SUFFIX, FILM_MAPPINGS_FILE, HEADERS,
                            NO_FILM_METADATA, RATINGS_FILE, RATINGS_HEADER, STATE_FILE,
                            TRANSLATED_FILE, UNRATED_FILE, UPDATES_HEADER, USER_MAPPINGS_FILE,
                            USER_UPDATES_FILE, DatasetState, ScrapeStatus, backup_name,
                            csv_bytes, format_time, header_bytes, parse_time,
                            translated_film_cells, translated_row_from_parts,
                            translated_url_cells, translated_user_cells,
                            translated_verdict_cells, utc_now)
from dataset.loading import load_ratings_dataset
from dataset.rewrite import commit_rewrite, finish_rewrite
from dataset.upgrade import upgrade
from errors import DatasetError
from names import validate_slug, validate_username
from safe_files import (TEMP_SUFFIX, append_durably, fsync_directory, remove_stray_temp_files,
                        truncate_to, write_atomically, write_durably)

logger = logging.getLogger(__name__)

# A user whose scrapes failed this many times in a row is no longer retried.
MAX_FAILED_SCRAPES = 3


@dataclass(frozen=True, slots=True)
class ScrapedFilm:
    """One film as a user's scrape saw it: what the store keeps of it.

    `rating` is in half stars, 1..10, None when watched but unrated.
    """

    slug: str
    lid: str | None
    letterboxd_id: int | None
    title: str
    year: int | None
    rating: int | None
    liked: bool


@dataclass(frozen=True)
class UserScrapeRecord:
    """What one scrape of one user produced, ready to be saved."""

    username: str
    status: ScrapeStatus
    films: tuple[ScrapedFilm, ...] = ()
    display_name: str = ""


@dataclass(frozen=True)
class UserState:
    user_id: int
    username: str
    last_scraped: datetime
    status: ScrapeStatus
    n_ratings: int


@dataclass(frozen=True)
class BatchSummary:
    users_added: int
    users_refreshed: int
    ratings_written: int
    films_added: int


class DatasetStore:
    """An open dataset: the in-memory indexes the builder needs and crash-safe batch saves.

    Only one process may write a dataset at a time: the builder holds `exclusive_writer`.
    """

    def __init__(self, data_dir: Path, state: DatasetState, users: dict[str, int],
                 films: dict[str, int], log: checks.UpdateLog) -> None:
        self.data_dir = data_dir
        self._state = state
        self._user_ids = users
        self._film_ids = films
        self._latest: dict[int, UserState] = {}
        self._rows_total = int(log.n_ratings.sum())
        self._rows_live = 0
        latest = log.latest_decisive()
        # Failed scrapes of users never scraped decisively: each run retries them, a few times.
        self._failures: dict[int, int] = {}
        for user_id, status in zip(log.user_ids.tolist(), log.statuses):
            if status is ScrapeStatus.FAILED and user_id not in latest:
                self._failures[user_id] = self._failures.get(user_id, 0) + 1
        for position in latest.values():
            self._remember(UserState(
                user_id=int(log.user_ids[position]), username=log.usernames[position],
                last_scraped=parse_time(log.times[position]),
                status=log.statuses[position], n_ratings=int(log.n_ratings[position])))

    def _remember(self, state: UserState) -> None:
        previous = self._latest.get(state.user_id)
        if previous is not None and previous.status is ScrapeStatus.OK:
            self._rows_live -= previous.n_ratings
        if state.status is ScrapeStatus.OK:
            self._rows_live += state.n_ratings
        self._latest[state.user_id] = state

    # -- opening --------------------------------------------------------

    @classmethod
    def open(cls, data_dir: Path, *, create: bool = False) -> "DatasetStore":
        """Open (recovering from an interrupted run) or, with `create`, start a dataset."""
        data_dir = Path(data_dir)
        finish_interrupted_install(data_dir)
        state_path = data_dir / STATE_FILE
        if not state_path.exists():
            present = [name for name in HEADERS if (data_dir / name).exists()]
            if present and all(checks.holds_only_header(data_dir / name) for name in present):
                raise DatasetError(data_dir, "holds only the empty files of an interrupted "
                                   "`new` (no dataset_state.json); run `new` again")
            if present:
                raise DatasetError(state_path, "is missing although dataset files exist; "
                                   "restore it from a backup or start over with `new`")
            if not create:
                raise DatasetError(data_dir, "holds no dataset; start one with `new`")
            cls._create(data_dir)
        state = cls._recover(data_dir, DatasetState.read(state_path))
        # Validate the committed data before cutting or appending anything: a builder
        # must refuse a hand-edited dataset, not bury the damage under new batches.
        load_ratings_dataset(data_dir)
        cls._cut_uncommitted_tails(data_dir, state)
        state = upgrade(data_dir, state)
        return cls._load(data_dir, state)

    @staticmethod
    def _create(data_dir: Path) -> None:
        """Stage an empty dataset and move it in: a kill leaves all of it or none."""
        staging = fresh_staging(data_dir)
        committed = {}
        for name in HEADERS:
            header = header_bytes(name)
            write_durably(staging / name, header)
            committed[name] = len(header)
        commit_staging(staging, DatasetState(committed=committed))
        install_staged(data_dir)

    @staticmethod
    def _recover(data_dir: Path, state: DatasetState) -> DatasetState:
        """Finish a committed rewrite or backup; remove temporary files."""
        state = finish_rewrite(data_dir, state)
        backups = data_dir / BACKUP_DIR
        if state.pending_backup:
            pending = backups / f".{state.pending_backup}{TEMP_SUFFIX}"
            if pending.exists():
                os.replace(pending, backups / state.pending_backup)
                fsync_directory(backups)
        for stray in remove_stray_temp_files(backups) + remove_stray_temp_files(data_dir):
            logger.info("removed %s left by an interrupted run", stray.name)
        return state

    @staticmethod
    def _cut_uncommitted_tails(data_dir: Path, state: DatasetState) -> None:
        """Drop the appends of a batch that was interrupted before its commit point.

        The files were validated just before: each exists and holds its committed bytes.
        """
        for name, committed in state.committed.items():
            path = data_dir / name
            size = path.stat().st_size
            if size > committed:
                logger.warning("%s: discarding %d bytes an interrupted run did not commit",
                               name, size - committed)
                truncate_to(path, committed)

    @classmethod
    def _load(cls, data_dir: Path, state: DatasetState) -> "DatasetStore":
        usernames = checks.read_user_mappings(data_dir)["username"].tolist()
        films = film_table.read_film_mappings(data_dir)
        log = checks.read_update_log(data_dir / USER_UPDATES_FILE, usernames)
        return cls(data_dir, state,
                   users={name: index for index, name in enumerate(usernames)},
                   films={slug: index for index, slug in enumerate(films["slug"].tolist())},
                   log=log)

    # -- what the builder asks ------------------------------------------

    @property
    def next_members_page(self) -> int:
        return self._state.next_members_page

    @property
    def user_count(self) -> int:
        return len(self._user_ids)

    @property
    def rated_user_count(self) -> int:
        """Users whose latest decisive scrape read their ratings (not private or gone)."""
        return sum(state.status is ScrapeStatus.OK for state in self._latest.values())

    @property
    def film_count(self) -> int:
        return len(self._film_ids)

    @property
    def rating_count(self) -> int:
        """Ratings that count (dead blocks of refreshed users excluded)."""
        return self._rows_live

    @property
    def dead_rating_rows(self) -> int:
        return self._rows_total - self._rows_live

    def user_state(self, username: str) -> UserState | None:
        user_id = self._user_ids.get(username.lower())
        return None if user_id is None else self._latest.get(user_id)

    def is_known(self, username: str) -> bool:
        """Scraped before with a decisive outcome (a passing failure does not count)."""
        return self.user_state(username) is not None

    def is_abandoned(self, username: str) -> bool:
        """Never read, after MAX_FAILED_SCRAPES failed scrapes: not to be queued again."""
        user_id = self._user_ids.get(username.lower())
        return (user_id is not None and user_id not in self._latest
                and self._failures.get(user_id, 0) >= MAX_FAILED_SCRAPES)

    def unfinished_users(self) -> list[str]:
        """Users whose every scrape failed, fewer than MAX_FAILED_SCRAPES times, in id order.

        Past that the failure is taken as lasting (a page always over the size limit,
        markup we cannot read): retrying it on every run would cost requests forever.
        """
        return [name for name, user_id in self._user_ids.items()
                if user_id not in self._latest
                and self._failures.get(user_id, 0) < MAX_FAILED_SCRAPES]

    @property
    def abandoned_user_count(self) -> int:
        """Users no longer retried: every one of their MAX_FAILED_SCRAPES scrapes failed."""
        return sum(1 for name in self._user_ids if self.is_abandoned(name))

    def stale_users(self, older_than: timedelta, now: datetime | None = None) -> list[str]:
        """Users whose latest scrape is older than `older_than`, oldest first."""
        cutoff = (now or utc_now()) - older_than
        stale = [state for state in self._latest.values() if state.last_scraped <= cutoff]
        stale.sort(key=lambda state: (state.last_scraped, state.user_id))
        return [state.username for state in stale]

    # -- saving -----------------------------------------------------------

    def commit_batch(self, records: Sequence[UserScrapeRecord], *,
                     next_members_page: int | None = None,
                     now: datetime | None = None) -> BatchSummary:
        """Save users in the given order; all of the batch is committed or none of it."""
        now = now or utc_now()
        stamp = format_time(now)
        new_users: list[tuple[object, ...]] = []
        new_films: list[tuple[object, ...]] = []
        ratings: list[tuple[int, int, int]] = []
        unrated: list[tuple[int, int]] = []
        translated: list[tuple[object, ...]] = []
        updates: list[tuple[object, ...]] = []
        user_ids = dict(self._user_ids)
        film_ids = dict(self._film_ids)
        users_added = users_refreshed = 0
        new_states: list[UserState] = []
        failures = dict(self._failures)

        for record in records:
            username = validate_username(record.username)
            user_id = user_ids.get(username)
            if user_id is None:
                user_id = len(user_ids)
                user_ids[username] = user_id
                new_users.append((user_id, username, record.display_name))
            if record.status is ScrapeStatus.OK:
                if self._latest.get(user_id) is None:
                    users_added += 1
                else:
                    users_refreshed += 1
            user_ratings = user_unrated = 0
            if record.status is ScrapeStatus.OK:
                user_cells = translated_user_cells(username)
                seen: set[str] = set()
                for film in record.films:
                    slug = validate_slug(film.slug)
                    if slug in seen:
                        continue
                    seen.add(slug)
                    film_id = film_ids.get(slug)
                    if film_id is None:
                        film_id = len(film_ids)
                        film_ids[slug] = film_id
                        new_films.append((
                            film_id, slug, film.lid or "",
                            "" if film.letterboxd_id is None else film.letterboxd_id,
                            film.title, "" if film.year is None else film.year,
                            *NO_FILM_METADATA))
                    if film.rating is None:
                        unrated.append((user_id, film_id))
                        user_unrated += 1
                    else:
                        ratings.append((user_id, film_id, film.rating))
                        translated.append(translated_row_from_parts(
                            user_cells, translated_film_cells(film.title, film.year, slug),
                            translated_verdict_cells(film.rating, film.liked),
                            translated_url_cells(slug)))
                        user_ratings += 1
            updates.append((user_id, username, stamp, record.status.value,
                            user_ratings, user_unrated))
            if record.status.decisive:
                new_states.append(UserState(user_id, username, now, record.status, user_ratings))
            elif user_id not in self._latest:
                failures[user_id] = failures.get(user_id, 0) + 1

        self._write_batch(ratings, {
            USER_MAPPINGS_FILE: new_users,
            FILM_MAPPINGS_FILE: new_films,
            RATINGS_FILE: ratings,
            UNRATED_FILE: unrated,
            TRANSLATED_FILE: translated,
            USER_UPDATES_FILE: updates,
        }, next_members_page, now)

        self._user_ids = user_ids
        self._film_ids = film_ids
        self._failures = failures
        self._rows_total += len(ratings)
        for state in new_states:
            self._remember(state)
        return BatchSummary(users_added=users_added, users_refreshed=users_refreshed,
                            ratings_written=len(ratings), films_added=len(new_films))

    def _write_batch(self, batch_ratings: list[tuple[int, int, int]],
                     appends: dict[str, list[tuple[object, ...]]],
                     next_members_page: int | None, now: datetime) -> None:
        state = self._state
        committed = dict(state.committed)
        backups = self.data_dir / BACKUP_DIR
        backups.mkdir(exist_ok=True)
        backup = backup_name(now, state.batches + 1)
        pending = backups / f".{backup}{TEMP_SUFFIX}"
        write_durably(pending, csv_bytes(batch_ratings, RATINGS_HEADER))
        for name, rows in appends.items():
            if rows:
                committed[name] = append_durably(self.data_dir / name, csv_bytes(rows))
        new_state = DatasetState(
            committed=committed,
            next_members_page=next_members_page or state.next_members_page,
            batches=state.batches + 1,
            pending_backup=backup)
        # The commit point: before this rename the batch does not exist, after it, it does.
        write_atomically(self.data_dir / STATE_FILE, new_state.to_bytes())
        self._state = new_state
        os.replace(pending, backups / backup)
        fsync_directory(backups)

    # -- compaction ---------------------------------------------------------

    def compact(self) -> int:
        """Rewrite the block files without dead blocks; returns the rating rows dropped.

        Costs one pass over the dataset, so the builder runs it once at the end
        of a run that refreshed users, never per batch.
        """
        dead = self.dead_rating_rows
        log = checks.read_update_log(self.data_dir / USER_UPDATES_FILE, list(self._user_ids))
        latest = log.latest_decisive()
        keep_rows = np.zeros(len(log.statuses), dtype=bool)
        keep_rows[list(latest.values())] = True
        # The failures of users never read count towards MAX_FAILED_SCRAPES: keep them.
        keep_rows |= np.array([status is ScrapeStatus.FAILED and user_id not in latest
                               for user_id, status in zip(log.user_ids.tolist(), log.statuses)],
                              dtype=bool)
        live = log.live_blocks()
        if keep_rows.sum() == len(keep_rows) and dead == 0:
            return 0
        committed = {}
        for name, counts in ((RATINGS_FILE, log.n_ratings),
                             (TRANSLATED_FILE, log.n_ratings),
                             (UNRATED_FILE, log.n_unrated)):
            committed[name] = self._compact_block_file(name, counts, live)
        kept = np.flatnonzero(keep_rows).tolist()
        data = csv_bytes(((int(log.user_ids[row]), log.usernames[row], log.times[row],
                           log.statuses[row].value, int(log.n_ratings[row]),
                           int(log.n_unrated[row])) for row in kept), UPDATES_HEADER)
        self._state = commit_rewrite(self.data_dir, self._state, {USER_UPDATES_FILE: data},
                                     written=committed)
        self._rows_total = self._rows_live
        logger.info("compacted the dataset: dropped %d replaced rating rows", dead)
        return dead

    def _compact_block_file(self, name: str, counts: np.ndarray, live: np.ndarray) -> int:
        """Copy the live blocks of a block file to its `.compact` sibling, streaming."""
        source_path = self.data_dir / name
        target_path = self.data_dir / (name + COMPACT_SUFFIX)
        size = 0
        with open(source_path, "rb") as source, open(target_path, "wb") as target:
            header = source.readline()
            target.write(header)
            size += len(header)
            for count, keep in zip(counts.tolist(), live.tolist()):
                for _ in range(count):
                    line = source.readline()
                    if not line.endswith(b"\n"):
                        raise DatasetError(source_path, "ends before the update log says it does")
                    if keep:
                        target.write(line)
                        size += len(line)
            target.flush()
            os.fsync(target.fileno())
        return size
