"""A write is fenced immediately before it is sent: a process whose lease ran out sends none."""

from __future__ import annotations

import aiohttp
import pytest

from connectors.core.errors import WriteFenced
from tests.connectors.conftest import make_connector, sim_get


async def test_a_fenced_write_never_reaches_the_vendor(
    session: aiohttp.ClientSession, url: str
) -> None:
    connector = make_connector(session, url)
    valid = [True]
    connector.http.may_write = lambda: valid[0]
    await connector.deactivate_account("u000004")
    valid[0] = False  # the lease ran out (a pause, a lost renewal)
    with pytest.raises(WriteFenced, match="not sent"):
        await connector.deactivate_account("u000005")
    assert await connector.get_account("u000005") is not None  # reads still go out
    writes = await sim_get(session, url, "writes")
    assert [(w["method"], w["path"]) for w in writes["writes"]] == [("PATCH", "/users/u000004")]
    stats = await sim_get(session, url, "stats")
    assert stats["writes"] == 1 and stats["duplicate_writes"] == 0
