"""The example config shipped for operators is valid."""

from __future__ import annotations

from pathlib import Path

from syncd.config import load_config

EXAMPLE = Path(__file__).parents[2] / "systemd" / "syncd.example.toml"


def test_the_example_config_validates() -> None:
    config = load_config(EXAMPLE)
    assert set(config.connectors) == {
        "influitive",
        "thought_industries",
        "partnerize",
        "userflow",
        "appxite",
        "scim",
    }
    assert config.precedence["title"] == ["authority", "influitive"]
