"""Credentials applied as request headers, never as URL parameters."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Protocol

from connectors.core.redaction import REDACTED, register_secret


class Auth(Protocol):
    """Something that turns credentials into request headers."""

    def headers(self) -> Mapping[str, str]:
        """Return the headers that authenticate a request."""
        ...


class BearerAuth:
    """`Authorization: Bearer TOKEN`."""

    def __init__(self, token: str) -> None:
        register_secret(token)
        self._headers = {"Authorization": f"Bearer {token}"}

    def headers(self) -> Mapping[str, str]:
        """Return the Authorization header."""
        return self._headers

    def __repr__(self) -> str:
        return f"BearerAuth({REDACTED})"


class HeaderAuth:
    """Credentials carried in vendor-specific headers, e.g. `X-API-Key: KEY`."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        for value in headers.values():
            register_secret(value)
        self._headers = dict(headers)

    def headers(self) -> Mapping[str, str]:
        """Return the credential headers."""
        return self._headers

    def __repr__(self) -> str:
        return f"HeaderAuth({', '.join(self._headers)})"


class BasicAuth:
    """HTTP Basic `Authorization: Basic base64(user:password)`."""

    def __init__(self, user: str, password: str) -> None:
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        for secret in (user, password, encoded):
            register_secret(secret)
        self._headers = {"Authorization": f"Basic {encoded}"}

    def headers(self) -> Mapping[str, str]:
        """Return the Authorization header."""
        return self._headers

    def __repr__(self) -> str:
        return f"BasicAuth({REDACTED})"


class CombinedAuth:
    """Several credential schemes sent together (e.g. subscription key plus bearer token)."""

    def __init__(self, *parts: Auth) -> None:
        self._headers: dict[str, str] = {}
        for part in parts:
            self._headers.update(part.headers())

    def headers(self) -> Mapping[str, str]:
        """Return the union of every part's headers."""
        return self._headers

    def __repr__(self) -> str:
        return f"CombinedAuth({', '.join(self._headers)})"
