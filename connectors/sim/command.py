"""`syncd sim VENDOR`: run one vendor simulator in the foreground."""

from __future__ import annotations

import contextlib
import os
import sys
from functools import partial

import anyio

from connectors.sim.serve import run_forever
from connectors.sim.settings import SimSettings


def vendors_help() -> str:
    """Every vendor `syncd sim` serves: its connector's secrets and how the token is sent."""
    from connectors.registry import VENDORS

    lines = ["vendors, the secrets their connector takes, and how --token is sent:"]
    for name, entry in sorted(VENDORS.items()):
        lines.append(f"  {name:<19} secrets: {', '.join(entry.connector.secret_names)}")
        lines.append(f"  {'':<19} {entry.simulator.credentials}")
    return "\n".join(lines)


def run_simulator(
    vendor: str,
    *,
    port: int,
    users: int,
    seed: int,
    token: str | None = None,
    rate: float | None = None,
    latency_ms: float = 0.0,
) -> int:
    """Serve the named vendor's simulator on 127.0.0.1 until interrupted; return an exit code."""
    from connectors.registry import VENDORS

    entry = VENDORS.get(vendor)
    if entry is None:
        known = ", ".join(sorted(VENDORS))
        print(f"syncd sim: unknown vendor {vendor!r} (known: {known})", file=sys.stderr)
        return 2
    settings = SimSettings(rate=rate, latency_ms=latency_ms)
    simulator = entry.simulator(users=users, seed=seed, token=token, settings=settings)
    if token is None:
        print(f"accepted token: {simulator.token}", flush=True)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            anyio.run(partial(run_forever, simulator, port=port))
    except OSError as exc:
        print(
            f"syncd sim: cannot listen on 127.0.0.1:{port}: {os.strerror(exc.errno or 0)} "
            "(choose another --port)",
            file=sys.stderr,
        )
        return 69  # EX_UNAVAILABLE
    return 0
