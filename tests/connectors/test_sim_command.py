"""`syncd sim VENDOR` serves a simulator in the foreground on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from connectors.registry import VENDORS
from syncd.cli.main import main


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_sim_command_serves_the_vendor() -> None:
    port = _free_port()
    command = [
        sys.executable, "-m", "syncd.cli.main", "sim", "example",
        "--port", str(port), "--users", "5", "--seed", "3", "--token", "tok-cli-123456",
        "--rate", "50", "--latency-ms", "1",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(f"example simulator on http://127.0.0.1:{port}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sim/users", timeout=5) as reply:
            users = json.load(reply)["users"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sim/config", timeout=5) as reply:
            config = json.load(reply)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/users",
            headers={"Authorization": "Bearer tok-cli-123456"},
        )
        with urllib.request.urlopen(request, timeout=5) as reply:
            assert json.load(reply)["total"] == 5
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    assert [user["id"] for user in users] == [f"u{index:06d}" for index in range(1, 6)]
    assert config["rate"] == 50 and config["latency_ms"] == 1


def test_sim_command_rejects_an_unknown_vendor(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "nosuchvendor", "--port", "1"]) == 2
    known = ", ".join(sorted(VENDORS))
    assert f"unknown vendor 'nosuchvendor' (known: {known})" in capsys.readouterr().err


def test_sim_help_lists_every_vendor_and_its_secrets() -> None:
    command = [sys.executable, "-m", "syncd.cli.main", "sim", "--help"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    for name, entry in VENDORS.items():
        secrets = ", ".join(entry.connector.secret_names)
        assert f"  {name:<19} secrets: {secrets}\n" in result.stdout
        assert entry.simulator.credentials in result.stdout


@pytest.mark.parametrize("name", sorted(VENDORS))
def test_the_simulator_hands_out_the_secrets_its_connector_takes(name: str) -> None:
    entry = VENDORS[name]
    connection = entry.simulator(token="app-key:user-key").connection()
    assert set(connection.secrets) == set(entry.connector.secret_names)
