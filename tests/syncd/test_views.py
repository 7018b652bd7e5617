"""The text an operator reads: ages, cells and tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from syncd.cli.views import age, cell, outbox_counts, table

NOW = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "just now"),
        (59, "59s ago"),
        (60, "1m ago"),
        (3599, "59m ago"),
        (7200, "2h ago"),
        (86400 * 3 + 5, "3d ago"),
    ],
)
def test_ages_read_in_the_largest_whole_unit(seconds: int, expected: str) -> None:
    assert age(NOW - timedelta(seconds=seconds), NOW) == expected
    assert age((NOW - timedelta(seconds=seconds)).isoformat(), NOW) == expected  # JSON form


def test_cells_have_no_reprs_and_no_control_characters() -> None:
    assert cell(None) == "-" and cell(True) == "yes" and cell(2.50) == "2.5"
    assert cell({"title": "CEO", "groups": ["a", "b"]}) == "title=CEO, groups=a, b"
    # A vendor's email with a terminal escape cannot repaint the operator's screen.
    assert cell("evil\x1b[2J@example.com") == "evil?[2J@example.com"


def test_tables_align_columns_and_right_align_numbers() -> None:
    text = table(("NAME", "COUNT"), [("a", 5), ("longer", 12)])
    assert text.splitlines() == ["NAME    COUNT", "a           5", "longer     12"]


def test_outbox_counts_read_waiting_first() -> None:
    assert outbox_counts({"done": 4, "dead": 1, "pending": 2}) == "pending 2, dead 1, done 4"
    assert outbox_counts({}) == "empty"
