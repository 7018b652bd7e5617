"""The webhook listener on loopback: secrets in a header or the path, bounds, any JSON shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import anyio
import pytest

from syncd.config import ConfigError, load_config
from syncd.service.daemon import Daemon
from syncd.service.hints import COALESCED, DROPPED, IGNORED, QUEUED, Hint, HintQueue, hint_from
from syncd.service.listeners import serve_app
from syncd.service.webhooks import WebhookRoute, webhook_app, webhook_routes

HEADER_SECRET = "hdr-Secret-0123456789"
PATH_SECRET = "path-Secret-0123456789"
ROUTES = {
    "influitive": WebhookRoute(HEADER_SECRET),
    "ti": WebhookRoute(PATH_SECRET, carried_in="path"),
}
LIMIT = 4096


@dataclass
class Received:
    """What the listener handed on, and what it counted."""

    hints: list[tuple[str, Hint | None]] = field(default_factory=list)
    counted: list[tuple[str, str]] = field(default_factory=list)

    def accept(self, name: str, hint: Hint | None) -> str:
        self.hints.append((name, hint))
        return IGNORED if hint is None else QUEUED

    def observe(self, name: str, outcome: str) -> None:
        self.counted.append((name, outcome))


@pytest.fixture
async def listener() -> AsyncIterator[tuple[str, Received, aiohttp.ClientSession]]:
    received = Received()
    app = webhook_app(ROUTES, received.accept, received.observe, max_body_bytes=LIMIT)
    async with serve_app(app, name="webhooks") as url, aiohttp.ClientSession() as client:
        yield url, received, client


async def post(
    client: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, object]:
    async with client.post(url, data=body, headers=headers or {}) as answer:
        return answer.status, await answer.json()


EVENT = b'{"event": "advocate.updated", "data": {"id": 42, "email": "a@corp.example"}}'


async def test_the_secret_in_a_header(
    listener: tuple[str, Received, aiohttp.ClientSession],
) -> None:
    url, received, client = listener
    good = {"X-Syncd-Webhook-Secret": HEADER_SECRET}
    assert await post(client, f"{url}/webhooks/influitive", EVENT, good) == (
        202,
        {"status": "accepted"},
    )
    assert received.hints == [("influitive", Hint("42", "a@corp.example"))]
    wrong = {"X-Syncd-Webhook-Secret": HEADER_SECRET[:-1] + "x"}
    assert (await post(client, f"{url}/webhooks/influitive", EVENT, wrong))[0] == 401
    assert (await post(client, f"{url}/webhooks/influitive", EVENT))[0] == 401
    # A header connector takes no secret in the path, even the right one.
    assert (await post(client, f"{url}/webhooks/influitive/{HEADER_SECRET}", EVENT))[0] == 401
    assert len(received.hints) == 1
    assert received.counted == [("influitive", "unauthorized")] * 3


async def test_the_secret_in_the_path(
    listener: tuple[str, Received, aiohttp.ClientSession],
) -> None:
    url, received, client = listener
    assert (await post(client, f"{url}/webhooks/ti/{PATH_SECRET}", EVENT))[0] == 202
    assert (await post(client, f"{url}/webhooks/ti/{PATH_SECRET}x", EVENT))[0] == 401
    assert (await post(client, f"{url}/webhooks/ti", EVENT))[0] == 401
    header = {"X-Syncd-Webhook-Secret": PATH_SECRET}
    assert (await post(client, f"{url}/webhooks/ti", EVENT, header))[0] == 401
    assert [name for name, _ in received.hints] == ["ti"]


async def test_an_unknown_connector_is_404_with_or_without_a_secret(
    listener: tuple[str, Received, aiohttp.ClientSession],
) -> None:
    url, received, client = listener
    header = {"X-Syncd-Webhook-Secret": HEADER_SECRET}
    assert (await post(client, f"{url}/webhooks/nobody", EVENT, header))[0] == 404
    assert (await post(client, f"{url}/webhooks/nobody/{PATH_SECRET}", EVENT))[0] == 404
    async with client.get(f"{url}/webhooks/influitive") as answer:
        assert answer.status == 405
    assert received.hints == [] and received.counted == []  # no label for a stranger's name


async def test_bounds_and_shapes(listener: tuple[str, Received, aiohttp.ClientSession]) -> None:
    url, received, client = listener
    target, good = f"{url}/webhooks/influitive", {"X-Syncd-Webhook-Secret": HEADER_SECRET}
    oversize = b'{"data": {"id": 1, "pad": "' + b"x" * LIMIT + b'"}}'
    assert (await post(client, target, oversize, good))[0] == 413

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the read is bounded
        for _ in range(8):
            yield b" " * 1024

    async with client.post(target, data=chunked(), headers=good) as answer:
        assert answer.status == 413
    assert (await post(client, target, b"{not json", good)) == (400, {"status": "not JSON"})
    for junk in (b"[1, 2]", b'"text"', b'{"data": {"id": true}}', b'{"event": "x"}', b"null"):
        assert (await post(client, target, junk, good)) == (202, {"status": "ignored"}), junk
    assert [hint for _, hint in received.hints] == [None] * 5
    assert ("influitive", "too_large") in received.counted
    assert ("influitive", "malformed") in received.counted


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        (
            {"event": "advocate.updated", "data": {"id": 7, "email": "x@y.example"}},
            Hint("7", "x@y.example"),
        ),
        ({"event": "user.updated", "data": {"user": {"id": "u1"}}, "id": "evt_1"}, Hint("u1")),
        ({"id": "evt_9", "type": "user.created", "payload": {"userId": "u2"}}, Hint("u2")),
        ({"id": "u3", "email": "z@y.example"}, Hint("u3", "z@y.example")),
        ({"payload": {"event": "users", "data": {"id": 46}}}, Hint("46")),
        (
            {
                "id": "evt",
                "event_type": "user.updated",
                "data": {"user_id": "u4", "email": "q@y.example"},
            },
            Hint("u4", "q@y.example"),
        ),
        ({"event": "advocate.created", "advocate_id": 5}, Hint("5")),
        (
            {"event": "user.updated", "data": {"email": " Mail@Y.example "}},
            Hint(None, "Mail@Y.example"),
        ),
        ({"data": {"id": "x" * 300}}, None),
        ({"data": {"id": "a\nb", "email": "not-an-email"}}, None),
        ({"data": {"id": [1], "email": 5}}, None),
    ],
)
def test_which_user_an_event_names(body: object, hint: Hint | None) -> None:
    assert hint_from(body) == hint


async def test_the_queue_coalesces_and_is_bounded() -> None:
    queue = HintQueue(limit=2)
    assert queue.offer(Hint("1")) == QUEUED
    assert queue.offer(Hint("1", "a@b.example")) == COALESCED
    assert queue.offer(Hint(None, "A@B.example")) == QUEUED
    assert queue.offer(Hint(None, "a@b.example")) == COALESCED
    assert queue.offer(Hint("3")) == DROPPED
    assert len(queue) == 2
    with anyio.fail_after(1):
        assert await queue.take() == Hint("1")
        assert queue.offer(Hint("1")) == QUEUED  # taken: a new change is a new hint
        assert await queue.take() == Hint(None, "A@B.example")
        assert await queue.take() == Hint("1")


def test_webhook_config(tmp_path: Path) -> None:
    path = tmp_path / "syncd.toml"
    base = '[connectors.hub]\nvendor = "influitive"\nbase_url = "http://127.0.0.1:1"\n'
    path.write_text(base + '[connectors.hub.webhook]\nsecret = "env:HOOK"\nin = "path"\n')
    with pytest.raises(ConfigError, match=r"connectors.hub.webhook: needs a \[webhooks\] table"):
        load_config(path)
    path.write_text("[webhooks]\n" + base + '[connectors.hub.webhook]\nsecret = "plain"\n')
    with pytest.raises(ConfigError, match=r"connectors\.hub\.webhook\.secret: must be a reference"):
        load_config(path)
    path.write_text(
        "[webhooks]\nport = 0\n"
        + base
        + '[connectors.hub.webhook]\nsecret = "env:HOOK"\nin = "path"\n'
    )
    config = load_config(path)
    with pytest.raises(ConfigError, match=r"hub\.webhook\.secret: environment variable"):
        webhook_routes(config, {})
    assert webhook_routes(config, {"HOOK": "s3"}) == {"hub": WebhookRoute("s3", "path")}
    assert config.webhooks is not None and config.webhooks.max_body_bytes == 256 * 1024


def test_the_daemon_counts_what_became_of_each_hint() -> None:
    daemon = Daemon(Path("syncd.toml"))
    daemon.hints = {"hub": HintQueue(limit=1)}
    outcomes = [
        daemon._accept_hint("hub", hint) for hint in (Hint("1"), Hint("1"), Hint("2"), None)
    ]
    assert outcomes == [QUEUED, COALESCED, DROPPED, IGNORED]
    text = daemon.metrics.render().decode()
    for outcome in outcomes:
        assert f'syncd_webhook_hints_total{{connector="hub",outcome="{outcome}"}} 1.0' in text
