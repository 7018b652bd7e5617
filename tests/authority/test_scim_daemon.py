"""The [scim] table and `syncd run` serving SCIM: config errors, TLS, the token kept out of logs."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import aiohttp
import anyio
import pytest

from syncd.config import ConfigError, load_config
from tests.authority.conftest import user_body
from tests.syncd.processes import start_syncd, stop, stop_gracefully
from tests.syncd.test_daemon import free_port

SECRET = "scim-daemon-secret-4b1d"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by openssl."""
    cert, key = directory / "scim.crt", directory / "scim.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


def config_error(tmp_path: Path, scim_table: str) -> str:
    """The ConfigError a config with this [scim] table raises."""
    path = tmp_path / "syncd.toml"
    path.write_text(f"[scim]\n{scim_table}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def test_bad_scim_tables_name_the_key(tmp_path: Path) -> None:
    assert config_error(tmp_path, 'token = "hunter2"').startswith("scim.token: must be a reference")
    assert "scim.token" in config_error(tmp_path, "port = 1")
    assert config_error(tmp_path, 'token = "env:T"\nport = 70000').startswith("scim.port")
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    message = config_error(tmp_path, f'token = "env:T"\ntls_cert = "{cert}"')
    assert message == "scim.tls_key: set tls_cert and tls_key together, or neither"
    message = config_error(
        tmp_path, f'token = "env:T"\ntls_cert = "{cert}"\ntls_key = "{tmp_path / "no.key"}"'
    )
    assert message.startswith("scim.tls_key:") and "is not a file" in message
    assert config_error(tmp_path, 'token = "env:T"\nactor = ""').startswith("scim.actor")
    path = tmp_path / "syncd.toml"
    path.write_text('[scim]\ntoken = "env:T"\n')
    settings = load_config(path).scim
    assert settings is not None
    assert (settings.host, settings.port, settings.actor) == ("127.0.0.1", 8443, "idp")


def test_an_unset_token_exits_78(tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "db"}"\n\n[health]\nport = {free_port()}\n\n'
        f'[scim]\nport = {free_port()}\ntoken = "env:SYNCD_TEST_NO_SUCH_TOKEN"\n'
    )
    process = start_syncd("run", config)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 78, stderr
    assert "scim.token: environment variable SYNCD_TEST_NO_SUCH_TOKEN is not set" in stderr
    assert "Traceback" not in stderr


async def test_syncd_run_serves_scim_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "syncd.db"}"\n\n'
        f"[health]\nport = {free_port()}\n\n"
        f'[scim]\nport = {port}\ntoken = "env:SCIM_TOKEN"\n'
        f'tls_cert = "{cert}"\ntls_key = "{key}"\nactor = "okta"\n'
    )
    log = (tmp_path / "daemon.log").open("w+")
    process = start_syncd(
        "run", config, stdout=log, stderr=subprocess.STDOUT, env={"SCIM_TOKEN": SECRET}
    )
    trusted = ssl.create_default_context(cafile=str(cert))
    base = f"https://127.0.0.1:{port}/scim/v2"
    headers = {"Authorization": f"Bearer {SECRET}"}
    try:
        async with aiohttp.ClientSession() as client:
            with anyio.fail_after(20):
                while True:
                    try:
                        async with client.get(f"{base}/ServiceProviderConfig", ssl=trusted) as r:
                            assert r.status == 401
                            break
                    except aiohttp.ClientConnectionError:
                        await anyio.sleep(0.1)
            async with client.post(
                f"{base}/Users", json=user_body("ada@example.com"), headers=headers, ssl=trusted
            ) as response:
                assert response.status == 201, await response.text()
    except BaseException:
        stop(process)
        raise
    output = stop_gracefully(process, log)
    assert "scim.listening" in output and f"https://127.0.0.1:{port}/scim/v2" in output
    assert SECRET not in output
