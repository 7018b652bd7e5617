"""scim2-tester against the live endpoint: every check passes or is skipped by the tester."""

from __future__ import annotations

from collections import Counter

import anyio
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import CheckResult, Status, check_server

from tests.authority.conftest import TOKEN, Scim

PASSING = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}


async def test_scim2_tester_finds_no_failure(scim: Scim) -> None:
    def run() -> list[CheckResult]:
        with Client(base_url=scim.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            client = SyncSCIMClient(http)
            return list(check_server(client))

    results = await anyio.to_thread.run_sync(run)
    counts = Counter(result.status for result in results)
    passed = sum(counts[status] for status in PASSING)
    failures = [
        f"{result.status.name} {result.resource_type or ''} {result.title}: {result.reason}"
        for result in results
        if result.status not in PASSING | {Status.SKIPPED}
    ]
    print(
        f"scim2-tester: {passed} passed, {len(failures)} failed, {counts[Status.SKIPPED]} skipped"
    )
    assert not failures, "\n".join(failures)
    assert passed > 20
