"""The performance benchmarks run end to end at a small size and print the figures they name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_bench(module: str, *args: str, **env: str) -> dict[str, object]:
    """Run `python -m bench.<module> args` from the repository; return its JSON."""
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures: dict[str, object] = json.loads(done.stdout)
    return figures


def test_cycle_times_a_cycle_in_which_nothing_changed() -> None:
    figures = run_bench("cycle", "--people", "300")
    assert figures["people"] == 300
    assert figures["complete"] is True
    assert figures["queued"] == dict.fromkeys(figures["pages"], 0)  # type: ignore[arg-type]
    for key in ("no_change_ratio", "over_listing_ratio", "page_bound_seconds"):
        assert isinstance(figures[key], float) and figures[key] > 0, key  # type: ignore[operator]
    assert isinstance(figures["peak_rss_mb"], float)


def test_ingest_reingests_without_writing() -> None:
    figures = run_bench("ingest", "--accounts", "2000")
    assert figures["accounts"] == 2000
    assert figures["first_rows_written"] == 2000
    assert figures["reingest_rows_written"] == 0
    for key in ("raw_ratio", "reingest_ratio", "accounts_per_s"):
        assert isinstance(figures[key], int | float) and figures[key] > 0, key  # type: ignore[operator]


def test_propagate_times_leavers() -> None:
    figures = run_bench("propagate", "--users", "60", "--batch", "10", "--rate", "200")
    assert figures["users"] == 60
    assert isinstance(figures["leaver_seconds"], float)
    assert isinstance(figures["batch_ratio"], float)


@pytest.mark.skipif(not os.environ.get("SYNCD_TEST_POSTGRES_URL"), reason="needs PostgreSQL (CI)")
def test_ingest_on_postgresql_copies_and_merges() -> None:
    name = os.environ.get("SYNCD_TEST_POSTGRES_DB", "syncd_test") + "_bench"
    figures = run_bench(
        "ingest",
        *("--accounts", "2000", "--backend", "postgres", "--database", name),
        SYNCD_BENCH_POSTGRES_URL=os.environ["SYNCD_TEST_POSTGRES_URL"],  # the server tests use
    )
    assert figures["first_rows_written"] == 2000
    assert figures["reingest_rows_written"] == 0
    assert isinstance(figures["copy_merge_ratio"], float)


@pytest.mark.skipif(not os.environ.get("SYNCD_TEST_POSTGRES_URL"), reason="needs PostgreSQL (CI)")
def test_scaleout_counts_pages_per_replica_count() -> None:
    name = os.environ.get("SYNCD_TEST_POSTGRES_DB", "syncd_test") + "_scaleout"
    figures = run_bench(
        "scaleout",
        *("--replicas", "1,2", "--instances", "4", "--users", "100", "--window", "2"),
        *("--database-name", name),
    )
    assert figures["vendor_limit_pages_per_second"] == 4 * 40.0
    results = figures["replicas"]
    assert isinstance(results, dict) and set(results) == {"1", "2"}
    for count, result in results.items():
        assert result["pages_per_second"] > 0
        assert sum(result["leases_held"]) == 5 and len(result["leases_held"]) == int(count)
