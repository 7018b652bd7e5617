"""Vendor connectors, the shared HTTP layer, paginators and vendor simulators."""

from connectors.core.auth import (
    Auth,
    BasicAuth,
    BearerAuth,
    CombinedAuth,
    HeaderAuth,
    StaticHeaders,
)
from connectors.core.base import Capabilities, Connector, ConnectorArgs
from connectors.core.budget import RateBudget, Ticket
from connectors.core.errors import (
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
from connectors.core.http import VendorHttp
from connectors.core.pagination import (
    CursorPaginator,
    ListingSource,
    OffsetLimitPaginator,
    PageCountPaginator,
    PageNumberPaginator,
    PageTotalPaginator,
    Paginator,
    StartIndexPaginator,
)
from connectors.core.priority import Priority, PrioritySemaphore
from connectors.core.records import VendorAccount
from connectors.core.redaction import redact_secrets, register_secret
from connectors.core.replacing import ReplacingConnector
from connectors.core.retry import RetryPolicy, parse_retry_after
from connectors.core.session import new_session, open_session

__all__ = [
    "Auth",
    "AuthenticationError",
    "BasicAuth",
    "BearerAuth",
    "Capabilities",
    "CombinedAuth",
    "Connector",
    "ConnectorArgs",
    "ConnectorConfigError",
    "ConnectorError",
    "CursorPaginator",
    "HeaderAuth",
    "IncompleteListing",
    "ListingSource",
    "MalformedResponseError",
    "OffsetLimitPaginator",
    "PageCountPaginator",
    "PageNumberPaginator",
    "PageTotalPaginator",
    "Paginator",
    "Priority",
    "PrioritySemaphore",
    "RateBudget",
    "RateLimitedError",
    "ReplacingConnector",
    "ResponseTooLargeError",
    "RetryPolicy",
    "StartIndexPaginator",
    "StaticHeaders",
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
