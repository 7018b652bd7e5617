"""A small sd_notify client: tell systemd we are ready, alive, or stopping."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import anyio
import structlog

log = structlog.get_logger("syncd.service.sdnotify")


def _address(raw: str) -> str | None:
    """Turn NOTIFY_SOCKET into a socket address, or None when it names no usable socket."""
    if raw.startswith("@"):
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    return None


class Notifier:
    """Send sd_notify messages to the socket in NOTIFY_SOCKET; a no-op without one."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self._address = _address(raw) if raw else None
        self._socket: socket.socket | None = None
        self._failing = False
        if raw and self._address is None:
            log.warning("sdnotify.failed", error="unsupported NOTIFY_SOCKET address", socket=raw)

    @property
    def enabled(self) -> bool:
        """Tell whether a notification socket was given."""
        return self._address is not None

    def send(self, *lines: str) -> bool:
        """Send the lines as one datagram; return whether it was sent, never raise."""
        if self._address is None or not lines:
            return False
        # One assignment per line is the protocol; a newline inside a value would split it.
        message = "\n".join(line.replace("\n", " ") for line in lines).encode()
        try:
            if self._socket is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.setblocking(False)
                self._socket = sock
            self._socket.sendto(message, self._address)
        except OSError as exc:
            # Once per run of failures: a watchdog tick must not flood the journal.
            if not self._failing:
                log.warning("sdnotify.failed", error=f"{type(exc).__name__}: {exc}")
            self._failing = True
            return False
        self._failing = False
        return True

    def notify(self, **fields: str | int | bool) -> bool:
        """Send fields such as READY=1 or STATUS="..." as one datagram."""
        return self.send(*(f"{key}={_text(value)}" for key, value in fields.items()))

    def ready(self, status: str | None = None) -> bool:
        """Tell systemd that start-up finished."""
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        """Set the one-line status that `systemctl status` shows."""
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        """Tell systemd's watchdog that the loop is alive."""
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """Tell systemd that shutdown began."""
        return self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def close(self) -> None:
        """Close the socket, if one was opened."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _text(value: str | int | bool) -> str:
    """Render a field value the way systemd reads it (booleans as 1 and 0)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None when not asked."""
    env = os.environ if environ is None else environ
    pid = env.get("WATCHDOG_PID")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 2 / 1_000_000


async def watchdog_loop(notifier: Notifier, interval: float) -> None:
    """Send WATCHDOG=1 every interval seconds until cancelled."""
    while True:
        notifier.watchdog()
        await anyio.sleep(interval)
