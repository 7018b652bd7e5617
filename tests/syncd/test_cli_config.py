"""A bad config stops every command with exit 78 and one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.syncd.test_cli_engine import run

BASE = """[database]
url = "sqlite:///{db}"

[connectors.hub]
vendor = "influitive"
"""


@pytest.mark.parametrize(
    ("command", "table", "line"),
    [
        (
            "once",
            'base_url = "https://me:hunter2@hub.example.com"\nsecrets = { api_key = "env:K" }',
            "syncd: bad config: connectors.hub.base_url: must not hold a user or password",
        ),
        (
            "run",
            'base_url = "http://hub.example.com"\nsecrets = { api_key = "env:K" }',
            "syncd: bad config: connectors.hub.base_url: plain http:// is only for loopback",
        ),
        (
            "run",
            'settings = { hub = "evil.example/x#" }\nsecrets = { api_key = "env:K" }',
            "syncd: bad config: connectors.hub.settings.hub: must be one DNS label",
        ),
        (
            "plan",
            'settings = { hub = "acme" }\nsecrets = { api_key = "credential:../../etc/hunter2" }',
            "syncd: bad config: connectors.hub.secrets.api_key: a credential name is one file name",
        ),
        (
            "status",
            'settings = { hub = "acme" }\nsecrets = { api_key = "env:K" }\ntimeout = 5',
            "syncd: bad config: connectors.hub.timeout: Extra inputs are not permitted",
        ),
    ],
)
def test_a_bad_connector_table_is_78_and_one_line(
    tmp_path: Path, command: str, table: str, line: str
) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(BASE.format(db=tmp_path / "g.db") + table + "\n")
    result = run(command, "--config", str(config), env={"K": "key"})
    assert result.returncode == 78, result.stderr
    assert result.stderr.startswith(line), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr
    assert not (tmp_path / "g.db").exists()  # refused before anything was opened


def test_a_secret_with_a_line_break_is_78(tmp_path: Path) -> None:
    secret = tmp_path / "api_key"
    secret.write_text("hunter2\nX-Injected: yes\n")
    config = tmp_path / "syncd.toml"
    table = f'settings = {{ hub = "acme" }}\nsecrets = {{ api_key = "file:{secret}" }}\n'
    config.write_text(BASE.format(db=tmp_path / "g.db") + table)
    for command in ("once", "run"):
        result = run(command, "--config", str(config))
        assert result.returncode == 78, result.stderr
        assert result.stderr == (
            "syncd: bad config: connectors.hub.secrets.api_key: "
            "the secret contains a line break or a control character\n"
        )


def test_replicas_on_sqlite_are_78_and_say_they_need_postgresql(tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    table = 'settings = { hub = "acme" }\nsecrets = { api_key = "env:K" }\n'
    config.write_text(BASE.format(db=tmp_path / "g.db") + table + "\n[lease]\nreplicas = true\n")
    result = run("run", "--config", str(config), env={"K": "key"})
    assert result.returncode == 78, result.stderr
    assert result.stderr == (
        "syncd: bad config: lease.replicas: replicas need PostgreSQL: database.url is SQLite\n"
    )
    assert not (tmp_path / "g.db").exists()
