"""`syncd demo`, the README's main command, plays its whole story."""

from __future__ import annotations

import subprocess
import sys


def test_one_round_of_the_demo_reaches_every_vendor() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "syncd.cli.main", "demo", "--cycles", "1", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    every = "appxite, influitive, partnerize, thought_industries, userflow"
    assert f"account created at: {every}" in out
    assert "title updated at: appxite, influitive, userflow" in out
    assert "deactivated at: appxite, influitive, partnerize, thought_industries" in out
    assert "health endpoint: http://127.0.0.1:" in out
    assert out.rstrip().endswith("demo finished")
