"""The recommendation table as a terminal shows it: within the width, aligned by display
width (wide CJK characters, combining accents), the year of every pick visible."""
from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from presentation.picks import render
from presentation.text_width import cut_to_width, display_width
from recommending.picks import Recommendation

TITLES = [
    ("A Nightmare on Elm Street 3: Dream Warriors", 1987),
    ("The Lord of the Rings: The Fellowship of the Ring (Extended Edition)", 2001),
    ("千と千尋の神隠し", 2001),
    ("花様年華 花様年華 花様年華 花様年華 花様年華 花様年華 花様年華 花様年華", 2000),
    ("Ame\u0301lie e\u0301 e\u0301 e\u0301 " + " ".join(["Ame\u0301lie"] * 4), 2001),
    ("Cache\u0301", 2005),
    ("Untitled", None),
]
REASONS = ("Halloween (1978)", "七人の侍 (1954)", "Pierrot le fou (1965)")


def pick(rank: int, title: str, year: int | None, *, rating: float = 7.0,
         because: tuple[str, ...] = REASONS, on_watchlist: bool = False) -> Recommendation:
    return Recommendation(rank=rank, slug=f"film-{rank}", title=title, year=year, lid="",
                          predicted_rating=rating, because=because, on_watchlist=on_watchlist)


def picks_of(titles: list[tuple[str, int | None]]) -> list[Recommendation]:
    return [pick(rank, title, year, on_watchlist=rank == 2)
            for rank, (title, year) in enumerate(titles, start=1)]


def rows(table: str) -> list[str]:
    """The lines of the table that are picks (after the header, before the footer)."""
    return table.splitlines()[1:-1]


def film_cell(line: str) -> str:
    """A row up to its stars: the rank and the film (a reason's year is not the pick's)."""
    return line[:line.index("★")]


def test_every_line_fits_80_columns_and_every_year_shows() -> None:
    picks = picks_of(TITLES * 8)  # 56 picks: two-digit ranks
    table = render(picks, "table", width=80, own_average=3.2)
    assert max(display_width(line) for line in table.splitlines()) <= 80
    for line, film in zip(rows(table), picks):
        assert line.lstrip().startswith(f"{film.rank}.")
        if film.year:
            assert film_cell(line).rstrip().endswith(f"({film.year})")


def test_columns_line_up_by_display_width() -> None:
    """The stars column starts at the same terminal column on every row, whatever the
    script of the title before it."""
    table = render(picks_of(TITLES), "table", width=80)
    starts = {display_width(line[:line.index("★")]) for line in rows(table)}
    assert len(starts) == 1
    assert display_width(table.splitlines()[0][:table.splitlines()[0].index("Stars")]) \
        == starts.pop()


def test_the_title_is_cut_never_the_year() -> None:
    table = render(picks_of(TITLES[:1]), "table", width=80)
    assert "A Nightmare on Elm Street" in table and "… (1987)" in table


def test_a_wider_terminal_gets_more_of_each_title_and_wide_gets_all() -> None:
    picks = picks_of(TITLES)
    narrow, wider = render(picks, "table", width=80), render(picks, "table", width=120)
    assert max(display_width(line) for line in wider.splitlines()) <= 120
    assert "Dream Warriors (1987)" in wider and "Dream Warriors" not in narrow
    wide = render(picks, "table", width=None)
    for title, _ in TITLES:
        assert title in wide
    assert all("; ".join(REASONS) in line for line in rows(wide))


def test_the_footer_says_what_order_and_stars_mean_with_the_users_average() -> None:
    footer = render(picks_of(TITLES), "table", width=80, own_average=2.25).splitlines()[-1]
    assert "not stars" in footer and "★ = the rating we predict" in footer
    assert "your average: 2.2★" in footer or "your average: 2.3★" in footer
    assert "average" not in render(picks_of(TITLES), "table", width=80).splitlines()[-1]


def test_csv_carries_the_predicted_rating_beside_the_stars() -> None:
    table = render([pick(1, "Caché", 2005, rating=7.26), pick(2, "Heat", 1995, rating=9.04)],
                   "csv")
    rows_read = list(csv.DictReader(io.StringIO(table)))
    assert [(row["predicted_stars"], row["predicted_rating"]) for row in rows_read] == \
        [("3.5", "7.3"), ("4.5", "9.0")]
    header = table.splitlines()[0].split(",")
    assert header.index("predicted_rating") == header.index("predicted_stars") + 1


def test_cutting_keeps_accents_with_their_letters_and_wide_characters_whole() -> None:
    assert cut_to_width("e\u0301e\u0301e\u0301e\u0301", 3) == "e\u0301e\u0301…"
    assert cut_to_width("千と千尋", 6) == "千と…"
    assert cut_to_width("千と千尋", 4) == "千…"  # half of 千 cannot be drawn
    assert display_width(cut_to_width("千と千尋の神隠し", 7)) <= 7


TITLE_TEXT = st.text(
    alphabet=st.sampled_from(list("abcdefghij XYZ:-'") + ["\u0301", "\u0308"]
                             + list("千と尋の神隠し花様年華") + list("가나다")),
    min_size=1, max_size=90).filter(lambda text: text.strip() and display_width(text) > 0)


@settings(max_examples=150, deadline=None)
@given(titles=st.lists(st.tuples(TITLE_TEXT, st.integers(1900, 2030)), min_size=1,
                       max_size=12),
       width=st.integers(50, 160))
def test_any_titles_fit_any_width_with_their_years(titles: list[tuple[str, int]],
                                                   width: int) -> None:
    table = render(picks_of(titles), "table", width=width, own_average=4.0)
    assert max(display_width(line) for line in table.splitlines()) <= width
    for line, (_, year) in zip(rows(table), titles):
        assert film_cell(line).rstrip().endswith(f"({year})")
