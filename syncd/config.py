"""The daemon's TOML config: validated at start, secrets only by reference."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.core.endpoints import base_url_problem, label_problem
from connectors.core.http import DEFAULT_MAX_RESPONSE_BYTES
from connectors.registry import VENDORS
from syncd.values import MAPPED, allowed_problem

SECRET_SCHEMES = ("env:", "file:", "credential:")
WEBHOOK_HEADER = "X-Syncd-Webhook-Secret"
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")


class ConfigError(Exception):
    """The config is unusable; the message names the key and the problem."""


class KeyProblem(ValueError):
    """A problem with one key inside the value being validated; the key extends its path."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def _secret_reference(value: str) -> str:
    if (problem := secret_reference_problem(value)) is not None:
        raise ValueError(problem)
    return value


# Every secret in the config: a reference (env:NAME, file:PATH or credential:NAME), never a value.
SecretReference = Annotated[str, AfterValidator(_secret_reference)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Strict):
    """Where the identity graph lives."""

    url: str = "sqlite:///syncd.db"


class AuthorityConfig(_Strict):
    """The authoritative source of people."""

    hr_feed: Path
    poll_interval: float = Field(default=30.0, gt=0)
    # A feed missing more than this share of the people it last held deprovisions nobody.
    max_missing_share: float = Field(default=0.1, ge=0, le=1)
    missing_allowance: int = Field(default=1, ge=0)
    # A feed with more than this share of invalid or rejected rows is refused whole.
    max_invalid_share: float = Field(default=0.01, ge=0, le=1)


class GuardConfig(_Strict):
    """Limits on deactivations and login email changes one cycle may push without approval."""

    max_deactivations: int = Field(default=10, ge=0)
    max_deactivation_share: float = Field(default=0.05, ge=0, le=1)
    max_email_changes: int = Field(default=10, ge=0)
    # Seconds over which the leavers an authority other than the HR file sends are counted.
    deprovision_window: float = Field(default=3600, gt=0)


class ProvisionConfig(_Strict):
    """Who gets a new account at a vendor (any rule that matches)."""

    domains: list[str] = []
    groups: list[str] = []
    attributes: dict[str, str] = {}


class WebhookConfig(_Strict):
    """How a vendor's webhooks to this connector prove themselves: a shared secret."""

    secret: SecretReference
    carried_in: Literal["header", "path"] = Field(default="header", alias="in")
    header: str = WEBHOOK_HEADER

    @field_validator("header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not _HEADER_NAME.fullmatch(value):
            raise ValueError("must be an HTTP header name (letters, digits, '-'; 1 to 64)")
        return value


class ConnectorConfig(_Strict):
    """One configured vendor instance."""

    vendor: str
    base_url: str | None = None
    allow_insecure_http: StrictBool = False  # plain http:// to a host that is not loopback
    rate: float | None = Field(default=None, gt=0)  # a ceiling; None: the budget probes up
    burst: int = Field(default=2, ge=1)
    poll_interval: float = Field(default=300.0, gt=0)
    allow_delete: bool = False
    secrets: dict[str, SecretReference] = {}
    settings: dict[str, Any] = {}
    provision: ProvisionConfig = ProvisionConfig()
    deactivate_orphans: bool = False
    # Accounts linked by email (not created by syncd) get roles, groups, email changes and
    # reactivation only once confirmed: by `syncd link`, or for all of them by this switch.
    trust_email_links: bool = False
    staleness_limit: float | None = Field(default=None, gt=0)
    max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES, gt=0)
    # Our role and group names as the vendor's: {"Engineering Manager" = "manager", "*" = "user"}.
    values: dict[str, dict[str, str]] = {}
    webhook: WebhookConfig | None = None  # the vendor's webhooks, taken as hints

    @field_validator("vendor")
    @classmethod
    def _known_vendor(cls, value: str) -> str:
        if value not in VENDORS:
            raise ValueError(f"unknown vendor {value!r} (known: {', '.join(sorted(VENDORS))})")
        return value

    @model_validator(mode="after")
    def _safe_endpoint(self) -> ConnectorConfig:
        """Refuse an address that would send credentials in clear, in the URL, or astray."""
        if "base_url" in self.settings:
            raise KeyProblem("settings.base_url", "set base_url in the connector's own table")
        if self.base_url is not None:
            problem = base_url_problem(self.base_url, allow_insecure_http=self.allow_insecure_http)
            if problem is not None:
                raise KeyProblem("base_url", problem)
        for key in sorted(VENDORS[self.vendor].connector.label_settings & set(self.settings)):
            if (problem := label_problem(self.settings[key])) is not None:
                raise KeyProblem(f"settings.{key}", problem)
        return self

    @model_validator(mode="after")
    def _accepted_values(self) -> ConnectorConfig:
        """Refuse a value map to a value the vendor's reference says it does not accept."""
        allowed = VENDORS[self.vendor].connector.allowed_values
        for key, table in self.values.items():
            if key not in MAPPED:
                raise KeyProblem(f"values.{key}", f"only {' and '.join(MAPPED)} can be mapped")
            for ours, theirs in table.items():
                if problem := allowed_problem(key, theirs, allowed.get(key, frozenset())):
                    raise KeyProblem(f"values.{key}.{ours}", problem)
        return self


