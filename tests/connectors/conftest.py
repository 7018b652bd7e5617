"""Shared fixtures: a running example simulator, a client session, captured logs."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import orjson
import pytest
import structlog

from connectors import IncompleteListing, RateBudget, RetryPolicy, open_session, redact_secrets
from connectors.core.base import Connector
from connectors.core.records import VendorAccount
from connectors.sim import serve
from connectors.sim.base import VendorSimulator
from connectors.vendors.example.connector import ExampleConnector
from connectors.vendors.example.simulator import ExampleSimulator

TOKEN = "tok-Secret-4242-abcdef"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
AnyConnector = TypeVar("AnyConnector", bound=Connector)


@pytest.fixture
def simulator() -> ExampleSimulator:
    """An example simulator with 250 seeded users (not yet serving)."""
    return ExampleSimulator(users=250, seed=7, token=TOKEN)


@pytest.fixture
async def url(simulator: VendorSimulator) -> AsyncIterator[str]:
    """The base URL of the module's `simulator`, serving on 127.0.0.1."""
    async with serve(simulator) as base:
        yield base


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """The shared client session."""
    async with open_session() as client:
        yield client


def build_connector(
    connector_class: type[AnyConnector],
    session: aiohttp.ClientSession,
    url: str | None,
    secrets: Mapping[str, str],
    *,
    budget: RateBudget | None = None,
    retry: RetryPolicy = FAST_RETRY,
    timeout: float = 5.0,
    **settings: Any,
) -> AnyConnector:
    """Build any vendor's connector against a simulator, with fast retries and a roomy budget."""
    options: dict[str, Any] = {"base_url": url, **settings}
    return connector_class(
        name=f"{connector_class.vendor}-test",
        session=session,
        secrets=secrets,
        budget=budget or RateBudget(1000, concurrency=8),
        retry=retry,
        timeout=timeout,
        **options,
    )


async def list_served(
    session: aiohttp.ClientSession,
    simulator: VendorSimulator,
    connect: Callable[[aiohttp.ClientSession, str], Connector],
) -> tuple[list[VendorAccount], list[dict[str, Any]], dict[str, Any]]:
    """Serve the simulator and list it with the connector `connect` builds.

    Returns the accounts, the users the simulator holds and its stats.
    """
    async with serve(simulator) as url:
        accounts = [account async for account in connect(session, url).list_accounts()]
        held = (await sim_get(session, url, "users"))["users"]
        stats = await sim_get(session, url, "stats")
    return accounts, held, stats


async def incomplete_listing(connector: Connector) -> tuple[IncompleteListing, list[str]]:
    """List until the listing ends incomplete (else the test fails); return that and the ids."""
    seen: list[str] = []
    with pytest.raises(IncompleteListing) as caught:
        async for account in connector.list_accounts():
            seen.append(account.external_id)
    return caught.value, seen


def make_connector(
    session: aiohttp.ClientSession,
    url: str,
    *,
    budget: RateBudget | None = None,
    token: str = TOKEN,
    timeout: float = 5.0,
    retry: RetryPolicy = FAST_RETRY,
    connector_class: type[ExampleConnector] = ExampleConnector,
) -> ExampleConnector:
    """Build an example connector against a simulator."""
    return build_connector(
        connector_class,
        session,
        url,
        {"token": token},
        budget=budget or RateBudget(500, concurrency=8),
        retry=retry,
        timeout=timeout,
    )


@pytest.fixture
def connector(session: aiohttp.ClientSession, url: str) -> ExampleConnector:
    """An example connector wired to the running simulator."""
    return make_connector(session, url)


async def configure(session: aiohttp.ClientSession, url: str, **changes: object) -> None:
    """Change the simulator's settings through `PUT /_sim/config`."""
    async with session.put(f"{url}/_sim/config", json=changes) as response:
        assert response.status == 200, await response.text()


async def sim_get(session: aiohttp.ClientSession, url: str, what: str) -> Any:
    """Read `GET /_sim/<what>`."""
    async with session.get(f"{url}/_sim/{what}") as response:
        assert response.status == 200
        return await response.json()


@dataclass(frozen=True)
class Reply:
    """One raw HTTP answer: status, headers and JSON body (None when empty)."""

    status: int
    headers: Mapping[str, str]
    body: Any


async def throttled_replies(
    session: aiohttp.ClientSession, url: str, path: str, headers: Mapping[str, str]
) -> list[Reply]:
    """Limit the simulator to one request a second, then GET `path` three times at once."""
    await configure(session, url, rate=1, burst=1)
    replies = []
    for _ in range(3):
        async with session.get(f"{url}{path}", headers=headers) as response:
            body = await response.json(content_type=None) if await response.read() else None
            replies.append(Reply(response.status, response.headers, body))
    return replies


class LogLines:
    """Log lines rendered as JSON through the redaction processor."""

    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    @property
    def text(self) -> str:
        """Every rendered line."""
        return self._stream.getvalue()

    def events(self) -> list[dict[str, Any]]:
        """Every line, decoded."""
        return [orjson.loads(line) for line in self.text.splitlines() if line]

    def named(self, event: str) -> list[dict[str, Any]]:
        """The lines with this event name."""
        return [line for line in self.events() if line["event"] == event]


@pytest.fixture
def logs() -> Iterator[LogLines]:
    """Route structlog through redact_secrets into JSON lines for the test to read."""
    stream = io.StringIO()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            redact_secrets,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    try:
        yield LogLines(stream)
    finally:
        structlog.reset_defaults()
