"""Reading HR exports."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from syncd.authority.hrfeed import FeedError, read_feed

HEADER = "employee_id,email,given_name,family_name,title,company,groups,status,aliases\n"


def export(tmp_path: Path, text: str, name: str = "hr.csv") -> Path:
    """Write an HR export into the test's folder; return its path."""
    path = tmp_path / name
    path.write_text(text)
    return path


def export_bytes(tmp_path: Path, text: str, name: str) -> Path:
    """Write an export byte for byte (no newline translation); return its path."""
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def test_csv_rows_become_people(tmp_path: Path) -> None:
    path = export(
        tmp_path,
        HEADER
        + "E1,Ann@Example.com,Ann,Lee,CTO,Acme,eng;admins,active,ann.lee@example.com\n"
        + "E2,bob@example.com,Bob,Ray,,,,terminated,\n",
    )
    feed = read_feed(path)
    assert feed.errors == []
    ann, bob = feed.people
    assert (ann.email, ann.authority_id, ann.lifecycle) == ("Ann@Example.com", "E1", "active")
    assert ann.attributes == {"title": "CTO", "company": "Acme", "groups": ["admins", "eng"]}
    assert ann.aliases == ("ann.lee@example.com",)
    assert (bob.lifecycle, bob.attributes) == ("deprovisioned", {})


def test_bad_rows_are_reported_by_line_and_the_rest_kept(tmp_path: Path) -> None:
    path = export(
        tmp_path,
        HEADER
        + "E1,ann@example.com,Ann,Lee,,,,active,\n"
        + "E2,not-an-email,Bob,Ray,,,,active,\n"
        + "E3,cy@example.com,Cy,Oh,,,,retired,\n"
        + "E4,,Di,Ng,,,,active,\n",
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
    rows = [
        {"employee_id": "E1", "email": "ann@example.com", "groups": ["eng"], "status": "leave"},
        "not an object",
    ]
    lines = "\n".join(json.dumps(r) for r in rows) + "\n{broken\n\n"
    path = export(tmp_path, lines, "hr.jsonl")
    feed = read_feed(path)
    [ann] = feed.people
    assert (ann.lifecycle, ann.attributes) == ("suspended", {"groups": ["eng"]})
    assert [(e.line, e.message) for e in feed.errors] == [
        (2, "not a JSON object"),
        (3, "not JSON: Expecting property name enclosed in double quotes"),
    ]


def test_a_file_without_an_email_column_is_refused(tmp_path: Path) -> None:
    path = export(tmp_path, "id,name\n1,Ann\n")
    with pytest.raises(FeedError, match="must name an 'email' column"):
        read_feed(path)
    with pytest.raises(FeedError, match="No such file"):
        read_feed(tmp_path / "missing.csv")


def test_invalid_rows_carry_the_keys_that_name_their_person(tmp_path: Path) -> None:
    path = export(
        tmp_path,
        "employee_id,email,status\n"
        "E1,Ann@Example.com,actve\n"
        "E2,,active\n"
        ",cy@example.com,retired\n"
        "E4,di@example.com\n"  # cut short: a column missing
        "E5,not-an-email,active\n",
    )
    feed = read_feed(path)
    assert feed.people == []
    assert [(e.line, e.employee_id, e.email) for e in feed.errors] == [
        (2, "E1", "ann@example.com"),
        (3, "E2", None),
        (4, None, "cy@example.com"),
        (5, "E4", "di@example.com"),
        (6, "E5", None),
    ]
    assert "columns" in feed.errors[3].message
    assert all("example.com" not in e.message for e in feed.errors)  # logged: no emails


def test_the_feed_version_is_the_digest_of_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "hr.csv"
    path.write_bytes(HEADER.encode() + b"E1,ann@example.com,Ann,Lee,,,,active,\n")
    assert read_feed(path).digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_without_a_final_newline_is_refused_as_cut_off(tmp_path: Path) -> None:
    path = export(tmp_path, HEADER + "E1,ann@example.com,Ann,Lee,,,,active,\nE2,bob@example.co")
    with pytest.raises(FeedError, match="no newline"):
        read_feed(path)


def test_an_empty_or_latin1_file_is_refused_naming_line_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "hr.csv"
    path.write_bytes(b"")
    with pytest.raises(FeedError, match="empty"):
        read_feed(path)
    path.write_bytes(HEADER.encode() + "E1,josé@example.com,,,,,,active,\n".encode("latin-1"))
    offset = len(HEADER) + len("E1,jos")
    with pytest.raises(FeedError, match=f"not UTF-8 at line 2, byte offset {offset}"):
        read_feed(path)


def test_a_file_without_quotes_reads_as_the_csv_module_reads_it(tmp_path: Path) -> None:
    rows = (
        "E1,ann@example.com,Ann,Lee,,,,active,\n\n  \n"
        "E2,bob@example.com,Bob\nE3,c@example.com,,,,,,,,x\n"
    )
    plain = read_feed(export(tmp_path, HEADER + rows, "plain.csv"), salt="s")
    # One quoted value sends the same rows through the csv module.
    quoted = read_feed(export(tmp_path, HEADER + rows + 'E4,"d@example.com"\n', "q.csv"), salt="s")
    assert plain.hashes == quoted.hashes[: len(plain.hashes)]
    assert plain.lines == quoted.lines[: len(plain.lines)] == [2]
    assert plain.people == quoted.people[: len(plain.people)]
    assert plain.errors == quoted.errors[: len(plain.errors)]
    assert [error.line for error in plain.errors] == [4, 5, 6]
    again = read_feed(export(tmp_path, HEADER + rows, "again.csv"), set(plain.hashes), "s")
    assert (again.kept, again.people) == (dict(zip(plain.hashes, plain.lines, strict=True)), [])


def test_crlf_line_ends_read_as_the_csv_module_reads_them(tmp_path: Path) -> None:
    rows = "E1,ann@example.com,Ann,Lee,,,,active,\n\n  \nE2,bob@example.com,Bob\nE3,c@x.com\n"
    lf = read_feed(export(tmp_path, HEADER + rows, "lf.csv"), salt="s")
    crlf_text = (HEADER + rows).replace("\n", "\r\n")
    crlf = read_feed(export_bytes(tmp_path, crlf_text, "crlf.csv"), salt="s")
    quoted = read_feed(
        export_bytes(tmp_path, crlf_text + 'E4,"d@example.com"\r\n', "q.csv"), salt="s"
    )
    assert crlf.hashes == lf.hashes == quoted.hashes[: len(lf.hashes)]
    assert crlf.lines == lf.lines == quoted.lines[: len(lf.lines)]
    assert crlf.people == lf.people and [e.line for e in crlf.errors] == [4, 5, 6]
    # A carriage return that does not end a line is a line end to csv: the csv module reads it.
    lone_cr = HEADER + "E1,a@example.com,,,,,,active,\rE2,b@example.com,,,,,,active,\n"
    lone = read_feed(export_bytes(tmp_path, lone_cr, "cr.csv"))
    assert [person.email for person in lone.people] == ["a@example.com", "b@example.com"]
