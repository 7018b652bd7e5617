"""Vendor connectors, the shared HTTP layer, paginators and vendor simulators."""

from connectors.auth import Auth, BasicAuth, BearerAuth, CombinedAuth, HeaderAuth
from connectors.base import Capabilities, Connector
from connectors.budget import RateBudget, Ticket
from connectors.errors import (
    AuthenticationError,
    ConnectorConfigError,
    ConnectorError,
    IncompleteListing,
    MalformedResponseError,
    RateLimitedError,
    ResponseTooLargeError,
    UnsupportedOperation,
    VendorHTTPError,
    VendorRequestError,
    VendorServerError,
    VendorUnavailableError,
)
from connectors.http import VendorHttp
from connectors.pagination import (
    CursorPaginator,
    ListingSource,
    PageCountPaginator,
    PageNumberPaginator,
    PageTotalPaginator,
    Paginator,
)
from connectors.priority import Priority, PrioritySemaphore
from connectors.records import VendorAccount
from connectors.redaction import redact_secrets, register_secret
from connectors.retry import RetryPolicy, parse_retry_after
from connectors.session import new_session, open_session

__all__ = [
    "Auth",
    "AuthenticationError",
    "BasicAuth",
    "BearerAuth",
    "Capabilities",
    "CombinedAuth",
    "Connector",
    "ConnectorConfigError",
    "ConnectorError",
    "CursorPaginator",
    "HeaderAuth",
    "IncompleteListing",
    "ListingSource",
    "MalformedResponseError",
    "PageCountPaginator",
    "PageNumberPaginator",
    "PageTotalPaginator",
    "Paginator",
    "Priority",
    "PrioritySemaphore",
    "RateBudget",
    "RateLimitedError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "Ticket",
    "UnsupportedOperation",
    "VendorAccount",
    "VendorHTTPError",
    "VendorHttp",
    "VendorRequestError",
    "VendorServerError",
    "VendorUnavailableError",
    "new_session",
    "open_session",
    "parse_retry_after",
    "redact_secrets",
    "register_secret",
]
