"""Reading HR exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syncd.hrfeed import FeedError, read_feed

HEADER = "employee_id,email,given_name,family_name,title,company,groups,status,aliases\n"


def test_csv_rows_become_people(tmp_path: Path) -> None:
    path = tmp_path / "hr.csv"
    path.write_text(
        HEADER
        + "E1,Ann@Example.com,Ann,Lee,CTO,Acme,eng;admins,active,ann.lee@example.com\n"
        + "E2,bob@example.com,Bob,Ray,,,,terminated,\n"
    )
    feed = read_feed(path)
    assert feed.errors == []
    ann, bob = feed.people
    assert (ann.email, ann.authority_id, ann.lifecycle) == ("Ann@Example.com", "E1", "active")
    assert ann.attributes == {"title": "CTO", "company": "Acme", "groups": ["admins", "eng"]}
    assert ann.aliases == ("ann.lee@example.com",)
    assert (bob.lifecycle, bob.attributes) == ("deprovisioned", {})


def test_bad_rows_are_reported_by_line_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "hr.csv"
    path.write_text(
        HEADER
        + "E1,ann@example.com,Ann,Lee,,,,active,\n"
        + "E2,not-an-email,Bob,Ray,,,,active,\n"
        + "E3,cy@example.com,Cy,Oh,,,,retired,\n"
        + "E4,,Di,Ng,,,,active,\n"
    )
    feed = read_feed(path)
    assert [p.authority_id for p in feed.people] == ["E1"]
    assert [(e.line, e.message.split(" ")[0]) for e in feed.errors] == [
        (3, "email"),
        (4, "status"),
        (5, "email"),
    ]
    assert "must contain exactly one @" in feed.errors[0].message


def test_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "hr.jsonl"
    rows = [
        {"employee_id": "E1", "email": "ann@example.com", "groups": ["eng"], "status": "leave"},
        "not an object",
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n\n")
    feed = read_feed(path)
    [ann] = feed.people
    assert (ann.lifecycle, ann.attributes) == ("suspended", {"groups": ["eng"]})
    assert [(e.line, e.message) for e in feed.errors] == [
        (2, "not a JSON object"),
        (3, "not JSON: Expecting property name enclosed in double quotes"),
    ]


def test_a_file_without_an_email_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hr.csv"
    path.write_text("id,name\n1,Ann\n")
    with pytest.raises(FeedError, match="must name an 'email' column"):
        read_feed(path)
    with pytest.raises(FeedError, match="No such file"):
        read_feed(tmp_path / "missing.csv")
