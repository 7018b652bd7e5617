"""The daemon's Prometheus metrics, kept in a registry of their own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

from graph import outbox, queries
from graph.db import Database
from graph.records import LIFECYCLES

# What render() writes. prometheus_client's CONTENT_TYPE_LATEST names version 1.0.0 in
# newer releases, while generate_latest still writes the 0.0.4 text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LISTING_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
M = TypeVar("M", Counter, Gauge, Histogram)

PUSH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    """Counters, gauges and histograms for one daemon; several can live in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.replica: str | None = None  # every series carries it while replicas share work
        self.requests = self._make(
            Counter,
            "syncd_vendor_requests",
            "HTTP attempts sent to vendors, by answer status (0: no answer, timeout or error).",
            ("connector", "status"),
        )
        self.throttled = self._make(
            Counter, "syncd_vendor_throttled", "Vendor answers of 429 Too Many Requests."
        )
        self.rate = self._make(
            Gauge,
            "syncd_budget_rate_per_second",
            "Requests per second the connector's rate budget allows now.",
        )
        self.learned_rate = self._make(
            Gauge,
            "syncd_budget_learned_rate_per_second",
            "The vendor's rate limit as the budget learned it from 429s.",
        )
        self.listing_seconds = self._make(
            Histogram,
            "syncd_listing_duration_seconds",
            "How long one full listing of a connector's accounts took.",
            buckets=LISTING_BUCKETS,
        )
        self.accounts = self._make(Gauge, "syncd_accounts", "Vendor accounts the graph holds.")
        self.people = self._make(Gauge, "syncd_people", "People the graph holds.", ("lifecycle",))
        self.conflicts = self._make(
            Gauge, "syncd_conflicts_open", "Conflicts waiting for a person to settle.", ()
        )
        self.orphans = self._make(
            Gauge, "syncd_orphans", "Live vendor accounts that belong to no person."
        )
        self.outbox = self._make(
            Gauge,
            "syncd_outbox_operations",
            "Outbox operations in each state.",
            ("connector", "state"),
        )
        self.push_seconds = self._make(
            Histogram,
            "syncd_push_latency_seconds",
            "How long one outward write took, from claim to the vendor's answer.",
            ("connector", "op"),
            buckets=PUSH_BUCKETS,
        )
        self.last_cycle = self._make(
            Gauge,
            "syncd_last_successful_cycle_timestamp_seconds",
            "When the connector last finished a cycle cleanly, in Unix seconds.",
        )
        self.hints = self._make(
            Counter,
            "syncd_webhook_hints",
            "Webhook hints by what became of them (queued, coalesced, dropped, refetched, ...).",
            ("connector", "outcome"),
        )
        self.parked = self._make(
            Gauge,
            "syncd_connector_parked",
            "1 while the connector is parked (it stopped polling until fixed), else 0.",
        )

    def _make(
        self,
        kind: type[M],
        name: str,
        documentation: str,
        labels: tuple[str, ...] = ("connector",),
        **options: Any,
    ) -> M:
        """Create one metric in this daemon's registry, labelled by connector unless told."""
        return kind(name, documentation, labels, registry=self.registry, **options)

    def observe_request(self, connector: str, method: str, status: int, seconds: float) -> None:
        """Count one HTTP attempt; fits `VendorHttp.observer`."""
        self.requests.labels(connector, str(status)).inc()
        if status == 429:
            self.throttled.labels(connector).inc()

    def observe_hint(self, connector: str, outcome: str) -> None:
        """Count one webhook hint's outcome."""
        self.hints.labels(connector, outcome).inc()

    def observe_listing(self, connector: str, seconds: float) -> None:
        """Record the duration of one full listing."""
        self.listing_seconds.labels(connector).observe(seconds)

    def observe_push(self, connector: str, op: str, seconds: float) -> None:
        """Record the latency of one outward write."""
        self.push_seconds.labels(connector, op).observe(seconds)

    def cycle_succeeded(self, connector: str, at: datetime) -> None:
        """Record when a connector's cycle last succeeded (a timezone-aware time)."""
        if at.tzinfo is None:
            raise ValueError("cycle time must be timezone-aware")
        self.last_cycle.labels(connector).set(at.timestamp())

    def set_rates(self, connector: str, current: float, learned: float | None) -> None:
        """Publish a connector's current rate and learned limit (None: not learned yet)."""
        self.rate.labels(connector).set(current)
        if learned is None:
            self.learned_rate.remove(connector)  # a no-op when there is no such series
        else:
            self.learned_rate.labels(connector).set(learned)

    def forget(self, connector: str) -> None:
        """Drop a connector's gauges: another replica holds it and reports it now."""
        for gauge in (self.rate, self.learned_rate, self.last_cycle, self.parked):
            gauge.remove(connector)  # a no-op when there is no such series

    def set_parked(self, connector: str, parked: bool) -> None:
        """Publish whether a connector is parked."""
        self.parked.labels(connector).set(1 if parked else 0)

    async def refresh(self, db: Database) -> None:
        """Bring the graph's gauges (accounts, people, conflicts, orphans, outbox) up to date."""
        per_connector = await queries.counts(db)
        people = await queries.people_by_lifecycle(db)
        conflicts = await queries.open_conflict_count(db)
        operations = await outbox.counts_by_state(db)
        # Cleared and refilled with no await in between, so a scrape never sees them empty,
        # and label sets that vanished from the graph vanish from the metrics.
        for gauge in (self.accounts, self.orphans, self.people, self.outbox):
            gauge.clear()
        for row in per_connector:
            self.accounts.labels(row.connector).set(row.accounts)
            self.orphans.labels(row.connector).set(row.orphans)
        for lifecycle in (*LIFECYCLES, *people):
            self.people.labels(lifecycle).set(people.get(lifecycle, 0))
        self.conflicts.set(conflicts)
        for (connector, state), count in operations.items():
            self.outbox.labels(connector, state).set(count)

    def render(self) -> bytes:
        """Return every metric in the Prometheus text format (see CONTENT_TYPE)."""
        if self.replica is None:
            return generate_latest(self.registry)
        return generate_latest(_Labelled(self.registry, {"replica": self.replica}))


class _Labelled:
    """A registry's metrics with labels added to every sample, as a scrape target's would be."""

    def __init__(self, registry: CollectorRegistry, labels: dict[str, str]) -> None:
        self.registry = registry
        self.labels = labels

    def collect(self) -> Iterator[Metric]:
        """Each metric of the registry, its samples labelled."""
        for metric in self.registry.collect():
            metric.samples = [
                sample._replace(labels={**sample.labels, **self.labels})
                for sample in metric.samples
            ]
            yield metric
