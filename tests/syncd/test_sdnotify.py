"""sd_notify: datagrams on a real socket, the no-op case, the watchdog interval."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

from syncd.service.sdnotify import Notifier, watchdog_interval, watchdog_loop


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound to a file in tmp_path, and its NOTIFY_SOCKET value."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    try:
        yield sock, str(path)
    finally:
        sock.close()


def test_sends_each_field_in_one_datagram(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    try:
        assert notifier.enabled
        assert notifier.notify(READY=True, STATUS="polling 5 connectors")
        assert sock.recv(4096) == b"READY=1\nSTATUS=polling 5 connectors"
        assert notifier.send("WATCHDOG=1")
        assert sock.recv(4096) == b"WATCHDOG=1"
        assert notifier.stopping("draining writes")
        assert sock.recv(4096) == b"STOPPING=1\nSTATUS=draining writes"
        assert notifier.status("two\nlines")
        assert sock.recv(4096) == b"STATUS=two lines"
    finally:
        notifier.close()


def test_abstract_socket() -> None:
    name = f"syncd-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
    try:
        assert notifier.ready("started")
        assert sock.recv(4096) == b"READY=1\nSTATUS=started"
    finally:
        notifier.close()
        sock.close()


def test_without_notify_socket_nothing_happens() -> None:
    notifier = Notifier({})
    with capture_logs() as logs:
        assert not notifier.enabled
        assert not notifier.ready()
        assert not notifier.watchdog()
    assert logs == []


def test_reads_the_process_environment(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    notifier = Notifier()
    try:
        assert notifier.ready()
        assert sock.recv(4096) == b"READY=1"
    finally:
        notifier.close()


def test_a_failing_send_never_raises_and_logs_once(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens.sock")})
    try:
        with capture_logs() as logs:
            assert not notifier.ready()
            assert not notifier.watchdog()
            assert not notifier.watchdog()
        assert [line["event"] for line in logs] == ["sdnotify.failed"]
        assert "FileNotFoundError" in logs[0]["error"]
    finally:
        notifier.close()


def test_an_unusable_address_disables_the_notifier() -> None:
    with capture_logs() as logs:
        notifier = Notifier({"NOTIFY_SOCKET": "relative/path.sock"})
    assert not notifier.enabled
    assert not notifier.ready()
    assert [line["event"] for line in logs] == ["sdnotify.failed"]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "not-a-pid"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(environ) == expected


async def test_watchdog_loop_pings_until_cancelled(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    sock.setblocking(False)
    notifier = Notifier({"NOTIFY_SOCKET": path})
    try:
        with anyio.move_on_after(0.12):
            await watchdog_loop(notifier, 0.02)
        received = []
        while True:
            try:
                received.append(sock.recv(4096))
            except BlockingIOError:
                break
    finally:
        notifier.close()
    assert len(received) >= 3
    assert set(received) == {b"WATCHDOG=1"}
