"""`syncd demo`: five simulated vendors, an HR file, an IdP over SCIM and the daemon, a story."""

from __future__ import annotations

import csv
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import aiohttp
import anyio

from connectors.sim.fleet import Fleet, simulator_fleet
from syncd.cli.demo_idp import BEARER_VARIABLE, IdentityProvider, scim_table, token_environ
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

    def newcomer(self, title: str = "Engineer") -> dict[str, str]:
        """The next new person, as an HR row."""
        number = self.next_id
        self.next_id += 1
        return {
            "employee_id": f"E{number:04d}",
            "email": f"person{number}@{DOMAIN}",
            "given_name": f"Person{number}",
            "family_name": "Example",
            "title": title,
            "status": "active",
        }

    def hire(self) -> dict[str, str]:
        """Add the next new person to the HR file."""
        person = self.newcomer()
        self.staff[self.next_id - 1] = person
        return person

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


async def play(story: Story, daemon: Daemon, token: str, cycles: int | None) -> None:
    """Wait for the daemon, tell the story round after round, then stop the daemon."""
    while daemon.health_url is None or daemon.scim_url is None:  # noqa: ASYNC110  (startup)
        await anyio.sleep(0.1)
    say(f"health endpoint: {daemon.health_url}/readyz  /status  /metrics  /livez")
    say(f"SCIM endpoint: {daemon.scim_url} (bearer token: random, from env:{BEARER_VARIABLE})")
    await story.until("starting staff provisioned at", story.staff[1]["email"], lambda *_: True, 5)
    async with aiohttp.ClientSession() as session:
        idp = IdentityProvider(daemon.scim_url, token, session)
        round_number = 0
        while cycles is None or round_number < cycles:
            round_number += 1
            say(f"round {round_number}")
            await play_round(story, idp)
    daemon.stop()


async def play_round(story: Story, idp: IdentityProvider) -> None:
    """The IdP hires, retitles and lets go over SCIM; the HR file loses one; a vendor fails."""
    hire = story.newcomer()
    user_id, sent = await idp.create(hire)
    say(f"- hire: {hire['email']} joins through SCIM\n  the IdP sent: {sent}")
    await story.until("account created at", hire["email"], lambda *_: True, 5)

    sent = await idp.replace(user_id, {"title": "Staff Engineer"})
    say(f"- title change: {hire['email']} is now Staff Engineer\n  the IdP sent: {sent}")
    await story.until(
        "title updated at", hire["email"], lambda _n, title, _a: title == "Staff Engineer", 3
    )

    leaver = story.staff.pop(min(story.staff))
    story.write()
    say(f"- leaver: {leaver['email']} leaves the HR file (Userflow cannot deactivate: reported)")
    await story.until("deactivated at", leaver["email"], lambda name, _t, active: not active, 4)

    sent = await idp.replace(user_id, {"active": False})
    say(f"- leaver: the IdP deactivates {hire['email']}\n  the IdP sent: {sent}")
    await story.until("deactivated at", hire["email"], lambda name, _t, active: not active, 4)

    sim = story.fleet["partnerize"].simulator
    sim.settings.faults.server_error_share = 1.0
    say("- outage: partnerize answers 503 to everything (/readyz turns 503)")
    await anyio.sleep(4)
    sim.settings.faults.server_error_share = 0.0
    say("  partnerize is back; its next poll recovers (/readyz turns 200)")
    await anyio.sleep(2)


def demo_config(root: Path, fleet: Fleet, port: int) -> Config:
    """The demo's config: SQLite in the temporary directory, every vendor provisioning."""
    document = {
        "database": {"url": f"sqlite:///{root / 'syncd.db'}"},
        "authority": {"hr_feed": str(root / "hr.csv"), "poll_interval": 0.5},
        "health": {"port": port},
        "push": {"base_delay": 0.2, "max_delay": 2.0},
        "scim": scim_table(),
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
            environ = fleet_environ(fleet) | token_environ()
            daemon = Daemon(root / "syncd.toml", environ)
            async with anyio.create_task_group() as group:
                group.start_soon(play, story, daemon, environ[BEARER_VARIABLE], cycles)
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
