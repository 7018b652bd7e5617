"""A simulator fleet as syncd's connectors: secrets by `env:` reference, their values apart."""

from __future__ import annotations

import re
from collections.abc import Mapping

from connectors.sim.base import SimConnection
from connectors.sim.fleet import Fleet
from syncd.config import Config

ENV_PREFIX = "SYNCD_SIM"


def secret_variable(connector: str, secret: str) -> str:
    """Return the environment variable that holds one connector's secret."""
    return re.sub(r"[^A-Z0-9]+", "_", f"{ENV_PREFIX}_{connector}_{secret}".upper())


def secret_references(connector: str, connection: SimConnection) -> dict[str, str]:
    """Return the connector's secrets as `env:` references, never the values."""
    return {secret: f"env:{secret_variable(connector, secret)}" for secret in connection.secrets}


def connection_environ(connections: Mapping[str, SimConnection]) -> dict[str, str]:
    """Return the environment that resolves every connector's secret references."""
    return {
        secret_variable(name, secret): value
        for name, connection in connections.items()
        for secret, value in connection.secrets.items()
    }


def fleet_environ(fleet: Fleet) -> dict[str, str]:
    """Return the environment that resolves the secret references of `fleet_connectors`."""
    return connection_environ({name: member.connection for name, member in fleet.items()})


def fleet_connectors(fleet: Fleet, **common: object) -> dict[str, dict[str, object]]:
    """Return a `[connectors]` table entry per simulator, with `common` keys added to each."""
    tables: dict[str, dict[str, object]] = {}
    for name, member in fleet.items():
        connection = member.connection
        tables[name] = {
            **common,
            "vendor": member.vendor,
            "base_url": member.url,
            "secrets": secret_references(name, connection),
            "settings": dict(connection.settings),
        }
    return tables


def fleet_config(fleet: Fleet, document: Mapping[str, object], **common: object) -> Config:
    """Return a validated Config: `document` plus the fleet as its connectors."""
    return Config.model_validate({**document, "connectors": fleet_connectors(fleet, **common)})
