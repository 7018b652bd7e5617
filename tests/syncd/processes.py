"""syncd commands as real processes: started in the tests' environment, killed if left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from tests.syncd.test_engine import ENV

Output = int | IO[str] | None


def start_syncd(
    command: str,
    config: Path,
    *args: str,
    stdout: Output = subprocess.DEVNULL,
    stderr: Output = subprocess.PIPE,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[str]:
    """Start `syncd COMMAND ARGS --config CONFIG` in the background, in the tests' environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "syncd.cli.main", command, *args, "--config", str(config)],
        env={**os.environ, **ENV, **(env or {})},
        stdout=stdout,
        stderr=stderr,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> None:
    """Kill a process the test started, if it still runs, and reap it."""
    if process.poll() is None:
        process.kill()
    process.communicate()


class Processes:
    """The syncd processes one test starts."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []

    def start(
        self, command: str, config: Path, *args: str, **options: object
    ) -> subprocess.Popen[str]:
        """Start a syncd command (see start_syncd) that teardown kills if it still runs."""
        process = start_syncd(command, config, *args, **options)  # type: ignore[arg-type]
        self.started.append(process)
        return process


def stop_gracefully(process: subprocess.Popen[str], log: IO[str]) -> str:
    """SIGTERM the process, which must exit 0 within 10 s; what it wrote to its log."""
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=10) == 0
    finally:
        stop(process)
    log.seek(0)
    return log.read()
