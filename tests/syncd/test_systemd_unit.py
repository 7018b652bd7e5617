"""The systemd unit: a notify service with a watchdog, hardened to an exposure of 2.0 or less."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from connectors.registry import VENDORS

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "syncd.service"
MAX_EXPOSURE = 2.0


def _settings() -> dict[str, list[str]]:
    """Every Key=value of the unit, keys that repeat keeping each value."""
    settings: dict[str, list[str]] = {}
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_a_notify_service_with_a_watchdog() -> None:
    settings = _settings()
    assert settings["Type"] == ["notify"]
    assert settings["NotifyAccess"] == ["main"]
    assert settings["WatchdogSec"] == ["30s"]
    assert settings["Restart"] == ["on-failure"]
    assert settings["ExecStart"] == ["/usr/bin/syncd run --config /etc/syncd/syncd.toml"]
    assert settings["StateDirectory"] == ["syncd"]


def test_a_credential_for_every_vendor_secret() -> None:
    credentials = {value.partition(":")[0] for value in _settings()["LoadCredential"]}
    expected = {
        f"{name}_{secret}"
        for name, vendor in VENDORS.items()
        if name != "example"
        for secret in vendor.connector.secret_names
    }
    assert credentials == expected | {"scim_listener_token"}  # the [scim] listener's own


def test_exposure_is_at_most_two() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed; the exposure figure cannot be checked")
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0 and "offline" in result.stderr:
        pytest.skip(f"this systemd-analyze has no offline mode: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found, result.stdout
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout


def test_memory_and_tasks_are_limited() -> None:
    settings = _settings()
    assert settings["MemoryMax"] == ["1G"]
    assert settings["TasksMax"] == ["256"]