class PushConfig(_Strict):
    """How failed writes are retried."""

    max_attempts: int = Field(default=5, ge=1)
    base_delay: float = Field(default=2.0, gt=0)
    max_delay: float = Field(default=300.0, gt=0)


class HealthConfig(_Strict):
    """Where the health endpoint listens."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class WebhooksConfig(_Strict):
    """The webhook listener: where it listens, how big a body and how many hints it takes."""

    host: str = "127.0.0.1"
    port: int = Field(default=8444, ge=0, le=65535)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=16 * 1024 * 1024)
    queue: int = Field(default=1000, ge=1)  # hints waiting per connector; more are dropped


class ScimConfig(_Strict):
    """The SCIM 2.0 listener an identity provider provisions people through."""

    host: str = "127.0.0.1"
    port: int = Field(default=8443, ge=0, le=65535)
    token: SecretReference
    tls_cert: Path | None = None
    tls_key: Path | None = None
    actor: str = Field(default="idp", min_length=1, max_length=100)

    @model_validator(mode="after")
    def _tls_pair(self) -> ScimConfig:
        """Both TLS files or neither, and each one exists."""
        if (self.tls_cert is None) != (self.tls_key is None):
            missing = "tls_key" if self.tls_key is None else "tls_cert"
            raise KeyProblem(missing, "set tls_cert and tls_key together, or neither")
        for key, path in (("tls_cert", self.tls_cert), ("tls_key", self.tls_key)):
            if path is not None and not path.is_file():
                raise KeyProblem(key, f"{path} is not a file")
        return self


class LeaseConfig(_Strict):
    """How long a lease lasts unrenewed (renewed at a third of that), and whether replicas share.

    With `replicas = true`, several `syncd run` processes on one PostgreSQL database divide
    the connectors and the authority between them; else one process holds the writer lease.
    """

    ttl: float = Field(default=30.0, ge=1)
    replicas: bool = False


class Config(_Strict):
    """The whole config file."""

    database: DatabaseConfig = DatabaseConfig()
    authority: AuthorityConfig | None = None
    guard: GuardConfig = GuardConfig()
    push: PushConfig = PushConfig()
    health: HealthConfig = HealthConfig()
    lease: LeaseConfig = LeaseConfig()
    webhooks: WebhooksConfig | None = None
    scim: ScimConfig | None = None
    precedence: dict[str, list[str]] = {}
    connectors: dict[str, ConnectorConfig] = {}

    @field_validator("precedence")
    @classmethod
    def _known_attributes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        from syncd.plan import CANONICAL

        for key, sources in value.items():
            if key not in CANONICAL:
                raise ValueError(f"{key!r} is not a canonical attribute ({', '.join(CANONICAL)})")
            if not sources:
                raise ValueError(f"{key!r} needs at least one source")
        return value

    @model_validator(mode="after")
    def _webhooks_listen(self) -> Config:
        """Refuse a connector's webhook secret that no listener would ever check."""
        if self.webhooks is None:
            for name, item in self.connectors.items():
                if item.webhook is not None:
                    raise ValueError(f"connectors.{name}.webhook: needs a [webhooks] table")
        return self

    @model_validator(mode="after")
    def _replicas_share_postgresql(self) -> Config:
        """Replicas coordinate through PostgreSQL; SQLite has one writer."""
        if self.lease.replicas and self.database.url.lower().startswith("sqlite"):
            raise KeyProblem("lease.replicas", "replicas need PostgreSQL: database.url is SQLite")
        return self

    @model_validator(mode="after")
    def _known_sources(self) -> Config:
        from syncd.plan import AUTHORITY, AUTHORITY_SOURCES

        known = {AUTHORITY, *AUTHORITY_SOURCES, *self.connectors}
        for key, sources in self.precedence.items():
            unknown = [source for source in sources if source not in known]
            if unknown:
                raise ValueError(
                    f"precedence.{key}: unknown source(s) {', '.join(unknown)} "
                    f"(use 'authority', {', '.join(map(repr, AUTHORITY_SOURCES))} "
                    "or a connector name)"
                )
        return self


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        path = [str(part) for part in item["loc"]]
        message = item["msg"].removeprefix("Value error, ")
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, KeyProblem):
            path.append(cause.key)
            message = cause.problem
        problems.append(f"{'.'.join(path) or '(top level)'}: {message}")
    return "; ".join(problems)


