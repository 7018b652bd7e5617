"""Priority: a waiting deactivation is granted before waiting routine reads."""

from __future__ import annotations

import aiohttp
import anyio
import pytest

from connectors import Priority, PrioritySemaphore, RateBudget
from tests.connectors.conftest import configure, make_connector, sim_get


async def test_semaphore_grants_the_most_urgent_waiter_first() -> None:
    semaphore = PrioritySemaphore(1)
    granted: list[str] = []

    async def take(label: str, priority: Priority) -> None:
        async with semaphore.hold(priority):
            granted.append(label)
            await anyio.sleep(0.01)

    await semaphore.acquire(Priority.READ)
    async with anyio.create_task_group() as group:
        for index in range(3):
            group.start_soon(take, f"read{index}", Priority.READ)
        await anyio.sleep(0.01)
        group.start_soon(take, "write", Priority.WRITE)
        group.start_soon(take, "deactivate", Priority.DEACTIVATE)
        await anyio.sleep(0.01)
        assert semaphore.waiting == 5
        semaphore.release()
    assert granted == ["deactivate", "write", "read0", "read1", "read2"]


async def test_a_task_cancelled_as_it_takes_a_free_place_gives_it_back() -> None:
    semaphore = PrioritySemaphore(1)
    with anyio.CancelScope() as scope:
        scope.cancel()  # delivered at the checkpoint right after the place was taken
        await semaphore.acquire()
    with anyio.fail_after(1):  # the place is free again, not lost with the cancelled task
        await semaphore.acquire()
    assert semaphore.waiting == 0


async def test_cancelled_waiter_does_not_lose_a_place() -> None:
    semaphore = PrioritySemaphore(1)
    await semaphore.acquire()
    with anyio.move_on_after(0.01):
        await semaphore.acquire()
    assert semaphore.waiting == 0
    semaphore.release()
    with anyio.fail_after(1):
        await semaphore.acquire()


def test_semaphore_needs_a_place() -> None:
    with pytest.raises(ValueError, match="capacity"):
        PrioritySemaphore(0)


async def test_budget_sends_deactivation_before_queued_reads() -> None:
    budget = RateBudget(50, burst=1, concurrency=4)
    order: list[str] = []

    async def send(label: str, priority: Priority) -> None:
        async with budget.slot(priority):
            order.append(label)

    async with anyio.create_task_group() as group:
        for index in range(6):
            group.start_soon(send, f"read{index}", Priority.READ)
        await anyio.sleep(0.03)  # the reads are queued behind the rate limit
        group.start_soon(send, "deactivate", Priority.DEACTIVATE)
    # At most the one read already waiting on the limiter goes first; every other read waits.
    position = order.index("deactivate")
    assert position <= 3
    assert all(order.index(f"read{index}") > position for index in range(position, 6))


async def test_deactivation_overtakes_a_listing(session: aiohttp.ClientSession, url: str) -> None:
    await configure(session, url, latency_ms=20)
    connector = make_connector(session, url, budget=RateBudget(20, burst=1, concurrency=2))
    finished: list[str] = []

    async def read(index: int) -> None:
        await connector.http.request("GET", f"/users/u{index + 1:06d}")
        finished.append(f"read{index}")

    async def deactivate() -> None:
        await connector.deactivate_account("u000200")
        finished.append("deactivate")

    async with anyio.create_task_group() as group:
        for index in range(8):
            group.start_soon(read, index)
        await anyio.sleep(0.06)
        group.start_soon(deactivate)
    assert finished.index("deactivate") <= 4
    users = {user["id"]: user for user in (await sim_get(session, url, "users"))["users"]}
    assert users["u000200"]["status"] == "inactive"
