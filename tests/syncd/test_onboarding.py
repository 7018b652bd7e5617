"""Bulk onboarding through the daemon on PostgreSQL: every hire once at every vendor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from connectors.sim.base import VendorSimulator
from connectors.sim.fleet import simulator_fleet
from tests.conftest import _fresh_postgres_url
from tests.syncd.processes import start_syncd, stop
from tests.syncd.test_daemon import config_text, free_port
from tests.syncd.test_engine import ENV, TOKEN, VENDOR_NAMES, person, write_feed

HIRES = 200


@pytest.fixture
async def vendors() -> AsyncIterator[dict[str, tuple[VendorSimulator, str]]]:
    """All five vendor simulators on loopback."""
    async with simulator_fleet(VENDOR_NAMES, token=TOKEN) as fleet:
        yield {name: (member.simulator, member.url) for name, member in fleet.items()}


def hires_at(sim: VendorSimulator) -> Counter[str]:
    """How many accounts each hire's email has at a vendor."""
    emails = ((sim.view(user).email or "").lower() for user in sim.users.values())
    return Counter(email for email in emails if email.endswith("@corp.example"))


async def test_onboarding_200_hires_on_postgres_creates_each_once_everywhere(
    vendors: dict[str, tuple[VendorSimulator, str]], tmp_path: Path
) -> None:
    url = await _fresh_postgres_url()
    feed = tmp_path / "hr.csv"
    write_feed(feed, [person(i) for i in range(HIRES)])
    urls = {name: base for name, (_, base) in vendors.items()}
    text = config_text(tmp_path / "unused.db", feed, urls, free_port())
    text = text.replace(f'url = "sqlite:///{tmp_path / "unused.db"}"', f'url = "{url}"')
    text = text.replace("poll_interval = 0.3", "poll_interval = 1").replace(
        "staleness_limit = 1.5", "staleness_limit = 10"
    )
    config = tmp_path / "syncd.toml"
    config.write_text(text)
    await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-m", "syncd.cli.main", "db", "upgrade", "--config", str(config)],
            check=True,
            capture_output=True,
            env={**os.environ, **ENV},
        )
    )
    log = (tmp_path / "daemon.log").open("w+")
    process = start_syncd("run", config, stdout=log, stderr=subprocess.STDOUT)
    expected = {f"person{i}@corp.example": 1 for i in range(HIRES)}
    try:
        with anyio.move_on_after(120):
            while any(hires_at(sim) != expected for sim, _ in vendors.values()):
                assert process.poll() is None, "the daemon died during onboarding"
                await anyio.sleep(0.5)
        await anyio.sleep(3)  # a few more listings and pushes: nothing is created twice
        assert process.poll() is None
        for name, (sim, _) in vendors.items():
            found = hires_at(sim)
            assert found == expected, (name, len(found), found.most_common(2))
        process.send_signal(signal.SIGTERM)
        assert await anyio.to_thread.run_sync(lambda: process.wait(timeout=20)) == 0
    finally:
        stop(process)
        log.seek(0)
        output = log.read()
        log.close()
    assert "Traceback" not in output
