"""`syncd run` with a damaged HR feed: it keeps running, says why, and takes an approval."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import anyio

from connectors.sim.base import VendorSimulator
from tests.syncd.processes import start_syncd, stop
from tests.syncd.test_cli_engine import syncd
from tests.syncd.test_daemon import config_text, free_port, wait_for
from tests.syncd.test_engine import person, write_feed


def title_of(sim: VendorSimulator, email: str) -> object:
    """The title the vendor holds for this email."""
    return next(view.title for view in map(sim.view, sim.users.values()) if view.email == email)


async def authority(client: aiohttp.ClientSession, base: str) -> tuple[Any, Any]:
    """The /readyz authority check and the /status authority block."""
    async with client.get(f"{base}/readyz") as response:
        check = (await response.json())["checks"].get("authority")
    async with client.get(f"{base}/status") as response:
        status = (await response.json())["authority"]
    return check, status


async def wait_refused(client: aiohttp.ClientSession, base: str, text: str) -> Any:
    """Wait until /readyz names this reason in its authority check; return /status's block."""
    with anyio.fail_after(20):
        while True:
            check, status = await authority(client, base)
            if check and not check["ok"] and text in check["reason"]:
                return status
            await anyio.sleep(0.1)


async def test_a_bad_feed_never_stops_the_daemon(
    sims: tuple[dict[str, VendorSimulator], dict[str, str]], tmp_path: Path
) -> None:
    running, urls = sims
    feed = tmp_path / "hr.csv"
    rows = [person(i) for i in range(6)]
    write_feed(feed, rows)
    port = free_port()
    config = tmp_path / "syncd.toml"
    config.write_text(config_text(tmp_path / "syncd.db", feed, urls, port))
    log = (tmp_path / "daemon.log").open("w+")
    process = start_syncd("run", config, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as client:
            await wait_for(client, base, 200, 30)

            feed.write_bytes("employee_id,email\nE1,jos\xe9@corp.example\n".encode("latin-1"))
            status = await wait_refused(client, base, "not UTF-8 at line 2")
            assert status["refused_since"] is not None and process.poll() is None
            feed.write_bytes(b"")
            await wait_refused(client, base, "the file is empty")
            assert process.poll() is None

            # The next good feed clears the refusal; pollers kept going all along.
            write_feed(feed, rows)
            await wait_for(client, base, 200, 20)
            check, status = await authority(client, base)
            assert check["ok"] and status["refused"] is None

            # SIGHUP reads the feed again even when its time and size did not change.
            before = feed.stat()
            write_feed(feed, [person(0, title="Designer"), *rows[1:]])  # same length
            os.utime(feed, ns=(before.st_atime_ns, before.st_mtime_ns))
            await anyio.sleep(1.0)
            assert title_of(running["influitive"], "person0@corp.example") == "Engineer"
            process.send_signal(signal.SIGHUP)
            with anyio.fail_after(20):
                while title_of(running["influitive"], "person0@corp.example") != "Designer":  # noqa: ASYNC110
                    await anyio.sleep(0.1)

            # A shrink is refused until an operator approves that version of the file.
            write_feed(feed, rows[:2])
            status = await wait_refused(client, base, "4 of 6 people would be deprovisioned")
            assert status["awaiting_approval"] and status["refused_people"] == 4
            partnerize = running["partnerize"]
            assert all(partnerize.view(user).active for user in partnerize.users.values())
            approve = await syncd("approve", "--authority", "--config", str(config))
            assert approve.returncode == 0, approve.stderr
            await wait_for(client, base, 200, 20)
            check, status = await authority(client, base)
            assert status["refused"] is None and status["approved_digest"] is None

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        stop(process)
    log.seek(0)
    output = log.read()
    assert "Traceback" not in output
    assert output.count("authority.refused") == 3  # once as each refusal starts
    assert output.count("authority.refusal_cleared") == 2
    assert "@corp.example" not in output
