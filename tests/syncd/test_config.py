"""Config loading and secret references."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.config import ConfigError, load_config, resolve_secrets

GOOD = """
[database]
url = "sqlite:///graph.db"

[guard]
max_deactivations = 3

[connectors.hub]
vendor = "influitive"
base_url = "http://127.0.0.1:9"
rate = 2.5
secrets = { token = "env:HUB_TOKEN" }
provision = { domains = ["example.com"] }
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "syncd.toml"
    path.write_text(text)
    return path


def test_a_good_config_loads(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD))
    hub = config.connectors["hub"]
    assert (hub.vendor, hub.rate, hub.provision.domains) == ("influitive", 2.5, ["example.com"])
    assert config.guard.max_deactivations == 3 and config.guard.max_deactivation_share == 0.05


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('vendor = "influitive"', 'vendor = "nosuch"'),
            "connectors.hub.vendor: Value error, unknown vendor 'nosuch'",
        ),
        (("rate = 2.5", "rate = -1"), "connectors.hub.rate: Input should be greater than 0"),
        (
            ('"env:HUB_TOKEN"', '"hunter2"'),
            "connectors.hub.secrets: Value error, secret 'token' must be a reference",
        ),
        (
            ("max_deactivations = 3", "max_deactivations = 3\ntypo = 1"),
            "guard.typo: Extra inputs are not permitted",
        ),
        (("[guard]", "[guard"), "not valid TOML"),
    ],
)
def test_bad_configs_name_the_key(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, GOOD.replace(*change)))
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path / "none.toml")


def test_secrets_resolve_from_env_files_and_credentials(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("from-file\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "hub-token").write_text("from-credential")
    refs = {"a": "env:A", "b": f"file:{tmp_path / 'key'}", "c": "credential:hub-token"}
    env = {"A": "from-env", "CREDENTIALS_DIRECTORY": str(creds)}
    assert resolve_secrets("hub", refs, env) == {
        "a": "from-env",
        "b": "from-file",
        "c": "from-credential",
    }
    with pytest.raises(ConfigError, match=r"connectors.hub.secrets.a: environment variable A"):
        resolve_secrets("hub", {"a": "env:A"}, {})
    with pytest.raises(ConfigError, match=r"\$CREDENTIALS_DIRECTORY is not set"):
        resolve_secrets("hub", {"c": "credential:x"}, {})
