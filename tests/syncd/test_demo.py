"""`syncd demo`, the README's main command, plays its whole story."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def demo_output() -> str:
    """What one round of the demo prints."""
    result = subprocess.run(
        [sys.executable, "-m", "syncd.cli.main", "demo", "--cycles", "1", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_one_round_of_the_demo_reaches_every_vendor(demo_output: str) -> None:
    out = demo_output
    every = "appxite, influitive, partnerize, thought_industries, userflow"
    assert f"account created at: {every}" in out
    assert "title updated at: appxite, influitive, userflow" in out
    assert out.count("deactivated at: appxite, influitive, partnerize, thought_industries") == 2
    assert "health endpoint: http://127.0.0.1:" in out
    assert out.rstrip().endswith("demo finished")


def test_the_demo_hire_and_leaver_arrive_through_scim(demo_output: str) -> None:
    lines = demo_output.splitlines()
    assert any(
        line.startswith("SCIM endpoint: http://127.0.0.1:") and "env:SYNCD_DEMO_SCIM_TOKEN" in line
        for line in lines
    )
    hire = lines.index("- hire: person9@corp.example joins through SCIM")
    assert lines[hire + 1].startswith('  the IdP sent: POST /scim/v2/Users {"schemas"')
    assert '"userName": "person9@corp.example"' in lines[hire + 1]
    every = "appxite, influitive, partnerize, thought_industries, userflow"
    assert lines[hire + 2] == f"  account created at: {every}"
    leaver = lines.index("- leaver: the IdP deactivates person9@corp.example")
    sent = lines[leaver + 1]
    assert sent.startswith("  the IdP sent: PATCH /scim/v2/Users/")
    assert sent.endswith('[{"op": "replace", "value": {"active": false}}]')
    deactivated = "  deactivated at: appxite, influitive, partnerize, thought_industries"
    assert lines[leaver + 2] == deactivated
