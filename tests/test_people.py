"""Wherever a person is named: a username, or the path of an export ZIP or folder."""
from __future__ import annotations

from pathlib import Path

import pytest

from errors import BadInputError, InvalidNameError
from recommending.people import ExportPath, Username, person_named


@pytest.mark.parametrize("text, username", [("alice", "alice"), ("  Bob_99 ", "bob_99"),
                                             ("x" * 15, "x" * 15)])
def test_a_word_is_a_username_in_its_canonical_form(text: str, username: str) -> None:
    assert person_named(text) == Username(username)


def test_a_text_with_a_dot_or_a_slash_is_a_path_and_must_exist(tmp_path: Path,
                                                               monkeypatch) -> None:
    export = tmp_path / "letterboxd-me-2026.zip"
    export.write_bytes(b"")
    folder = tmp_path / "unzipped"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    assert person_named(str(export)) == ExportPath(export)
    assert person_named("letterboxd-me-2026.zip") == ExportPath(Path("letterboxd-me-2026.zip"))
    assert person_named("./unzipped") == ExportPath(Path("./unzipped"))
    assert person_named("unzipped") == Username("unzipped")  # no dot, no slash: a username
    for missing in ("gone.zip", "../elsewhere", "a.b"):
        with pytest.raises(BadInputError, match=f"no export ZIP or folder at {missing}"):
            person_named(missing)


@pytest.mark.parametrize("text", ["", "has space", "sixteen_letters_", "émile", "a-b"])
def test_anything_else_is_refused_as_a_username(text: str) -> None:
    with pytest.raises(InvalidNameError, match="not a Letterboxd username"):
        person_named(text)
