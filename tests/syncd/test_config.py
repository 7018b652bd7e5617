"""Config loading and secret references."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

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
            "connectors.hub.vendor: unknown vendor 'nosuch'",
        ),
        (("rate = 2.5", "rate = -1"), "connectors.hub.rate: Input should be greater than 0"),
        (
            ('"env:HUB_TOKEN"', '"hunter2"'),
            "connectors.hub.secrets.token: must be a reference",
        ),
        (
            ("rate = 2.5", "rate = 2.5\nbase_ulr = 'https://x.example'"),
            "connectors.hub.base_ulr: Extra inputs are not permitted",
        ),
        (
            ("rate = 2.5", "rate = 2.5\nmax_response_bytes = 0"),
            "connectors.hub.max_response_bytes: Input should be greater than 0",
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
    assert str(caught.value).startswith(message) or "TOML" in message
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


def _connector(**fields: object) -> dict[str, object]:
    return {"connectors": {"acme": {"vendor": "example", "secrets": {"token": "env:T"}, **fields}}}


def _problem(data: dict[str, object], tmp_path: Path) -> str:
    """The one-line message load_config gives for this config."""
    path = tmp_path / "syncd.toml"
    path.write_text(_toml(data))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def _toml(data: object, prefix: str = "") -> str:
    """A tiny TOML writer for nested tables of strings, numbers, booleans and inline tables."""
    assert isinstance(data, dict)
    scalars, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict) and not prefix.startswith("inline"):
            tables.append(_toml(value, f"{prefix}.{key}" if prefix else key))
        else:
            scalars.append(f"{key} = {_inline(value)}")
    head = f"[{prefix}]\n" if prefix and scalars else ""
    return head + "".join(line + "\n" for line in scalars) + "\n".join(tables)


def _inline(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_inline(v)}" for k, v in value.items()) + " }"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 32 else c for c in text) + '"'


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"base_url": "https://user:hunter2@api.example.com"},
            "connectors.acme.base_url: must not hold a user or password (user:pass@)",
        ),
        (
            {"base_url": "https://hunter2@api.example.com"},
            "connectors.acme.base_url: must not hold a user or password",
        ),
        (
            {"base_url": "http://api.example.com"},
            "connectors.acme.base_url: plain http:// is only for loopback addresses",
        ),
        (
            {"base_url": "http://10.0.0.8:8080"},
            "connectors.acme.base_url: plain http:// is only for loopback addresses",
        ),
        (
            {"base_url": "http://127.0.0.1.nip.io"},
            "connectors.acme.base_url: plain http:// is only for loopback addresses",
        ),
        ({"base_url": "ftp://api.example.com"}, "connectors.acme.base_url: must be an https://"),
        ({"base_url": "api.example.com"}, "connectors.acme.base_url: must be an https://"),
        (
            {"base_url": "https://api.example.com/v1?key=hunter2"},
            "connectors.acme.base_url: must not have a query string",
        ),
        (
            {"base_url": "https://evil.example\\@api.example.com"},
            "connectors.acme.base_url: must not contain spaces, backslashes",
        ),
        (
            {"base_url": "https://api.example.com:99999"},
            "connectors.acme.base_url: is not a valid URL",
        ),
        (
            {"settings": {"base_url": "https://api.example.com"}},
            "connectors.acme.settings.base_url: set base_url in the connector's own table",
        ),
        (
            {"secrets": {"token": "credential:../hunter2"}},
            "connectors.acme.secrets.token: a credential name is one file name",
        ),
        (
            {"secrets": {"token": "credential:/etc/hostname"}},
            "connectors.acme.secrets.token: a credential name is one file name",
        ),
        (
            {"secrets": {"token": "credential:a\\b"}},
            "connectors.acme.secrets.token: a credential name is one file name",
        ),
        (
            {"secrets": {"token": "credential:.."}},
            "connectors.acme.secrets.token: a credential name is one file name",
        ),
        (
            {"secrets": {"token": "credential:."}},
            "connectors.acme.secrets.token: a credential name is one file name",
        ),
        (
            {"secrets": {"token": "credential:"}},
            "connectors.acme.secrets.token: credential: needs a name after the colon",
        ),
        (
            {"secrets": {"token": "env:"}},
            "connectors.acme.secrets.token: env: needs a name after the colon",
        ),
        (
            {"secrets": {"token": "credential:a\u0000b"}},
            "connectors.acme.secrets.token: must not contain a NUL character",
        ),
        ({"allow_insecure_http": "yes"}, "connectors.acme.allow_insecure_http: Input should be"),
        ({"typo": 1}, "connectors.acme.typo: Extra inputs are not permitted"),
        ({"vendor": "acme"}, "connectors.acme.vendor: unknown vendor 'acme' (known: appxite"),
    ],
)
def test_connector_rules_name_the_key(
    tmp_path: Path, fields: dict[str, object], message: str
) -> None:
    problem = _problem(_connector(**fields), tmp_path)
    assert problem.startswith(message), problem
    assert "hunter2" not in problem
    assert "\n" not in problem


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8080",
        "http://127.9.8.7",
        "http://localhost:9000/api",
        "http://LOCALHOST",
        "http://[::1]:8080",
        "http://[::ffff:127.0.0.1]:8080",
        "https://api.example.com/v1",
    ],
)
def test_plain_http_is_for_loopback_only(tmp_path: Path, base_url: str) -> None:
    path = tmp_path / "syncd.toml"
    path.write_text(_toml(_connector(base_url=base_url)))
    assert load_config(path).connectors["acme"].base_url == base_url
    elsewhere = base_url.replace(urlsplit(base_url).netloc, "vendor.example")
    problem = _problem(_connector(base_url=elsewhere.replace("https:", "http:")), tmp_path)
    assert problem.startswith("connectors.acme.base_url: plain http:// is only for loopback")


def test_insecure_http_needs_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "syncd.toml"
    path.write_text(_toml(_connector(base_url="http://vendor.lan", allow_insecure_http=True)))
    assert load_config(path).connectors["acme"].allow_insecure_http is True
    # Even then, never a password in the URL.
    path.write_text(_toml(_connector(base_url="http://u:p@vendor.lan", allow_insecure_http=True)))
    with pytest.raises(ConfigError, match=r"^connectors.acme.base_url: must not hold a user"):
        load_config(path)


@pytest.mark.parametrize(
    ("vendor", "key"), [("influitive", "hub"), ("thought_industries", "subdomain")]
)
@pytest.mark.parametrize(
    "value", ["evil.example.com/x?", "a.b", "-acme", "acme-", "a" * 64, "", "ac me", "acmé", 7]
)
def test_a_hostname_label_is_one_dns_label(
    tmp_path: Path, vendor: str, key: str, value: object
) -> None:
    fields = {"vendor": vendor, "secrets": {"api_key": "env:K"}, "settings": {key: value}}
    problem = _problem({"connectors": {"acme": fields}}, tmp_path)
    assert problem.startswith(f"connectors.acme.settings.{key}: must be one DNS label"), problem


@pytest.mark.parametrize(
    ("vendor", "key"), [("influitive", "hub"), ("thought_industries", "subdomain")]
)
@pytest.mark.parametrize("value", ["acme", "a", "a-1", "A" * 63, "0"])
def test_good_hostname_labels_load(tmp_path: Path, vendor: str, key: str, value: str) -> None:
    fields = {"vendor": vendor, "secrets": {"api_key": "env:K"}, "settings": {key: value}}
    path = tmp_path / "syncd.toml"
    path.write_text(_toml({"connectors": {"acme": fields}}))
    assert load_config(path).connectors["acme"].settings[key] == value
    fields["settings"] = {key: f"{value}.evil.example"}
    problem = _problem({"connectors": {"acme": fields}}, tmp_path)
    assert problem.startswith(f"connectors.acme.settings.{key}: must be one DNS label")


def test_max_response_bytes_defaults_to_32_mib(tmp_path: Path) -> None:
    path = tmp_path / "syncd.toml"
    path.write_text(_toml(_connector()))
    assert load_config(path).connectors["acme"].max_response_bytes == 32 * 1024 * 1024
    path.write_text(_toml(_connector(max_response_bytes=1024)))
    assert load_config(path).connectors["acme"].max_response_bytes == 1024


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("key\n", "key"),
        ("key\r\n", "key"),
        (" key \n", "key"),
    ],
)
def test_a_secret_file_may_end_in_one_line_break(
    tmp_path: Path, content: str, expected: str
) -> None:
    (tmp_path / "key").write_bytes(content.encode())
    assert resolve_secrets("hub", {"a": f"file:{tmp_path / 'key'}"}, {}) == {"a": expected}
    (tmp_path / "key").write_bytes(content.encode() + b"\n")  # one line break, not two
    with pytest.raises(ConfigError, match="the secret contains a line break"):
        resolve_secrets("hub", {"a": f"file:{tmp_path / 'key'}"}, {})


@pytest.mark.parametrize(
    "content", ["key\n\n", "key\nX-Injected: 1\n", "key\rmore", "ke\u0000y", "\nkey"]
)
def test_a_secret_with_a_line_break_inside_is_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / "key").write_bytes(content.encode())
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "hub").write_bytes(content.encode())
    env = {"A": content, "CREDENTIALS_DIRECTORY": str(creds)}
    for reference in (f"file:{tmp_path / 'key'}", "credential:hub", "env:A"):
        with pytest.raises(ConfigError) as caught:
            resolve_secrets("hub", {"a": reference}, env)
        assert str(caught.value) == (
            "connectors.hub.secrets.a: the secret contains a line break or a control character"
        )


def test_resolving_refuses_a_credential_outside_the_directory(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (tmp_path / "outside").write_text("not-for-us")
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    for name in ("../outside", str(tmp_path / "outside"), "..", "."):
        with pytest.raises(ConfigError, match="a credential name is one file name"):
            resolve_secrets("hub", {"a": f"credential:{name}"}, env)
    with pytest.raises(ConfigError, match="must be env:NAME, file:PATH or credential:NAME"):
        resolve_secrets("hub", {"a": "hunter2"}, env)
