"""The operator commands as a user runs them: a config file, real simulators, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio

from syncd.cli.main import main
from tests.syncd.test_daemon import config_text, free_port
from tests.syncd.test_engine import ENV, person, serving, write_feed


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the syncd command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "syncd.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **ENV, **(env or {})},
    )


async def test_once_plan_status_person_and_links(tmp_path: Path) -> None:
    async with serving("influitive") as (sim, url):
        feed = tmp_path / "hr.csv"
        write_feed(feed, [person(i) for i in range(4)])
        config = tmp_path / "syncd.toml"
        config.write_text(config_text(tmp_path / "g.db", feed, {"influitive": url}, free_port()))
        plan = await syncd("plan", "--config", str(config), "--json")
        assert plan.returncode == 0, plan.stderr
        assert json.loads(plan.stdout)["operations"] == []  # nothing listed yet: nothing planned
        once = await syncd("once", "--config", str(config), "--json")
        assert once.returncode == 0, once.stderr
        summary = json.loads(once.stdout)
        assert summary["connectors"]["influitive"]["pushed"] == 4
        assert len(sim.users) == 4
        status = json.loads((await syncd("status", "--config", str(config), "--json")).stdout)
        assert status["connectors"]["influitive"]["outbox"] == {"done": 4}
        found = await syncd("person", "person1@corp.example", "--config", str(config), "--json")
        assert found.returncode == 0 and "influitive" in found.stdout
        external_id = str(next(iter(sim.users.values()))["id"])
        unlink = await syncd("unlink", "influitive", external_id, "--config", str(config))
        assert unlink.returncode == 0, unlink.stderr
        missing = await syncd("link", "influitive", "nope", "a@b.example", "--config", str(config))
        assert missing.returncode == 1 and "no person" in missing.stderr
        doctor = await syncd("doctor", "--config", str(config), "--json")
        assert json.loads(doctor.stdout)["connector:influitive"] == "ok", doctor.stderr
        held = await syncd("approve", "--config", str(config), "--json")
        assert json.loads(held.stdout)["approved"] == 0


async def syncd(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line without blocking the simulators on this event loop."""
    return await anyio.to_thread.run_sync(lambda: run(*args))


def test_a_bad_config_is_78_and_usage_is_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[guard]\nmax_deactivations = 'many'\n")
    result = run("once", "--config", str(bad))
    assert result.returncode == 78 and "guard.max_deactivations" in result.stderr
    try:
        main(["once", "--config"])
    except SystemExit as exit_:
        assert exit_.code == 2
    else:
        raise AssertionError("--config without a path must be a usage error")


async def test_killed_mid_push_then_run_again_leaves_no_duplicate(tmp_path: Path) -> None:
    async with serving("thought_industries") as (sim, url):
        sim.settings.latency_ms = 150  # slow writes, so the kill lands mid-push
        feed = tmp_path / "hr.csv"
        write_feed(feed, [person(i) for i in range(30)])
        config = tmp_path / "syncd.toml"
        text = config_text(tmp_path / "g.db", feed, {"thought_industries": url}, free_port())
        config.write_text(text + "\n[lease]\nttl = 1\n")
        process = subprocess.Popen(  # noqa: ASYNC220  (starting it does not block)
            [sys.executable, "-m", "syncd.cli.main", "once", "--config", str(config)],
            env={**os.environ, **ENV},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with anyio.fail_after(60):
            while len(sim.users) < 5:  # noqa: ASYNC110  (another process is writing)
                await anyio.sleep(0.02)
        process.kill()
        process.wait()
        assert 5 <= len(sim.users) < 30
        await anyio.sleep(1.2)  # the killed run's writer lease runs out after its TTL
        sim.settings.latency_ms = 0
        again = await syncd("once", "--config", str(config), "--json")
        assert again.returncode == 0, again.stderr
        emails = sorted(str(user["email"]) for user in sim.users.values())
        assert emails == sorted(f"person{i}@corp.example" for i in range(30))  # each once
        status = json.loads((await syncd("status", "--config", str(config), "--json")).stdout)
        assert status["connectors"]["thought_industries"]["outbox"] == {"done": 30}
