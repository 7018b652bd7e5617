"""A simulator fleet rendered as syncd's config: secrets only by reference."""

from __future__ import annotations

from connectors.sim.fleet import simulator_fleet
from syncd.cli.simfleet import fleet_config, fleet_environ, secret_variable
from syncd.config import resolve_secrets


async def test_the_fleet_config_references_secrets_the_environ_resolves() -> None:
    async with simulator_fleet(["partnerize", "appxite"], token="tok-Secret-1") as fleet:
        config = fleet_config(fleet, {}, rate=7, provision={"domains": ["corp.example"]})
        environ = fleet_environ(fleet)
    assert set(config.connectors) == {"partnerize", "appxite"}
    for name, connector in config.connectors.items():
        member = fleet[name]
        assert connector.vendor == name and connector.base_url == member.url
        assert connector.rate == 7 and connector.provision.domains == ["corp.example"]
        assert connector.settings == member.connection.settings
        assert "tok-Secret-1" not in str(connector.secrets)
        resolved = resolve_secrets(name, connector.secrets, environ)
        assert resolved == member.connection.secrets


def test_secret_variables_are_environment_names() -> None:
    assert secret_variable("thought-industries.eu", "api_key") == (
        "SYNCD_SIM_THOUGHT_INDUSTRIES_EU_API_KEY"
    )
