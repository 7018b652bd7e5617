"""The README's first-vendor walkthrough, run as written against the Partnerize simulator."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import anyio

from tests.syncd.test_cli_engine import run
from tests.syncd.test_engine import person, serving

README = Path(__file__).parents[2] / "README.md"
SECTION = "## Configure your first real vendor"


def walkthrough_config() -> str:
    """The TOML block of the walkthrough, as the README shows it."""
    section = README.read_text(encoding="utf-8").split(SECTION, 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the walkthrough has no TOML block"
    return "\n".join(line.strip() for line in match.group(1).splitlines()) + "\n"


def write_rows(path: Path, hires: list[tuple[str, str]]) -> None:
    """An HR export with the columns the walkthrough names."""
    fields = ["employee_id", "email", "given_name", "family_name", "title", "status", "role"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        for index, (email, role) in enumerate(hires):
            writer.writerow(person(index, email=email, role=role))


async def test_the_readme_walkthrough_config_syncs_partnerize(tmp_path: Path) -> None:
    async with serving("partnerize") as (sim, url):
        # Only where things are changes: the state directory, the vendor's URL, the keys.
        text = walkthrough_config().replace("/var/lib/syncd/", f"{tmp_path}/")
        text = text.replace(
            'vendor = "partnerize"\n', f'vendor = "partnerize"\nbase_url = "{url}"\n'
        )
        text = text.replace("credential:partnerize_", "env:WALK_")
        config = tmp_path / "syncd.toml"
        config.write_text(text)
        keys = sim.connection().secrets
        env = {"WALK_application_key": keys["application_key"]}
        env["WALK_user_api_key"] = keys["user_api_key"]
        hires = [("ana@acme.example", "Partner Manager"), ("bo@acme.example", "Analyst")]
        write_rows(tmp_path / "hr.csv", hires)

        async def syncd(*args: str) -> subprocess.CompletedProcess[str]:
            return await anyio.to_thread.run_sync(
                lambda: run(*args, "--config", str(config), env=env)
            )

        doctor = await syncd("doctor", "--json")
        assert doctor.returncode == 0, doctor.stderr
        assert json.loads(doctor.stdout)["connector:partnerize"] == "ok"
        once = await syncd("once", "--json")
        assert once.returncode == 0, once.stderr
        roles = {user["email"]: user["role"] for user in sim.users.values()}
        assert roles == {"ana@acme.example": "admin", "bo@acme.example": "standard"}
