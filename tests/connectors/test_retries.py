"""Retries: what is retried, how often, and the errors that end a request."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from connectors import (
    AuthenticationError,
    MalformedResponseError,
    RetryPolicy,
    VendorHTTPError,
    VendorServerError,
    VendorUnavailableError,
)
from connectors.sim import serve
from connectors.vendors.example.connector import ExampleConnector
from connectors.vendors.example.simulator import ExampleSimulator
from tests.connectors.conftest import TOKEN, LogLines, configure, make_connector, sim_get


def _count(stats: dict[str, object], status: int) -> int:
    routes = stats["by_route"]
    assert isinstance(routes, list)
    return sum(route["count"] for route in routes if route["status"] == status)


async def fetched_despite(
    session: aiohttp.ClientSession, url: str, connector: ExampleConnector, fault: str, user: str
) -> dict[str, object]:
    """Fetch a user while its first two requests meet `fault`; return the simulator's stats."""
    await configure(session, url, faults={fault: 1.0, "limit": 2})
    account = await connector.get_account(user)
    assert account is not None and account.external_id == user
    stats: dict[str, object] = await sim_get(session, url, "stats")
    return stats


async def test_server_errors_are_retried_until_success(
    session: aiohttp.ClientSession, url: str, connector: ExampleConnector, logs: LogLines
) -> None:
    stats = await fetched_despite(session, url, connector, "server_error_share", "u000003")
    assert _count(stats, 503) == 2
    assert _count(stats, 200) == 1
    retries = logs.named("http.retry")
    assert [line["attempt"] for line in retries] == [1, 2]
    assert retries[0]["reason"] == "HTTP 503: unavailable"  # the vendor's own words
    assert retries[0]["path"] == "/users/u000003"


async def test_retries_are_bounded(
    session: aiohttp.ClientSession, url: str, connector: ExampleConnector
) -> None:
    await configure(session, url, faults={"server_error_share": 1.0, "server_error_status": 502})
    with pytest.raises(VendorServerError) as caught:
        await connector.http.request("GET", "/users", params={"page": "2"})
    assert caught.value.status == 502
    assert str(caught.value) == "example: GET /users -> HTTP 502: unavailable"
    stats = await sim_get(session, url, "stats")
    assert stats["requests"] == 3  # FAST_RETRY allows three attempts


async def test_other_client_errors_fail_at_once(
    session: aiohttp.ClientSession, url: str, connector: ExampleConnector
) -> None:
    with pytest.raises(VendorHTTPError) as caught:
        await connector.http.request(
            "DELETE", "/users/nobody?reason=cleanup", params={"force": "yes"}
        )
    message = str(caught.value)
    assert message == "example: DELETE /users/nobody -> HTTP 404: not found"
    assert "?" not in message and "force" not in message
    assert caught.value.status == 404
    assert not isinstance(caught.value, AuthenticationError)
    stats = await sim_get(session, url, "stats")
    assert stats["requests"] == 1


async def test_unauthorized_raises_an_authentication_error(
    session: aiohttp.ClientSession, url: str
) -> None:
    connector = make_connector(session, url, token="tok-wrong-000000")
    with pytest.raises(AuthenticationError) as caught:
        await connector.get_account("u000001")
    assert caught.value.status == 401
    assert "tok-wrong-000000" not in str(caught.value)
    stats = await sim_get(session, url, "stats")
    assert stats["requests"] == 1


class _ForbiddingSimulator(ExampleSimulator):
    """The example vendor, with an admin endpoint its token may not use."""

    def routes(self) -> list[web.RouteDef]:
        async def forbidden(request: web.Request) -> web.Response:
            return web.json_response({"error": "forbidden"}, status=403)

        return [*super().routes(), web.get("/admin", forbidden)]


async def test_forbidden_raises_an_authentication_error(session: aiohttp.ClientSession) -> None:
    async with serve(_ForbiddingSimulator(users=1, seed=1, token=TOKEN)) as url:
        connector = make_connector(session, url)
        with pytest.raises(AuthenticationError) as caught:
            await connector.http.request("GET", "/admin")
    assert caught.value.status == 403
    assert str(caught.value) == "example: GET /admin -> HTTP 403: forbidden"


async def test_timeouts_are_retried(session: aiohttp.ClientSession, url: str) -> None:
    await configure(session, url, faults={"timeout_share": 1.0, "timeout_delay": 1.0, "limit": 1})
    connector = make_connector(session, url, timeout=0.2)
    account = await connector.get_account("u000004")
    assert account is not None and account.external_id == "u000004"


async def test_timeouts_that_persist_fail(session: aiohttp.ClientSession, url: str) -> None:
    await configure(session, url, faults={"timeout_share": 1.0, "timeout_delay": 1.0})
    connector = make_connector(
        session, url, timeout=0.1, retry=RetryPolicy(attempts=2, base_delay=0.01)
    )
    with pytest.raises(VendorUnavailableError, match=r"GET /users/u000004 -> timed out"):
        await connector.get_account("u000004")


async def test_connection_resets_are_retried(
    session: aiohttp.ClientSession, url: str, connector: ExampleConnector, logs: LogLines
) -> None:
    stats = await fetched_despite(session, url, connector, "reset_share", "u000005")
    assert stats["requests"] == 3  # two dropped connections, then the answer
    # aiohttp itself retries an idempotent request once when a reused connection drops.
    reasons = [line["reason"] for line in logs.named("http.retry")]
    assert 1 <= len(reasons) <= 2
    assert all(reason == "connection failed (ServerDisconnectedError)" for reason in reasons)


async def test_malformed_json_is_retried(
    session: aiohttp.ClientSession, url: str, connector: ExampleConnector
) -> None:
    await configure(session, url, faults={"malformed_share": 1.0, "limit": 1})
    account = await connector.get_account("u000006")
    assert account is not None and account.email is not None


async def test_malformed_json_that_persists_fails(
    session: aiohttp.ClientSession, url: str, connector: ExampleConnector
) -> None:
    await configure(session, url, faults={"malformed_share": 1.0})
    with pytest.raises(MalformedResponseError, match="malformed JSON"):
        await connector.get_account("u000006")
    stats = await sim_get(session, url, "stats")
    assert stats["requests"] == 3


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0)
    delays = [policy.delay(retry) for retry in (1, 2, 3, 10) for _ in range(20)]
    assert all(0.5 <= delay <= 4.0 for delay in delays)
    assert len(set(delays)) > 1
    assert all(2.0 <= policy.delay(10) <= 4.0 for _ in range(20))
