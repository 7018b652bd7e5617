"""Webhook hints: who a vendor's event names, and a bounded queue that coalesces repeats."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import anyio

# Where a user object sits inside an event (checked in this order, two levels deep), and the
# keys that name the user in it. A top-level `id` is usually the event's own, so it only
# counts when the body is the user object itself (no container found).
CONTAINERS = ("data", "payload", "object", "resource", "user", "advocate", "member", "contact")
ID_KEYS = ("id", "user_id", "userId", "advocate_id", "member_id")
TOP_ID_KEYS = ("user_id", "userId", "advocate_id", "member_id")
EMAIL_KEYS = ("email", "email_address", "emailAddress")
MAX_ID_LENGTH = 256
MAX_EMAIL_LENGTH = 320

# What became of a hint, as counted in syncd_webhook_hints_total{outcome}.
QUEUED, COALESCED, DROPPED, IGNORED = "queued", "coalesced", "dropped", "ignored"
UNAUTHORIZED, TOO_LARGE, MALFORMED = "unauthorized", "too_large", "malformed"


@dataclass(frozen=True, slots=True)
class Hint:
    """A vendor said one user changed: their id at the vendor, their email, or both."""

    external_id: str | None = None
    email: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """What two hints about the same user share (the id when known)."""
        if self.external_id is not None:
            return ("id", self.external_id)
        return ("email", (self.email or "").casefold())


def _identifier(value: object) -> str | None:
    """A vendor id as text: a string or an integer (never a bool), printable and bounded."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if not text or len(text) > MAX_ID_LENGTH or not text.isprintable():
        return None
    return text


def _email(value: object) -> str | None:
    """An email-looking string, bounded; the graph normalizes it when the record arrives."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not 3 <= len(text) <= MAX_EMAIL_LENGTH or "@" not in text or not text.isprintable():
        return None
    return text


def _containers(body: Mapping[str, object]) -> list[Mapping[str, object]]:
    """The objects inside an event that may be the user, nearest first."""
    found: list[Mapping[str, object]] = []
    for key in CONTAINERS:
        inner = body.get(key)
        if isinstance(inner, dict):
            found.append(inner)
    for outer in list(found):
        for key in CONTAINERS:
            inner = outer.get(key)
            if isinstance(inner, dict):
                found.insert(0, inner)  # a user inside `data` is nearer than `data`
    return found


def _first(
    objects: list[Mapping[str, object]], keys: tuple[str, ...], read: Callable[[object], str | None]
) -> str | None:
    for item in objects:
        for key in keys:
            if (value := read(item.get(key))) is not None:
                return value
    return None


def hint_from(body: object) -> Hint | None:
    """The user an event names (see CONTAINERS, ID_KEYS, EMAIL_KEYS), or None if none."""
    if not isinstance(body, dict):
        return None
    containers = _containers(body)
    id_sources = containers or [body]
    external_id = _first(id_sources, ID_KEYS, _identifier) or _first(
        [body], TOP_ID_KEYS, _identifier
    )
    email = _first([*containers, body], EMAIL_KEYS, _email)
    if external_id is None and email is None:
        return None
    return Hint(external_id, email)


class HintQueue:
    """Hints waiting for one connector: one per user, at most `limit`, oldest first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._waiting: dict[tuple[str, str], Hint] = {}
        self._ready = anyio.Event()

    def __len__(self) -> int:
        return len(self._waiting)

    def offer(self, hint: Hint) -> str:
        """Queue a hint: QUEUED, COALESCED (one for that user waits already) or DROPPED (full)."""
        if hint.key in self._waiting:
            return COALESCED
        if len(self._waiting) >= self.limit:
            return DROPPED
        self._waiting[hint.key] = hint
        self._ready.set()
        return QUEUED

    async def take(self) -> Hint:
        """Wait for the oldest waiting hint and take it out of the queue."""
        while not self._waiting:
            await self._ready.wait()
            self._ready = anyio.Event()
        key = next(iter(self._waiting))
        return self._waiting.pop(key)


async def work_hints(
    queue: HintQueue,
    apply: Callable[[Hint], Awaitable[str]],
    observe: Callable[[str], None],
) -> None:
    """Apply hints one at a time, for ever, counting each outcome."""
    while True:
        hint = await queue.take()
        observe(await apply(hint))
