"""The last resort: a process that is stopping and has not stopped within its bound exits."""

from __future__ import annotations

import asyncio
import math
import os
import sys
import threading
import time

import structlog

from syncd.boundary import EX_INTERRUPTED, explain

log = structlog.get_logger("syncd.service.backstop")
SHUTDOWN_BOUND = 30.0  # seconds from the start of a shutdown until the process is gone
TEARDOWN_GRACE = 3.0  # seconds the interpreter gets to exit once the command has its result
RECOVERY_TIMEOUT = 12.0  # seconds to put operations in flight back: past one SQLite busy wait

_lock = threading.Lock()
_timer: threading.Timer | None = None
_deadline = math.inf
_exit: tuple[int, str] = (0, "")


def arm(seconds: float, code: int, line: str) -> None:
    """Exit with `code`, writing `line`, after `seconds` unless the process has ended by then.

    An earlier deadline already set stands; the code and line are always the latest, since
    the later caller knows more of how the shutdown went.
    """
    global _exit
    # Work cancelled mid-statement on a locked or unreachable database can leave driver
    # clean-up that never finishes (and keeps the event loop from closing): a stopping
    # process must not linger on it.
    with _lock:
        _exit = (code, line)
        _start(seconds)


def _start(seconds: float) -> None:
    """Move the deadline to `seconds` from now, if that is earlier (call with the lock held)."""
    global _timer, _deadline
    deadline = min(_deadline, time.monotonic() + seconds)
    if deadline == _deadline and _timer is not None:
        return
    if _timer is not None:
        _timer.cancel()
    _deadline = deadline
    _timer = threading.Timer(max(0.0, deadline - time.monotonic()), _fire)
    _timer.daemon = True
    _timer.start()


def arm_for(error: BaseException, seconds: float = SHUTDOWN_BOUND) -> None:
    """Arm with the exit code and line the command line's error boundary gives `error`."""
    if isinstance(error, asyncio.CancelledError):
        # A cancellation follows from a cause armed before it (a signal, a lost lease).
        with _lock:
            if _timer is not None:
                _start(seconds)
                return
        arm(seconds, EX_INTERRUPTED, "syncd: interrupted")
        return
    arm(seconds, *explain(error))


def _fire() -> None:
    with _lock:
        code, line = _exit
    log.warning("daemon.shutdown_timeout", code=code)
    if line:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    os._exit(code)
