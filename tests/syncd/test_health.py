"""The health server, served on 127.0.0.1 and asked over real HTTP."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncd.service.health import Check, health_app
from syncd.service.listeners import serve_app
from syncd.service.metrics import Metrics


class LeakyError(Exception):
    """An error whose message carries data that must never reach a response."""


class Source:
    """A daemon stand-in whose answers the test sets."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.checks = {
            "database": Check(ok=True, reason="reachable"),
            "connector:example": Check(ok=True, reason="listed 12s ago"),
        }
        self.error: Exception | None = None
        self.refreshed = 0

    async def readiness(self) -> dict[str, Check]:
        """Return the checks, or raise the error the test set."""
        if self.error is not None:
            raise self.error
        return self.checks

    async def status(self) -> dict[str, object]:
        """Return a summary, or raise the error the test set."""
        if self.error is not None:
            raise self.error
        return {"example": {"parked": False, "accounts": 250, "last_cycle": "2026-01-02T03:04Z"}}

    async def refresh_metrics(self) -> None:
        """Count the refresh and move a gauge, as the daemon would from the database."""
        if self.error is not None:
            raise self.error
        self.refreshed += 1
        self.metrics.set_parked("example", False)


@pytest.fixture
def metrics() -> Metrics:
    """A fresh set of metrics."""
    return Metrics()


@pytest.fixture
def source(metrics: Metrics) -> Source:
    """A healthy source."""
    return Source(metrics)


@pytest.fixture
async def base_url(source: Source, metrics: Metrics) -> AsyncIterator[str]:
    """The health server's base URL."""
    async with serve_app(health_app(source, metrics)) as url:
        yield url


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session."""
    async with aiohttp.ClientSession() as session:
        yield session


async def _get(client: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with client.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


async def test_serve_health_yields_the_bound_port(base_url: str) -> None:
    assert base_url.startswith("http://127.0.0.1:")
    assert int(base_url.rsplit(":", 1)[1]) > 0


async def test_livez_answers_even_when_the_source_fails(
    client: aiohttp.ClientSession, base_url: str, source: Source
) -> None:
    source.error = LeakyError("db down")
    async with client.get(f"{base_url}/livez") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_readyz_is_200_then_503_when_a_check_fails(
    client: aiohttp.ClientSession, base_url: str, source: Source
) -> None:
    async with client.get(f"{base_url}/readyz") as response:
        assert response.status == 200
        assert await response.json() == {
            "ready": True,
            "checks": {
                "database": {"ok": True, "reason": "reachable"},
                "connector:example": {"ok": True, "reason": "listed 12s ago"},
            },
        }
    source.checks["connector:example"] = Check(ok=False, reason="stale: no listing for 2h")
    async with client.get(f"{base_url}/readyz") as response:
        assert response.status == 503
        body = await response.json()
    assert body["ready"] is False
    assert body["checks"]["database"] == {"ok": True, "reason": "reachable"}
    assert body["checks"]["connector:example"] == {
        "ok": False,
        "reason": "stale: no listing for 2h",
    }


async def test_a_failing_source_is_named_by_class_only(
    client: aiohttp.ClientSession, base_url: str, source: Source
) -> None:
    source.error = LeakyError("ann@example.com password=hunter2")
    for path in ("/readyz", "/metrics", "/status"):
        status, _, text = await _get(client, f"{base_url}{path}")
        assert status == 503, path
        assert "error: LeakyError" in text
        assert "ann@example.com" not in text and "hunter2" not in text
    async with client.get(f"{base_url}/readyz") as response:
        assert await response.json() == {
            "ready": False,
            "checks": {"source": {"ok": False, "reason": "error: LeakyError"}},
        }


async def test_metrics_refreshes_then_serves_the_prometheus_text_format(
    client: aiohttp.ClientSession, base_url: str, source: Source, metrics: Metrics
) -> None:
    metrics.observe_request("example", "GET", 200, 0.05)
    metrics.observe_request("example", "GET", 429, 0.01)
    metrics.observe_listing("example", 3.5)
    metrics.observe_push("example", "deactivate", 0.2)
    metrics.cycle_succeeded("example", datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    metrics.set_rates("example", 4.5, 5.0)
    status, content_type, text = await _get(client, f"{base_url}/metrics")
    assert status == 200
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert source.refreshed == 1
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert {
        "syncd_vendor_requests",
        "syncd_vendor_throttled",
        "syncd_budget_rate_per_second",
        "syncd_budget_learned_rate_per_second",
        "syncd_listing_duration_seconds",
        "syncd_accounts",
        "syncd_people",
        "syncd_conflicts_open",
        "syncd_orphans",
        "syncd_outbox_operations",
        "syncd_push_latency_seconds",
        "syncd_last_successful_cycle_timestamp_seconds",
        "syncd_connector_parked",
    } <= families.keys()
    parked = families["syncd_connector_parked"].samples
    assert [(s.labels, s.value) for s in parked] == [({"connector": "example"}, 0.0)]
    throttled = families["syncd_vendor_throttled"].samples
    assert ({"connector": "example"}, 1.0) in [(s.labels, s.value) for s in throttled]


async def test_status_is_the_sources_summary_as_json(
    client: aiohttp.ClientSession, base_url: str
) -> None:
    async with client.get(f"{base_url}/status") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.json() == {
            "example": {"parked": False, "accounts": 250, "last_cycle": "2026-01-02T03:04Z"}
        }


async def test_no_access_log_is_written(
    client: aiohttp.ClientSession, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp.access")
    await _get(client, f"{base_url}/livez")
    assert [record for record in caplog.records if record.name == "aiohttp.access"] == []
