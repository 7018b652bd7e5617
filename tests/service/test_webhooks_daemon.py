"""End to end: `syncd run` with both webhook vendors; a change at the vendor reaches the graph."""
# ruff: noqa: F811  (the fixtures are imported, and tests take them by name)

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import aiohttp
import anyio
from prometheus_client.parser import text_string_to_metric_families

from connectors.sim.fleet import simulator_fleet
from connectors.vendors.influitive.simulator import InfluitiveSimulator
from connectors.vendors.thought_industries.simulator import ThoughtIndustriesSimulator
from tests.syncd.conftest import processes  # noqa: F401  (the fixture, used by name)
from tests.syncd.processes import Processes
from tests.syncd.test_cli import held_port, one_line, run  # noqa: F401  (held_port: a fixture)
from tests.syncd.test_daemon import free_port, readyz, wait_for
from tests.syncd.test_engine import SECRETS, SETTINGS, TOKEN

HOOKS = {"influitive": "hook-Influitive-0123456789", "thought_industries": "hook-TI-0123456789"}
VIA = {"influitive": "header", "thought_industries": "path"}


def config_text(db: Path, urls: dict[str, str], health: int, hooks: int) -> str:
    """A daemon that lists every hour, so only a hint can bring a change in sooner."""
    lines = [
        f'[database]\nurl = "sqlite:///{db}"',
        f"[health]\nport = {health}",
        f"[webhooks]\nport = {hooks}",
    ]
    for name, url in urls.items():
        secrets = ", ".join(f'{key} = "{value}"' for key, value in SECRETS[name].items())
        settings = ", ".join(
            f"{key} = {json.dumps(value)}" for key, value in SETTINGS[name].items()
        )
        lines.append(
            f'[connectors.{name}]\nvendor = "{name}"\nbase_url = "{url}"\nrate = 50\n'
            f"poll_interval = 3600\nsecrets = {{ {secrets} }}\nsettings = {{ {settings} }}\n"
            f'webhook = {{ secret = "env:HOOK_{name.upper()}", in = "{VIA[name]}" }}'
        )
    return "\n\n".join(lines) + "\n"


def stored(db: Path, name: str, external_id: str) -> dict[str, object]:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT attributes_json FROM account WHERE connector = ? AND external_id = ?",
            (name, external_id),
        ).fetchone()
    return {} if row is None else dict(json.loads(row[0]))


async def test_a_vendor_change_arrives_by_webhook_long_before_the_next_poll(
    tmp_path: Path, processes: Processes
) -> None:
    health, hooks = free_port(), free_port()
    sims = {
        "influitive": InfluitiveSimulator(users=5, token=TOKEN),
        "thought_industries": ThoughtIndustriesSimulator(users=5, seed=1, token=TOKEN),
    }
    for name, sim in sims.items():
        sim.webhooks.url = f"http://127.0.0.1:{hooks}/webhooks/{name}"
        sim.webhooks.secret, sim.webhooks.via = HOOKS[name], VIA[name]
    db = tmp_path / "syncd.db"
    async with simulator_fleet(sims) as fleet:
        config = tmp_path / "syncd.toml"
        config.write_text(config_text(db, fleet.urls, health, hooks))
        log = (tmp_path / "daemon.log").open("w+")
        env = {f"HOOK_{name.upper()}": secret for name, secret in HOOKS.items()}
        processes.start("run", config, stdout=log, stderr=subprocess.STDOUT, env=env)
        base = f"http://127.0.0.1:{health}"
        async with aiohttp.ClientSession() as client:
            with anyio.fail_after(15):
                while await readyz(client, base) == 0:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            await wait_for(client, base, 200, 15)  # both listed once; the next is an hour away

            changes = {
                "influitive": ("title", "title", "Hinted Title"),
                "thought_industries": ("firstName", "given_name", "Hinted"),
            }
            started = time.monotonic()
            for name, (field, _, value) in changes.items():
                user = {**fleet[name].users()[2], field: value}
                async with client.post(f"{fleet.urls[name]}/_sim/users", json=[user]) as answer:
                    assert answer.status == 200
            waits: dict[str, float] = {}
            with anyio.fail_after(10):
                while len(waits) < len(changes):
                    for name, (_, attribute, value) in changes.items():
                        key = str(fleet[name].users()[2]["id"])
                        if name not in waits and stored(db, name, key).get(attribute) == value:
                            waits[name] = time.monotonic() - started
                    await anyio.sleep(0.02)
            assert max(waits.values()) < 5.0, waits

            # A member created at the vendor (advocate.created) is in the graph at once too.
            hire = {**fleet["influitive"].users()[0], "id": 999, "email": "new@corp.example"}
            async with client.post(f"{fleet.urls['influitive']}/_sim/users", json=[hire]) as answer:
                assert answer.status == 200
            with anyio.fail_after(5):
                while stored(db, "influitive", "999").get("email") != "new@corp.example":  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            for sim, sent in zip(sims.values(), (2, 1), strict=True):
                await sim.webhooks.drain()
                assert (sim.webhooks.sent, sim.webhooks.failed) == (sent, 0)

            async with client.get(f"{base}/metrics") as answer:
                metrics = await answer.text()
        hinted = {
            (sample.labels["connector"], sample.labels["outcome"]): sample.value
            for family in text_string_to_metric_families(metrics)
            if family.name == "syncd_webhook_hints"
            for sample in family.samples
            if sample.name == "syncd_webhook_hints_total"
        }
        assert hinted[("influitive", "queued")] == hinted[("influitive", "refetched")] == 2
        assert hinted[("thought_industries", "refetched")] == 1
    log.seek(0)
    output = log.read()
    assert "webhooks.listening" in output
    assert all(secret not in output and secret not in metrics for secret in HOOKS.values())


def test_a_webhook_port_in_use_is_69_and_an_unset_secret_78(tmp_path: Path, held_port: int) -> None:
    config = tmp_path / "syncd.toml"
    hook = 'webhook = { secret = "env:HOOK_UNSET_HERE" }'
    connector = config_text(tmp_path / "g.db", {"influitive": "http://127.0.0.1:9"}, 0, held_port)
    config.write_text(
        connector.replace('webhook = { secret = "env:HOOK_INFLUITIVE", in = "header" }', hook)
    )
    unset = run("run", "--config", str(config), "--log-level", "error")
    assert unset.returncode == 78
    assert "connectors.influitive.webhook.secret" in one_line(unset)
    held = run(
        "run", "--config", str(config), "--log-level", "error", env={"HOOK_UNSET_HERE": "s3cret-x"}
    )
    assert held.returncode == 69, held.stderr
    assert "[webhooks] port" in one_line(held) and f":{held_port}" in one_line(held)
    assert "s3cret-x" not in held.stderr
