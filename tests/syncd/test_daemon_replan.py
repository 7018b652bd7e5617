"""`syncd run` plans everyone once at its start and once after each reload (SIGHUP)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import aiohttp
import anyio

from connectors.sim.base import VendorSimulator
from tests.syncd.processes import start_syncd, stop
from tests.syncd.test_daemon import config_text, free_port, wait_for
from tests.syncd.test_engine import person, write_feed

PEOPLE = 6


def corp_emails(sim: VendorSimulator) -> set[str]:
    """The emails of the vendor's users at corp.example."""
    emails = {str(sim.view(user).email).lower() for user in sim.users.values()}
    return {email for email in emails if email.endswith("@corp.example")}


async def test_a_reloaded_rule_reaches_people_nothing_else_changed(
    sims: tuple[dict[str, VendorSimulator], dict[str, str]], tmp_path: Path
) -> None:
    running, urls = sims
    feed = tmp_path / "hr.csv"
    write_feed(feed, [person(i) for i in range(PEOPLE)])
    port = free_port()
    config = tmp_path / "syncd.toml"
    provisioning = config_text(tmp_path / "syncd.db", feed, urls, port)
    config.write_text(provisioning.replace('["corp.example"]', '["elsewhere.example"]'))
    log = (tmp_path / "daemon.log").open("w+")
    process = start_syncd("run", config, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as client:
            await wait_for(client, base, 200, 30)  # every connector listed: nobody to create
            await anyio.sleep(1.0)
            assert all(not corp_emails(sim) for sim in running.values())
            # Neither the HR file nor any vendor changes: only the new rule does.
            config.write_text(provisioning)
            process.send_signal(signal.SIGHUP)
            wanted = {f"person{i}@corp.example" for i in range(PEOPLE)}
            with anyio.fail_after(20):
                while any(corp_emails(sim) != wanted for sim in running.values()):  # noqa: ASYNC110
                    await anyio.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        stop(process)
    log.seek(0)
    output = log.read()
    assert "Traceback" not in output
    assert output.count("plan.everyone") == 2  # at the start, and after the reload
