"""status, orphans and person as an operator reads them: real processes, a real simulator."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.syncd.test_cli_engine import syncd
from tests.syncd.test_daemon import config_text, free_port
from tests.syncd.test_engine import person, serving, write_feed

STRANGER = {
    "id": 990001,
    "email": "stranger@elsewhere.example",
    "first_name": "Sam",
    "last_name": "Stranger",
    "status": "active",
}
# The keys `status --json` has always had; scripts read them.
STATUS_KEYS = {
    "listed",
    "listing_complete",
    "accounts",
    "outbox",
    "held_reasons",
    "retrying_dead_creates",
    "dead_creates_need_operator",
    "open_conflicts",
}
AUTHORITY_KEYS = {
    "refused",
    "refused_since",
    "awaiting_approval",
    "refused_people",
    "refused_digest",
    "approved_digest",
    "applied_digest",
    "applied_at",
}


def row(text: str, first: str) -> list[str]:
    """The cells of the table row that starts with `first` (cells are two or more spaces apart)."""
    [line] = [line for line in text.splitlines() if line.startswith(first + " ")]
    return re.split(r"\s{2,}", line.strip())


async def test_status_orphans_and_person_read_as_text_and_json(tmp_path: Path) -> None:
    async with serving("influitive") as (sim, url):
        sim.add_user(dict(STRANGER))
        feed = tmp_path / "hr.csv"
        write_feed(feed, [person(i) for i in range(3)])
        config = tmp_path / "syncd.toml"
        config.write_text(config_text(tmp_path / "g.db", feed, {"influitive": url}, free_port()))
        args = ("--config", str(config))

        before = await syncd("status", *args)
        assert before.returncode == 0, before.stderr
        assert row(before.stdout, "influitive")[1] == "never listed"
        assert "no feed applied yet" in before.stdout

        once = await syncd("once", *args)
        assert once.returncode == 0, once.stderr

        status = await syncd("status", *args)
        assert status.returncode == 0 and status.stderr == ""
        header = row(status.stdout, "CONNECTOR")
        assert header == [
            "CONNECTOR",
            "LAST LISTING",
            "ACCOUNTS",
            "LINKED",
            "ORPHANS",
            "CONFLICTS",
            "OUTBOX",
            "RATE",
        ]
        cells = row(status.stdout, "influitive")
        assert re.fullmatch(r"complete (just now|\d+s ago)", cells[1]), cells
        assert cells[2:7] == ["4", "3", "1", "0", "done 3"]
        assert re.fullmatch(r"[\d.]+/s", cells[7]), cells
        assert "{" not in status.stdout and "None" not in status.stdout  # no Python reprs
        [authority] = [line for line in status.stdout.splitlines() if line.startswith("authority")]
        assert f"authority: {feed}" in authority and "people: 3 active" in authority
        assert re.search(
            r"last applied: feed [0-9a-f]{12} at .* UTC \((just now|\d+s ago)\)", authority
        )

        data = json.loads((await syncd("status", "--json", *args)).stdout)
        item = data["connectors"]["influitive"]
        assert set(item) >= STATUS_KEYS and set(data["authority"]) >= AUTHORITY_KEYS
        assert item["listed"] is True and item["listing_complete"] is True
        assert item["outbox"] == {"done": 3}
        assert item["accounts"]["orphans"] == 1 and item["problem"] is None
        assert data["authority"]["people"] == {"active": 3}

        orphans = await syncd("orphans", *args)
        assert orphans.returncode == 0, orphans.stderr
        cells = row(orphans.stdout, "influitive")
        assert cells[1:4] == ["990001", "stranger@elsewhere.example", "active"]
        assert re.fullmatch(r"just now|\d+s ago", cells[5]), cells
        assert "1 orphan account(s)" in orphans.stdout
        [found] = json.loads(
            (await syncd("orphans", "--json", "--connector", "influitive", *args)).stdout
        )
        assert found["email"] == STRANGER["email"] and found["last_seen"] is not None
        unknown = await syncd("orphans", "--connector", "nope", *args)
        assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1

        shown = await syncd("person", "person1@corp.example", *args)
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert lines[0] == "person1@corp.example  Given1 Family1"
        assert "  lifecycle:    active" in lines and "  authority id: E001" in lines
        assert "title=Engineer" in shown.stdout and "{" not in shown.stdout
        account = row(shown.stdout, "influitive")
        assert account[2:5] == ["person1@corp.example", "active", "created_by_push"]
        as_json = json.loads(
            (await syncd("person", "person1@corp.example", "--json", *args)).stdout
        )
        assert as_json["primary_email"] == "person1@corp.example"
        assert [a["connector"] for a in as_json["accounts"]] == ["influitive"]
        nobody = await syncd("person", "nobody@corp.example", *args)
        assert nobody.returncode == 1 and nobody.stderr.count("\n") == 1

        # Credentials the vendor no longer accepts: the connector is parked, with the reason.
        sim.token = "a-rotated-token-0002"
        failed = await syncd("once", *args)
        assert failed.returncode == 1
        status = await syncd("status", *args)
        listing = row(status.stdout, "influitive")[1]
        assert listing.startswith("INCOMPLETE ") and "; last complete " in listing, listing
        assert "influitive: PARKED: credentials rejected" in status.stdout
        assert "(1 listing(s) in a row)" in status.stdout
        item = json.loads((await syncd("status", "--json", *args)).stdout)["connectors"][
            "influitive"
        ]
        assert item["parked"] is True and item["consecutive_failures"] == 1
        assert "a-rotated-token" not in status.stdout and "engine-Secret" not in status.stdout
        orphans = await syncd("orphans", *args)
        assert row(orphans.stdout, "influitive")[5] == "unknown (listing incomplete)"
