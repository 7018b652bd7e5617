"""The README's walkthroughs, run as written: Partnerize's simulator, an IdP's SCIM endpoint."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import aiohttp
import anyio

from tests.syncd.processes import start_syncd, stop, stop_gracefully
from tests.syncd.test_cli_engine import run
from tests.syncd.test_daemon import free_port, wait_for
from tests.syncd.test_engine import person, serving

README = Path(__file__).parents[2] / "README.md"
SECTION = "## Configure your first real vendor"
IDP_SECTION = "## Provision from Okta / Entra ID"
PUBLIC_URL = "https://syncd.example.com"
CREDENTIALS = "/etc/syncd/credentials/"


def readme_blocks(heading: str, language: str) -> list[str]:
    """The `language` code blocks of a README section, as the README shows them."""
    section = README.read_text(encoding="utf-8").split(heading, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert blocks, f"{heading} has no {language} block"
    return ["\n".join(line.strip() for line in block.splitlines()) + "\n" for block in blocks]


def walkthrough_config() -> str:
    """The TOML block of the walkthrough, as the README shows it."""
    return readme_blocks(SECTION, "toml")[0]


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


def shell(line: str, credentials: Path) -> str:
    """Run a README shell line with the credential folder moved; what it printed."""
    result = subprocess.run(
        ["bash", "-c", line.replace(CREDENTIALS, f"{credentials}/")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


async def test_the_readme_idp_walkthrough_serves_scim_with_its_token(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    make_token, check = readme_blocks(IDP_SECTION, "sh")
    shell(make_token, credentials)
    token = (credentials / "scim_listener_token").read_text().strip()
    assert re.fullmatch("[0-9a-f]{64}", token)

    port, health = free_port(), free_port()
    (scim_table,) = readme_blocks(IDP_SECTION, "toml")
    scim_table = scim_table.replace("port = 8443", f"port = {port}")
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "syncd.db"}"\n\n'
        f"[health]\nport = {health}\n\n{scim_table}"
    )
    log = (tmp_path / "daemon.log").open("w+")
    env = {"CREDENTIALS_DIRECTORY": str(credentials)}
    process = start_syncd("run", config, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        async with aiohttp.ClientSession() as client:
            await wait_for(client, f"http://127.0.0.1:{health}", 200, 20)
        local = f"http://127.0.0.1:{port}"
        answer = json.loads(shell(check.replace(PUBLIC_URL, local), credentials))
        assert answer["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
        assert answer["patch"]["supported"] is True
        without = f"curl -s -o /dev/null -w '%{{http_code}}' {local}/scim/v2/ServiceProviderConfig"
        assert shell(without, credentials) == "401"
    except BaseException:
        stop(process)
        raise
    output = stop_gracefully(process, log)
    assert "scim.listening" in output and f"{local}/scim/v2" in output
    assert '"actor":"okta"' in output.replace(" ", "")
    assert token not in output
