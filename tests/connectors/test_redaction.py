"""No secret in logs, exceptions, URLs or simulator statistics."""

from __future__ import annotations

import aiohttp
import pytest
import structlog

from connectors import (
    AuthenticationError,
    BasicAuth,
    BearerAuth,
    HeaderAuth,
    RateBudget,
    RetryPolicy,
    redact_secrets,
    register_secret,
)
from connectors.core.redaction import REDACTED, redact_headers, redact_text
from tests.connectors.conftest import TOKEN, LogLines, configure, make_connector, sim_get


def test_processor_redacts_registered_secrets_anywhere() -> None:
    register_secret("hunter2-password")
    event = {
        "event": "login failed for hunter2-password",
        "detail": {"nested": ["x hunter2-password y"]},
        "count": 3,
    }
    redacted = redact_secrets(None, "info", event)
    assert redacted["event"] == f"login failed for {REDACTED}"
    assert redacted["detail"] == {"nested": [f"x {REDACTED} y"]}
    assert redacted["count"] == 3


def test_processor_redacts_auth_like_keys_whatever_their_value() -> None:
    event = {
        "event": "request",
        "headers": {"Authorization": "Bearer never-registered", "Accept": "application/json"},
        "api_key": "unregistered-key",
        "X-User-Api-Key": "abc",
        "password": "p",
    }
    redacted = redact_secrets(None, "info", event)
    assert redacted["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}
    assert redacted["api_key"] == REDACTED
    assert redacted["X-User-Api-Key"] == REDACTED
    assert redacted["password"] == REDACTED


def test_auth_schemes_register_their_secrets_and_hide_them_in_repr() -> None:
    bearer = BearerAuth("bearer-secret-1")
    header = HeaderAuth({"X-API-Key": "header-secret-2"})
    basic = BasicAuth("app-key-3", "user-key-4")
    for auth in (bearer, header, basic):
        assert "secret" not in repr(auth) and "key-" not in repr(auth)
    text = " ".join(
        [*bearer.headers().values(), *header.headers().values(), *basic.headers().values()]
    )
    assert "secret" not in redact_text(text)
    assert redact_headers(basic.headers()) == {"Authorization": REDACTED}


async def test_token_never_reaches_logs_errors_or_the_vendor_url(
    session: aiohttp.ClientSession, url: str, logs: LogLines
) -> None:
    log = structlog.get_logger("test")
    await configure(
        session,
        url,
        rate=30,
        burst=1,
        retry_after="none",
        faults={"server_error_share": 0.3, "malformed_share": 0.2},
    )
    patient = RetryPolicy(attempts=10, base_delay=0.005, max_delay=0.02)
    connector = make_connector(session, url, budget=RateBudget(300), retry=patient)
    accounts = [account async for account in connector.list_accounts()]
    assert len(accounts) == 250
    log.info("connector.debug", auth=connector.http._headers, note=f"token is {TOKEN}")

    await configure(session, url, faults={"unauthorized": True}, rate=None)
    with pytest.raises(AuthenticationError) as caught:
        await connector.get_account("u000001")
    log.error("connector.parked", error=str(caught.value), exc_info=caught.value)

    assert logs.named("http.retry") and logs.named("budget.throttled")
    assert TOKEN not in logs.text
    assert REDACTED in logs.text
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
    stats = await sim_get(session, url, "stats")
    assert stats["secret_in_url"] == 0
    assert all(TOKEN not in key for key in stats["query_keys"])


async def test_a_secret_is_never_put_in_a_url(
    session: aiohttp.ClientSession, url: str, connector: object
) -> None:
    from connectors.vendors.example.connector import ExampleConnector

    assert isinstance(connector, ExampleConnector)
    with pytest.raises(ValueError, match="secret in a URL"):
        await connector.http.request("GET", "/users", params={"api_key": TOKEN})
    with pytest.raises(ValueError, match="secret in a URL"):
        await connector.http.request("GET", f"/users/{TOKEN}")
    stats = await sim_get(session, url, "stats")
    assert stats["requests"] == 0


async def test_simulator_notices_a_secret_in_a_url(
    session: aiohttp.ClientSession, url: str
) -> None:
    async with session.get(f"{url}/users", params={"token": TOKEN}) as response:
        assert response.status == 401
    stats = await sim_get(session, url, "stats")
    assert stats["secret_in_url"] == 1
