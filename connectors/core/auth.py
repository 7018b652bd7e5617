"""Credentials applied as request headers, never as URL parameters."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Protocol

from connectors.core.redaction import register_secret


class Auth(Protocol):
    """Something that turns credentials into request headers."""

    def headers(self) -> Mapping[str, str]:
        """Return the headers that authenticate a request."""
        ...


class StaticHeaders:
    """Fixed request headers; shown by name only, so a subclass may carry credentials."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def headers(self) -> Mapping[str, str]:
        """Return the headers."""
        return self._headers

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._headers)})"


class HeaderAuth(StaticHeaders):
    """Credentials carried in vendor-specific headers, e.g. `X-API-Key: KEY`."""

    def __init__(self, headers: Mapping[str, str], *secrets: str) -> None:
        for secret in (*headers.values(), *secrets):
            register_secret(secret)
        super().__init__(headers)


class BearerAuth(HeaderAuth):
    """`Authorization: Bearer TOKEN`."""

    def __init__(self, token: str) -> None:
        super().__init__({"Authorization": f"Bearer {token}"}, token)


class BasicAuth(HeaderAuth):
    """HTTP Basic `Authorization: Basic base64(user:password)`."""

    def __init__(self, user: str, password: str) -> None:
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        super().__init__({"Authorization": f"Basic {encoded}"}, user, password, encoded)


class CombinedAuth(StaticHeaders):
    """Several credential schemes sent together (e.g. subscription key plus bearer token)."""

    def __init__(self, *parts: Auth) -> None:
        super().__init__({name: value for part in parts for name, value in part.headers().items()})
