"""What a simulator sends a webhook target when a user changes: one POST per event."""

from __future__ import annotations

import asyncio

import aiohttp
from yarl import URL

from connectors.sim.listing import Record

HEADER_NAME = "X-Syncd-Webhook-Secret"
TIMEOUT = aiohttp.ClientTimeout(total=5.0)


class WebhookSender:
    """Posts `{"event": ..., "data": ...}` to a target in the background, as a vendor would.

    The secret goes in `HEADER_NAME` or, with `via="path"`, as the URL's last
    segment (for vendors that can only be given a URL). No target: nothing is sent.
    """

    def __init__(
        self, url: str | None = None, secret: str | None = None, via: str = "header"
    ) -> None:
        if via not in ("header", "path"):
            raise ValueError("via must be header or path")
        self.url, self.secret, self.via = url, secret, via
        self.sent = 0  # events the target answered with 2xx
        self.failed = 0  # events it refused, or that never reached it
        self._pending: set[asyncio.Task[None]] = set()

    def send(self, event: str, data: Record) -> None:
        """Post one event without waiting for the target (call from the running loop)."""
        if self.url is None:
            return
        task = asyncio.get_running_loop().create_task(self._post(event, data))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait until every event sent so far was answered (or failed)."""
        while self._pending:
            await asyncio.gather(*self._pending)

    async def _post(self, event: str, data: Record) -> None:
        url, headers = URL(str(self.url)), {}
        if self.secret is not None:
            if self.via == "path":
                url = url / self.secret
            else:
                headers[HEADER_NAME] = self.secret
        try:
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as session,
                session.post(url, json={"event": event, "data": data}, headers=headers) as answer,
            ):
                ok = 200 <= answer.status < 300
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if ok:
            self.sent += 1
        else:
            self.failed += 1
