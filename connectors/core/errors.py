"""Errors raised by connectors; none carries headers, query strings or secrets."""

from __future__ import annotations

from typing import ClassVar


def strip_query(path: str) -> str:
    """Return a path without its query string or fragment."""
    return path.split("?", 1)[0].split("#", 1)[0]


class ConnectorError(Exception):
    """Base class for every error a connector raises."""

    retryable: ClassVar[bool] = False

    def __init__(self, vendor: str, message: str) -> None:
        super().__init__(f"{vendor}: {message}")
        self.vendor = vendor


class ConnectorConfigError(ConnectorError):
    """A connector was constructed with missing or invalid settings."""


class UnsupportedOperation(ConnectorError):
    """The vendor has no API for the requested operation."""


class WriteFenced(ConnectorError):
    """This process's lease ran out: the write was not sent (whoever holds it now sends it)."""


class InvalidIdentifierError(ConnectorError):
    """An id cannot name one resource in a URL path; retrying will not change that."""


class VendorRequestError(ConnectorError):
    """A request to a vendor did not succeed."""

    def __init__(
        self, vendor: str, method: str, path: str, detail: str, status: int | None = None
    ) -> None:
        self.method = method.upper()
        self.path = strip_query(path)
        self.status = status
        self.detail = detail
        super().__init__(vendor, f"{self.method} {self.path} -> {detail}")


class VendorHTTPError(VendorRequestError):
    """The vendor answered with an error status that retrying will not fix.

    `reason` is the vendor's own message from the body, trimmed and redacted (None: none).
    """

    def __init__(
        self, vendor: str, method: str, path: str, status: int, reason: str | None = None
    ) -> None:
        self.reason = reason
        detail = f"HTTP {status}: {reason}" if reason else f"HTTP {status}"
        super().__init__(vendor, method, path, detail, status)


class AuthenticationError(VendorHTTPError):
    """The vendor rejected the credentials (401/403); park the connector."""


class AccountExistsError(VendorHTTPError):
    """The vendor refused a create because an account with that email exists; look it up."""


class RateLimitedError(VendorHTTPError):
    """The vendor kept answering 429 after every allowed attempt."""


class VendorServerError(VendorHTTPError):
    """The vendor answered 5xx."""

    retryable = True


class VendorUnavailableError(VendorRequestError):
    """The request timed out or the connection failed."""

    retryable = True


class MalformedResponseError(VendorRequestError):
    """The vendor answered 2xx with a body that is not the JSON it promised."""

    retryable = True


class ResponseTooLargeError(MalformedResponseError):
    """The vendor's answer is larger than the connector's `max_response_bytes`."""

    retryable = False  # the same request brings the same body: retrying only costs memory

    def __init__(self, vendor: str, method: str, path: str, limit: int) -> None:
        super().__init__(vendor, method, path, f"response larger than {limit} bytes")
        self.limit = limit


class IncompleteListing(ConnectorError):
    """A listing looped, hit its page cap or was cut short; it proves nothing missing."""

    def __init__(self, vendor: str, path: str, reason: str, *, pages: int, records: int) -> None:
        self.path = strip_query(path)
        self.reason = reason
        self.pages = pages
        self.records = records
        super().__init__(
            vendor,
            f"listing {self.path} incomplete after {pages} pages, {records} records: {reason}",
        )
