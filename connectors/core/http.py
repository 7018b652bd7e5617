"""The one way a connector talks to its vendor: budgeted, retried, authenticated, redacted."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp
import anyio
import orjson
import structlog
from yarl import URL

from connectors.core.auth import Auth
from connectors.core.budget import RateBudget, Ticket
from connectors.core.errors import (
    AuthenticationError,
    ConnectorError,
    MalformedResponseError,
    RateLimitedError,
    ResponseTooLargeError,
    VendorHTTPError,
    VendorServerError,
    VendorUnavailableError,
    WriteFenced,
    strip_query,
)
from connectors.core.priority import Priority
from connectors.core.redaction import contains_secret
from connectors.core.retry import RetryPolicy, parse_retry_after
from connectors.core.vendor_message import vendor_message

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
_READ_CHUNK = 64 * 1024
_READS = frozenset({"GET", "HEAD", "OPTIONS"})

RequestObserver = Callable[[str, str, int, float], None]
"""Called with connector, method, status (0: no answer) and seconds, once per attempt."""


def _always() -> bool:
    return True


class _Throttled(Exception):
    """The vendor answered 429; the budget has already taken note."""


@dataclass(frozen=True, slots=True)
class _Request:
    """One prepared request, sent as often as its retries need."""

    method: str
    path: str
    params: Mapping[str, str] | None
    body: bytes | None
    headers: Mapping[str, str]


class VendorHttp:
    """JSON requests to one vendor through its rate budget, with retries and auth headers."""

    def __init__(
        self,
        *,
        vendor: str,
        connector: str,
        session: aiohttp.ClientSession,
        base_url: str,
        auth: Auth,
        budget: RateBudget,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.vendor = vendor
        self.connector = connector
        self.budget = budget
        self.retry = retry or RetryPolicy()
        self._session = session
        self._base_url = URL(base_url.rstrip("/"))
        if not self._base_url.is_absolute() or self._base_url.query_string:
            raise ValueError("base_url must be an absolute URL without a query string")
        self._base = str(self._base_url)
        self._headers = {**(headers or {}), **auth.headers()}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._log = structlog.get_logger("connectors.core.http", connector=connector)
        self.observer: RequestObserver | None = None
        # Asked immediately before each write is sent: False once this process's lease ran
        # out, so a process that was paused wakes and stops before the write, never after.
        self.may_write: Callable[[], bool] = _always
        self.max_response_bytes = max_response_bytes

    @property
    def max_response_bytes(self) -> int:
        """The largest response body read; a larger one is a ResponseTooLargeError."""
        return self._max_response_bytes

    @max_response_bytes.setter
    def max_response_bytes(self, value: int) -> None:
        if value <= 0:
            raise ValueError("max_response_bytes must be positive")
        self._max_response_bytes = value

    async def get_or_none(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        priority: Priority = Priority.READ,
    ) -> object | None:
        """GET a resource; None when the vendor answers 404 (an empty 200 is malformed)."""
        try:
            body = await self.request("GET", path, params=params, priority=priority)
        except VendorHTTPError as error:
            if error.status == 404:
                return None
            raise
        if body is None:
            raise MalformedResponseError(self.vendor, "GET", path, "empty body")
        return body

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: object = None,
        priority: Priority = Priority.READ,
        headers: Mapping[str, str] | None = None,
    ) -> object:
        """Send one request and return its decoded JSON body (None when empty).

        `headers` add to (or override) the connector's own for this request, e.g. a
        vendor's media type or a precondition such as `If-Match`.

        Timeouts, connection errors, 5xx and malformed JSON are retried with capped
        exponential backoff; 429s are paced by the budget; other errors raise at once.
        """
        method = method.upper()
        if not path.startswith("/"):
            raise ValueError("path must start with '/'")
        if contains_secret(path) or any(contains_secret(v) for v in (params or {}).values()):
            raise ValueError("refusing to put a secret in a URL")
        body = orjson.dumps(json) if json is not None else None
        sent = dict(self._headers)
        if body is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        prepared = _Request(method, path, params, body, sent)
        failures = throttled = 0
        while True:
            try:
                return await self._attempt(prepared, priority)
            except _Throttled:
                throttled += 1
                if throttled > self.retry.max_throttled:
                    raise RateLimitedError(self.vendor, method, path, 429) from None
            except ConnectorError as error:
                failures += 1
                if not error.retryable or failures >= self.retry.attempts:
                    raise
                delay = self.retry.delay(failures)
                self._log.warning(
                    "http.retry",
                    method=method,
                    path=strip_query(path),
                    attempt=failures,
                    delay=round(delay, 3),
                    reason=getattr(error, "detail", type(error).__name__),
                )
                await anyio.sleep(delay)

    def resolve_link(self, link: str) -> tuple[str, dict[str, str]]:
        """Turn a vendor's next-page link into a path and query for `request`.

        Raises ValueError for a link to another origin: credentials never follow it.
        """
        url = URL(link)
        if url.is_absolute() and url.origin() != self._base_url.origin():
            raise ValueError("next-page link points to another origin")
        path = url.path if url.path.startswith("/") else "/" + url.path
        prefix = self._base_url.path.rstrip("/")
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            path = path[len(prefix) :] or "/"
        return path, dict(url.query)

    async def _attempt(self, request: _Request, priority: Priority) -> object:
        """Send once within the budget and classify the outcome."""
        async with self.budget.slot(priority) as ticket:
            status, payload = await self._send(request, ticket)
        method, path = request.method, request.path
        if status == 429:
            raise _Throttled
        reason = vendor_message(payload) if status >= 300 else None
        if status in (401, 403):
            raise AuthenticationError(self.vendor, method, path, status, reason)
        if status >= 500:
            raise VendorServerError(self.vendor, method, path, status, reason)
        if status >= 300:  # redirects are not followed: they could carry credentials elsewhere
            raise VendorHTTPError(self.vendor, method, path, status, reason)
        if not payload.strip():
            return None
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise MalformedResponseError(self.vendor, method, path, "malformed JSON") from None

    async def _send(self, request: _Request, ticket: Ticket) -> tuple[int, bytes | bytearray]:
        """Perform the HTTP exchange and report the outcome to the budget and the observer."""
        method, path = request.method, request.path
        if method not in _READS and not self.may_write():
            raise WriteFenced(self.vendor, f"{method} {strip_query(path)} not sent: lease ran out")
        started = time.perf_counter()
        try:
            async with self._session.request(
                method,
                self._base + path,
                params=request.params,
                data=request.body,
                headers=request.headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                payload = await self._read_body(response)
        except TimeoutError:
            self._observe(method, 0, started)
            raise VendorUnavailableError(self.vendor, method, path, "timed out") from None
        except (aiohttp.ClientError, OSError) as exc:
            self._observe(method, 0, started)
            # Named by type only: aiohttp's messages include the full URL with its query.
            detail = f"connection failed ({type(exc).__name__})"
            raise VendorUnavailableError(self.vendor, method, path, detail) from None
        self._observe(method, status, started)
        if status == 429:
            self.budget.on_throttled(ticket, retry_after)
        else:
            self.budget.on_accepted(ticket)
        if payload is not None:
            return status, payload
        if status < 300:
            raise ResponseTooLargeError(self.vendor, method, path, self.max_response_bytes)
        return status, b""  # an error status says all there is; its body is never read

    async def _read_body(self, response: aiohttp.ClientResponse) -> bytearray | None:
        """Read the body up to `max_response_bytes`; None, and the connection closed, past it."""
        limit = self.max_response_bytes
        declared = response.content_length
        body = bytearray()
        if declared is None or declared <= limit:
            # One byte past the limit proves a body too large without reading any more of it.
            while len(body) <= limit:
                chunk = await response.content.read(min(_READ_CHUNK, limit + 1 - len(body)))
                if not chunk:
                    return body
                body += chunk
        response.close()  # never hand a half-read connection back to the pool
        return None

    def _observe(self, method: str, status: int, started: float) -> None:
        """Tell the observer, if any, how one attempt ended and how long it took."""
        if self.observer is not None:
            self.observer(self.connector, method, status, time.perf_counter() - started)
