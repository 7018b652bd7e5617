"""The daemon's TOML config: validated at start, secrets only by reference."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from connectors.registry import VENDORS

SECRET_SCHEMES = ("env:", "file:", "credential:")


class ConfigError(Exception):
    """The config is unusable; the message names the key and the problem."""


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


class GuardConfig(_Strict):
    """Limits on deactivations one cycle may push without approval."""

    max_deactivations: int = Field(default=10, ge=0)
    max_deactivation_share: float = Field(default=0.05, ge=0, le=1)


class ProvisionConfig(_Strict):
    """Who gets a new account at a vendor (any rule that matches)."""

    domains: list[str] = []
    groups: list[str] = []
    attributes: dict[str, str] = {}


class ConnectorConfig(_Strict):
    """One configured vendor instance."""

    vendor: str
    base_url: str | None = None
    rate: float = Field(default=5.0, gt=0)
    burst: int = Field(default=2, ge=1)
    poll_interval: float = Field(default=300.0, gt=0)
    allow_delete: bool = False
    secrets: dict[str, str] = {}
    settings: dict[str, Any] = {}
    provision: ProvisionConfig = ProvisionConfig()
    deactivate_orphans: bool = False
    staleness_limit: float | None = Field(default=None, gt=0)

    @field_validator("vendor")
    @classmethod
    def _known_vendor(cls, value: str) -> str:
        if value not in VENDORS:
            raise ValueError(f"unknown vendor {value!r} (known: {', '.join(sorted(VENDORS))})")
        return value

    @field_validator("secrets")
    @classmethod
    def _references_only(cls, value: dict[str, str]) -> dict[str, str]:
        for name, reference in value.items():
            if not reference.startswith(SECRET_SCHEMES):
                raise ValueError(
                    f"secret {name!r} must be a reference (env:NAME, file:PATH or "
                    "credential:NAME), never the secret itself"
                )
        return value


class PushConfig(_Strict):
    """How failed writes are retried."""

    max_attempts: int = Field(default=5, ge=1)
    base_delay: float = Field(default=2.0, gt=0)
    max_delay: float = Field(default=300.0, gt=0)


class HealthConfig(_Strict):
    """Where the health endpoint listens."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class LeaseConfig(_Strict):
    """The writer lease: how long it lasts unrenewed (renewed at a third of that)."""

    ttl: float = Field(default=30.0, ge=1)


class Config(_Strict):
    """The whole config file."""

    database: DatabaseConfig = DatabaseConfig()
    authority: AuthorityConfig | None = None
    guard: GuardConfig = GuardConfig()
    push: PushConfig = PushConfig()
    health: HealthConfig = HealthConfig()
    lease: LeaseConfig = LeaseConfig()
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
    def _known_sources(self) -> Config:
        known = {"authority", *self.connectors}
        for key, sources in self.precedence.items():
            unknown = [source for source in sources if source not in known]
            if unknown:
                raise ValueError(
                    f"precedence.{key}: unknown source(s) {', '.join(unknown)} "
                    "(use 'authority' or a connector name)"
                )
        return self


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        problems.append(f"{key}: {item['msg']}")
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
        raise ConfigError(f"{path}: {_describe(exc)}") from None


def resolve_secrets(
    connector: str, references: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Read each secret from the environment, a file or systemd's credentials directory."""
    env = os.environ if environ is None else environ
    resolved = {}
    for name, reference in references.items():
        key = f"connectors.{connector}.secrets.{name}"
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
                value = file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{key}: cannot read {file}: {exc.strerror}") from None
            if not value:
                raise ConfigError(f"{key}: {file} is empty")
        resolved[name] = value
    return resolved
