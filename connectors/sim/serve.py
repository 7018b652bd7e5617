"""Run a simulator on 127.0.0.1, in the background for tests or in the foreground."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from aiohttp import web

from connectors.sim.base import VendorSimulator

LOOPBACK = "127.0.0.1"


@asynccontextmanager
async def serve(simulator: VendorSimulator, *, port: int = 0) -> AsyncIterator[str]:
    """Serve the simulator on 127.0.0.1 (port 0: any free one) and yield its base URL."""
    runner = web.AppRunner(
        simulator.app(), handler_cancellation=True, access_log=None, shutdown_timeout=1.0
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, LOOPBACK, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        yield f"http://{LOOPBACK}:{bound_port}"
    finally:
        await runner.cleanup()


async def run_forever(simulator: VendorSimulator, *, port: int) -> None:
    """Serve the simulator until cancelled, announcing its URL on stdout."""
    async with serve(simulator, port=port) as url:
        print(f"{simulator.vendor} simulator on {url} ({len(simulator.users)} users)", flush=True)
        await anyio.sleep_forever()
