"""Metrics: counters from observations, gauges refreshed from a real graph on both backends."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families

from graph import outbox
from graph.outbox import OperationSpec
from graph.records import PersonRecord
from graph.store import GraphStore
from syncd.service.metrics import Metrics
from tests.graph.helpers import Rec, full_listing


def _value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def _series(metrics: Metrics, name: str) -> dict[tuple[str, ...], float]:
    """Every sample of one metric, keyed by its label values."""
    return {
        tuple(sample.labels.values()): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if sample.name == name
    }


def test_requests_are_counted_by_status_and_429s_apart() -> None:
    metrics = Metrics()
    for status in (200, 200, 429, 0, 503):
        metrics.observe_request("alpha", "GET", status, 0.1)
    metrics.observe_request("beta", "PATCH", 429, 0.1)
    assert _value(metrics, "syncd_vendor_requests_total", connector="alpha", status="200") == 2
    assert _value(metrics, "syncd_vendor_requests_total", connector="alpha", status="0") == 1
    assert _value(metrics, "syncd_vendor_throttled_total", connector="alpha") == 1
    assert _value(metrics, "syncd_vendor_throttled_total", connector="beta") == 1


def test_timings_rates_cycles_and_parking() -> None:
    metrics = Metrics()
    metrics.observe_listing("alpha", 42.0)
    metrics.observe_push("alpha", "deactivate", 0.3)
    metrics.set_rates("alpha", 4.0, 5.0)
    metrics.set_parked("alpha", True)
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    metrics.cycle_succeeded("alpha", at)
    assert _value(metrics, "syncd_listing_duration_seconds_count", connector="alpha") == 1
    assert _value(metrics, "syncd_listing_duration_seconds_sum", connector="alpha") == 42.0
    assert (
        _value(metrics, "syncd_push_latency_seconds_count", connector="alpha", op="deactivate") == 1
    )
    assert _value(metrics, "syncd_budget_rate_per_second", connector="alpha") == 4.0
    assert _value(metrics, "syncd_budget_learned_rate_per_second", connector="alpha") == 5.0
    assert _value(metrics, "syncd_connector_parked", connector="alpha") == 1
    assert _value(
        metrics, "syncd_last_successful_cycle_timestamp_seconds", connector="alpha"
    ) == pytest.approx(at.timestamp())
    metrics.set_parked("alpha", False)
    metrics.set_rates("alpha", 2.0, None)
    assert _value(metrics, "syncd_connector_parked", connector="alpha") == 0
    assert _value(metrics, "syncd_budget_learned_rate_per_second", connector="alpha") is None


def test_a_cycle_time_without_a_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Metrics().cycle_succeeded("alpha", datetime(2026, 1, 2, 3, 4))


def test_two_sets_of_metrics_do_not_share_a_registry() -> None:
    first, second = Metrics(), Metrics()
    first.observe_request("alpha", "GET", 200, 0.1)
    assert _value(second, "syncd_vendor_requests_total", connector="alpha", status="200") is None


async def _fill(store: GraphStore) -> None:
    """Three people, one email two of them claim, and accounts in two connectors."""
    await store.upsert_people(
        [
            PersonRecord(email="ann@example.com", authority_id="E1"),
            PersonRecord(email="bob@example.com", authority_id="E2", lifecycle="suspended"),
            PersonRecord(email="cy@example.com", authority_id="E3", lifecycle="deprovisioned"),
        ],
        "hr",
    )
    await store.upsert_people(
        [PersonRecord(email="dee@example.com", authority_id="E4", aliases=["ann@example.com"])],
        "hr",
    )
    await full_listing(
        store,
        "alpha",
        [
            Rec("a1", "ann@example.com"),
            Rec("a2", "bob@example.com"),
            Rec("a3", "nobody@example.com"),
            Rec("a4", "ghost@example.com"),
        ],
    )
    await full_listing(store, "beta", [Rec("b1", "cy@example.com")])
    await store.resolve()


async def test_refresh_reads_accounts_people_conflicts_and_orphans(store: GraphStore) -> None:
    await _fill(store)
    metrics = Metrics()
    await metrics.refresh(store.db)
    assert _series(metrics, "syncd_accounts") == {("alpha",): 4, ("beta",): 1}
    assert _series(metrics, "syncd_orphans") == {("alpha",): 2, ("beta",): 0}
    assert _series(metrics, "syncd_people") == {
        ("active",): 2,
        ("suspended",): 1,
        ("deprovisioned",): 1,
    }
    assert _value(metrics, "syncd_conflicts_open") == 1  # dee's claim on ann's address
    assert _series(metrics, "syncd_outbox_operations") == {}


async def test_refresh_drops_label_sets_that_vanished(store: GraphStore) -> None:
    metrics = Metrics()
    async with store.db.write() as conn:
        await outbox.enqueue(
            conn,
            [
                OperationSpec("alpha", "update", {"title": "CTO"}),
                OperationSpec("alpha", "deactivate", {}, key_basis="v2"),
            ],
        )
        await outbox.enqueue(conn, [OperationSpec("beta", "deactivate", {})], held=True)
    await metrics.refresh(store.db)
    assert _series(metrics, "syncd_outbox_operations") == {
        ("alpha", "pending"): 2,
        ("beta", "held"): 1,
    }
    for op in await outbox.claim(store.db, "alpha", limit=5):
        async with store.db.write() as conn:
            await outbox.complete(conn, op)
    await outbox.release_held(store.db, approve=False, actor="t", connector="beta")
    await metrics.refresh(store.db)
    assert _series(metrics, "syncd_outbox_operations") == {
        ("alpha", "done"): 2,
        ("beta", "dead"): 1,
    }


async def test_refresh_of_an_empty_graph_reports_zero_people_in_each_lifecycle(
    store: GraphStore,
) -> None:
    metrics = Metrics()
    metrics.set_parked("alpha", False)  # gauges the daemon sets are not the refresh's to clear
    await metrics.refresh(store.db)
    assert _series(metrics, "syncd_people") == {
        ("active",): 0,
        ("suspended",): 0,
        ("deprovisioned",): 0,
    }
    assert _series(metrics, "syncd_accounts") == {}
    assert _value(metrics, "syncd_conflicts_open") == 0
    assert _value(metrics, "syncd_connector_parked", connector="alpha") == 0
