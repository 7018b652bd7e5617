"""The simulator base: seeding, vendor semantics, the `/_sim/` control API."""

from __future__ import annotations

import aiohttp
import anyio
import pytest

from connectors import ConnectorConfigError, UnsupportedOperation, VendorHTTPError
from connectors.registry import VENDORS, vendor
from connectors.sim import Faults, SimSettings, serve
from connectors.vendors.example.connector import ExampleConnector
from connectors.vendors.example.simulator import ExampleSimulator
from tests.connectors.conftest import TOKEN, configure, make_connector, sim_get


def test_seeding_is_deterministic() -> None:
    first = ExampleSimulator(users=20, seed=3, token=TOKEN)
    again = ExampleSimulator(users=20, seed=3, token=TOKEN)
    other = ExampleSimulator(users=20, seed=4, token=TOKEN)
    assert first.users == again.users
    assert first.users != other.users
    assert list(first.users) == [f"u{index:06d}" for index in range(1, 21)]


async def test_sim_users_returns_records_as_stored(
    session: aiohttp.ClientSession, url: str, simulator: ExampleSimulator
) -> None:
    body = await sim_get(session, url, "users")
    assert body["users"] == list(simulator.users.values())
    assert set(body["users"][0]) == {
        "id", "email", "first_name", "last_name", "status", "role", "created_at",
    }  # fmt: skip


async def test_seeded_records_are_listed_by_the_connector(
    session: aiohttp.ClientSession, url: str, connector: ExampleConnector
) -> None:
    records = [{"id": "x1", "email": "Zed@Example.com", "first_name": "Zed", "status": "invited"}]
    async with session.post(f"{url}/_sim/users", json={"users": records}) as response:
        assert response.status == 200
        assert (await response.json())["ids"] == ["x1"]
    accounts = {account.external_id: account async for account in connector.list_accounts()}
    assert len(accounts) == 251
    zed = accounts["x1"]
    assert zed.email == "Zed@Example.com"
    assert zed.status == "invited"
    assert zed.attributes["given_name"] == "Zed"
    assert zed.attributes["active"] is False
    assert zed.raw == records[0]


async def test_control_api_is_free_of_auth_rate_limit_and_stats(
    session: aiohttp.ClientSession, url: str
) -> None:
    await configure(session, url, rate=1, burst=1)
    for _ in range(5):
        await sim_get(session, url, "stats")
    stats = await sim_get(session, url, "stats")
    assert stats["requests"] == 0
    assert stats["throttled"] == 0


async def test_stats_count_by_method_path_and_status(
    session: aiohttp.ClientSession, url: str, connector: ExampleConnector
) -> None:
    await configure(session, url, rate=100, burst=3, retry_after="none")
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def get(path: str) -> None:
        async with session.get(f"{url}{path}", headers=headers) as response:
            await response.read()

    async with anyio.create_task_group() as group:
        for index in range(6):
            group.start_soon(get, f"/users/u{index + 1:06d}")
    await connector.get_account("u000001")
    await connector.get_account("nobody")
    stats = await sim_get(session, url, "stats")
    by_status = {
        (route["method"], route["path"], route["status"]): route["count"]
        for route in stats["by_route"]
    }
    assert by_status[("GET", "/users/{id}", 429)] == stats["throttled"] >= 1
    assert by_status[("GET", "/users/{id}", 404)] == 1
    assert stats["requests"] == sum(by_status.values())
    assert stats["peak_rate"] >= 6


async def test_config_rejects_unknown_settings(session: aiohttp.ClientSession, url: str) -> None:
    for bad in ({"speed": 3}, {"faults": {"gremlins": 1}}, {"rate": "fast"}, {"retry_after": "x"}):
        async with session.put(f"{url}/_sim/config", json=bad) as response:
            assert response.status == 400, bad


async def test_reset_restores_users_settings_and_stats(
    session: aiohttp.ClientSession, url: str, connector: ExampleConnector
) -> None:
    await configure(session, url, latency_ms=5, faults={"unauthorized": True})
    async with session.post(f"{url}/_sim/users", json=[{"email": "new@example.com"}]):
        pass
    async with session.post(f"{url}/_sim/reset") as response:
        assert (await response.json()) == {"users": 250}
    config = await sim_get(session, url, "config")
    assert config["latency_ms"] == 0 and config["faults"]["unauthorized"] is False
    assert (await sim_get(session, url, "stats"))["requests"] == 0
    assert await connector.get_account("u000001") is not None


async def test_writes_follow_the_vendor_semantics(
    session: aiohttp.ClientSession, url: str, connector: ExampleConnector
) -> None:
    created = await connector.create_account(
        {"email": "new@example.com", "given_name": "New", "family_name": "Person"}
    )
    assert created.status == "active"
    with pytest.raises(VendorHTTPError) as caught:
        await connector.create_account({"email": "NEW@example.com"})
    assert caught.value.status == 409

    updated = await connector.update_account(created.external_id, {"role": "admin"})
    assert updated.attributes["role"] == "admin"
    assert updated.attributes["given_name"] == "New"  # PATCH merges

    await connector.deactivate_account(created.external_id)
    stored = await connector.get_account(created.external_id)
    assert stored is not None and stored.status == "inactive"

    with pytest.raises(UnsupportedOperation):  # deletes need the connector's allow_delete
        await connector.delete_account(created.external_id)
    connector.allow_delete = True
    await connector.delete_account(created.external_id)
    assert await connector.get_account(created.external_id) is None


async def test_unauthenticated_vendor_requests_get_401(
    session: aiohttp.ClientSession, url: str
) -> None:
    async with session.get(f"{url}/users") as response:
        assert response.status == 401
    async with session.get(
        f"{url}/users", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as response:
        assert response.status == 200
        body = await response.json()
    assert body["total"] == 250 and len(body["users"]) == 25


async def test_latency_is_applied(session: aiohttp.ClientSession) -> None:
    settings = SimSettings(latency_ms=120, faults=Faults())
    async with serve(ExampleSimulator(users=1, seed=1, token=TOKEN, settings=settings)) as url:
        connector = make_connector(session, url)
        started = anyio.current_time()
        await connector.get_account("u000001")
        assert anyio.current_time() - started >= 0.11


def test_registry_names_every_vendor() -> None:
    assert VENDORS["example"].connector is ExampleConnector
    assert VENDORS["example"].simulator is ExampleSimulator
    with pytest.raises(KeyError, match="unknown vendor 'nope'"):
        vendor("nope")


async def test_missing_secret_is_a_configuration_error(
    session: aiohttp.ClientSession, url: str
) -> None:
    with pytest.raises(ConnectorConfigError, match="missing secret\\(s\\): token"):
        ExampleConnector(name="ex", session=session, base_url=url, secrets={})