def load_config(path: Path) -> Config:
    """Read and validate a config file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def secret_reference_problem(reference: str) -> str | None:
    """What is wrong with a secret reference (None: it is one)."""
    if not reference.startswith(SECRET_SCHEMES):
        return (
            "must be a reference (env:NAME, file:PATH or credential:NAME), never the secret itself"
        )
    return reference_problem(reference)


def reference_problem(reference: str) -> str | None:
    """What is wrong with a secret reference that has a known scheme."""
    scheme, _, target = reference.partition(":")
    if not target:
        return f"{scheme}: needs a name after the colon"
    if "\0" in target:
        return "must not contain a NUL character"
    if scheme == "credential" and (target in (".", "..") or "/" in target or "\\" in target):
        return "a credential name is one file name, without '/', '\\', '.' or '..'"
    return None


def resolve_secrets(
    connector: str, references: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Read each secret from the environment, a file or systemd's credentials directory."""
    return {
        name: resolve_secret(f"connectors.{connector}.secrets.{name}", reference, environ)
        for name, reference in references.items()
    }


def resolve_secret(key: str, reference: str, environ: Mapping[str, str] | None = None) -> str:
    """Read the secret `reference` names; a ConfigError names `key` if it cannot."""
    env = os.environ if environ is None else environ
    if not reference.startswith(SECRET_SCHEMES):
        raise ConfigError(f"{key}: must be env:NAME, file:PATH or credential:NAME")
    if (problem := reference_problem(reference)) is not None:
        raise ConfigError(f"{key}: {problem}")
    scheme, _, target = reference.partition(":")
    if scheme == "env":
        value = env.get(target)
        if not value:
            raise ConfigError(f"{key}: environment variable {target} is not set")
    else:
        if scheme == "credential":
            directory = env.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise ConfigError(f"{key}: $CREDENTIALS_DIRECTORY is not set")
            file = Path(directory) / target
        else:
            file = Path(target)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{key}: cannot read {file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{key}: {file} is not UTF-8 text") from None
        # One line ending closes a file written by an editor or `echo`; it is not the secret.
        value = text.removesuffix("\n").removesuffix("\r").strip(" \t")
        if not value:
            raise ConfigError(f"{key}: {file} is empty")
    if not value.isprintable():
        raise ConfigError(f"{key}: the secret contains a line break or a control character")
    return value
