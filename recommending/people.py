"""Who is meant wherever a person is named: a Letterboxd username or an export's path.

A username is 1-15 letters, digits or underscores, so it never holds "." or "/";
anything that does is the path of an export ZIP or folder. The two can never be
confused, and no subcommand word is needed to tell them apart.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from config import Config
from errors import BadInputError
from names import validate_username
from recommender.cache import CachedModel
from recommending.taste import UserTaste, taste_from_export, taste_of_username

_PATH_MARKS = frozenset({".", "/", os.sep})


@dataclass(frozen=True)
class Username:
    """A validated, lower-case Letterboxd username."""

    username: str


@dataclass(frozen=True)
class ExportPath:
    """The path of an export ZIP or its unzipped folder."""

    path: Path


Person = Username | ExportPath


def person_named(text: str) -> Person:
    """The person `text` names, checked before any model is loaded or page fetched."""
    text = text.strip()
    if _PATH_MARKS.intersection(text):
        path = Path(text)
        if not path.exists():
            raise BadInputError(f"no export ZIP or folder at {text} (a name holding '.' or "
                                "'/' is read as a path; usernames have neither)")
        return ExportPath(path)
    return Username(validate_username(text))


def member_id(data: CachedModel, person: Person) -> int | None:
    """The person's user id in the dataset, when they are a member of it."""
    return data.user_id(person.username) if isinstance(person, Username) else None


def taste_of_person(data: CachedModel, person: Person, config: Config, *,
                    refresh: bool = False) -> tuple[CachedModel, UserTaste]:
    """Their taste: an export read offline, or a username through `taste_of_username`
    (stored films, else the public profile). Returns the model in use with it, as a
    damaged cache may be refitted on the way."""
    if isinstance(person, ExportPath):
        return data, taste_from_export(data, person.path)
    return taste_of_username(data, person.username, config, refresh=refresh)
