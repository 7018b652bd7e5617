"""`syncd demo`: five simulated vendors, an HR file and the daemon on SQLite, telling a story."""

from __future__ import annotations

import csv
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import anyio

from connectors.sim.fleet import Fleet, simulator_fleet
from syncd.cli.simfleet import fleet_config, fleet_environ
from syncd.config import Config
from syncd.service.daemon import Daemon

FIELDS = ("employee_id", "email", "given_name", "family_name", "title", "status")
DOMAIN = "corp.example"
VENDORS = ("influitive", "thought_industries", "partnerize", "userflow", "appxite")
SEEDED_USERS = 40  # each vendor's own users, strangers to the HR file
STARTING_STAFF = 8
WAIT = 30.0
DEFAULT_PORT = 8080


class Story:
    """The HR file and the simulators the demo drives."""

    def __init__(self, feed: Path, fleet: Fleet) -> None:
        self.feed = feed
        self.fleet = fleet
        self.staff: dict[int, dict[str, str]] = {}
        self.next_id = 1

    def hire(self, title: str = "Engineer") -> dict[str, str]:
        """Add one person to the HR file."""
        number = self.next_id
        self.next_id += 1
        self.staff[number] = {
            "employee_id": f"E{number:04d}",
            "email": f"person{number}@{DOMAIN}",
            "given_name": f"Person{number}",
            "family_name": "Example",
            "title": title,
            "status": "active",
        }
        return self.staff[number]

    def write(self) -> None:
        """Write the HR export the daemon watches."""
        with self.feed.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, FIELDS)
            writer.writeheader()
            writer.writerows(self.staff.values())

    def holders(self, email: str, test: Callable[[str, object, bool], bool]) -> list[str]:
        """The vendors whose copy of this person passes the test."""
        found = []
        for name, member in self.fleet.items():
            if any(test(name, view.title, view.active) for view in member.holding(email)):
                found.append(name)
        return sorted(found)

    async def until(
        self, what: str, email: str, test: Callable[[str, object, bool], bool], want: int
    ) -> None:
        """Wait until `want` vendors show the change, then say so."""
        with anyio.move_on_after(WAIT):
            while len(self.holders(email, test)) < want:  # noqa: ASYNC110  (simulator state)
                await anyio.sleep(0.2)
        say(f"  {what}: {', '.join(self.holders(email, test)) or 'nowhere yet'}")


def say(line: str) -> None:
    """Print one line of the story."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def play(story: Story, daemon: Daemon, cycles: int | None) -> None:
    """Hire, change a title, let someone go, break a vendor and mend it; round after round."""
    while daemon.health_url is None:  # noqa: ASYNC110  (set by the daemon's startup)
        await anyio.sleep(0.1)
    say(f"health endpoint: {daemon.health_url}/readyz  /status  /metrics  /livez")
    await story.until("starting staff provisioned at", story.staff[1]["email"], lambda *_: True, 5)
    round_number = 0
    while cycles is None or round_number < cycles:
        round_number += 1
        say(f"round {round_number}")
        hire = story.hire()
        story.write()
        say(f"- hire: {hire['email']} joins")
        await story.until("account created at", hire["email"], lambda *_: True, 5)

        hire["title"] = "Staff Engineer"
        story.write()
        say(f"- title change: {hire['email']} is now Staff Engineer")
        await story.until(
            "title updated at", hire["email"], lambda _n, title, _a: title == "Staff Engineer", 3
        )

        leaver_id = min(story.staff)
        leaver = story.staff.pop(leaver_id)
        story.write()
        say(f"- leaver: {leaver['email']} leaves (Userflow cannot deactivate: reported)")
        await story.until("deactivated at", leaver["email"], lambda name, _t, active: not active, 4)

        sim = story.fleet["partnerize"].simulator
        sim.settings.faults.server_error_share = 1.0
        say("- outage: partnerize answers 503 to everything (/readyz turns 503)")
        await anyio.sleep(4)
        sim.settings.faults.server_error_share = 0.0
        say("  partnerize is back; its next poll recovers (/readyz turns 200)")
        await anyio.sleep(2)
    daemon.stop()


def demo_config(root: Path, fleet: Fleet, port: int) -> Config:
    """The demo's config: SQLite in the temporary directory, every vendor provisioning."""
    document = {
        "database": {"url": f"sqlite:///{root / 'syncd.db'}"},
        "authority": {"hr_feed": str(root / "hr.csv"), "poll_interval": 0.5},
        "health": {"port": port},
        "push": {"base_delay": 0.2, "max_delay": 2.0},
    }
    return fleet_config(
        fleet,
        document,
        rate=50,
        poll_interval=1.0,
        staleness_limit=3.0,
        provision={"domains": [DOMAIN]},
    )


async def run_demo(cycles: int | None, port: int) -> int:
    """Start everything in this process and play the story."""
    with tempfile.TemporaryDirectory(prefix="syncd-demo-") as directory:
        root = Path(directory)
        async with simulator_fleet(VENDORS, users=SEEDED_USERS, seed=1) as fleet:
            story = Story(root / "hr.csv", fleet)
            for _ in range(STARTING_STAFF):
                story.hire()
            story.write()
            say(f"5 vendor simulators up; HR file {story.feed} with {STARTING_STAFF} people")
            config = demo_config(root, fleet, port)
            daemon = Daemon(root / "syncd.toml", fleet_environ(fleet))
            async with anyio.create_task_group() as group:
                group.start_soon(play, story, daemon, cycles)
                await daemon.run(config)
                group.cancel_scope.cancel()
    say("demo finished")
    return 0


def _is_free(port: int) -> bool:
    """Whether the health server could listen on this loopback port now."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def demo(cycles: int | None, port: int | None) -> int:
    """Run the demo until interrupted or for `cycles` rounds; no port: 8080, else a free one."""
    if port is None:
        port = DEFAULT_PORT if _is_free(DEFAULT_PORT) else 0
        if port == 0:
            say(f"port {DEFAULT_PORT} is taken: the health server takes a free one")
    return anyio.run(run_demo, cycles, port)
