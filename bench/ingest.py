"""Ingest benchmark: synthetic accounts for five connectors into a fresh graph; prints JSON."""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import asyncpg

from bench.database import bench_database
from graph.records import PersonRecord
from graph.sql import chunks, dumps
from graph.store import GraphStore

CONNECTORS = ("influitive", "thought_industries", "partnerize", "userflow", "appxite")
BATCH = 5_000
ORPHAN_EVERY = 10  # one account in ten belongs to nobody the authority knows


@dataclass(frozen=True, slots=True)
class Account:
    """A synthetic vendor account."""

    external_id: str
    email: str | None
    status: str
    attributes: dict[str, object]
    raw: dict[str, object]


def accounts(connector: str, count: int) -> Iterator[Account]:
    """The same `count` accounts every time for this connector."""
    for i in range(count):
        email = f"user{i}@orphans.example.com" if i % ORPHAN_EVERY == 0 else f"user{i}@example.com"
        yield Account(
            external_id=f"{connector[:3]}-{i}",
            email=email,
            status="active",
            attributes={
                "given_name": f"Given{i}",
                "family_name": f"Family{i}",
                "title": "Engineer",
            },
            raw={
                "id": i,
                "email": email,
                "first": f"Given{i}",
                "last": f"Family{i}",
                "x": "y" * 40,
            },
        )


def people(count: int) -> Iterator[PersonRecord]:
    """One person for each account index."""
    for i in range(count):
        yield PersonRecord(
            email=f"user{i}@example.com", authority_id=f"E{i}", given_name=f"Given{i}"
        )


def raw_rows(connector: str, count: int) -> Iterator[tuple[str, str, str | None, str, str, str]]:
    """The same accounts as plain tuples for the bare-driver baseline."""
    for account in accounts(connector, count):
        yield (
            connector,
            account.external_id,
            account.email,
            account.status,
            dumps(account.attributes),
            dumps(account.raw),
        )


RAW_TABLE = """CREATE TABLE IF NOT EXISTS raw_account (
  id {serial} PRIMARY KEY, connector VARCHAR NOT NULL, external_id VARCHAR NOT NULL,
  email VARCHAR, status VARCHAR NOT NULL, attributes_json VARCHAR NOT NULL,
  raw_json VARCHAR NOT NULL, UNIQUE (connector, external_id))"""
RAW_UPSERT = """INSERT INTO raw_account (connector, external_id, email, status, attributes_json,
  raw_json) VALUES ({p}) ON CONFLICT (connector, external_id) DO UPDATE SET email = excluded.email,
  status = excluded.status, attributes_json = excluded.attributes_json,
  raw_json = excluded.raw_json"""


def raw_sqlite(path: Path, per_connector: int) -> tuple[float, float]:
    """Seconds (wall, then CPU) for a plain sqlite3 executemany upsert of the same rows."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(RAW_TABLE.format(serial="INTEGER"))
    statement = RAW_UPSERT.format(p="?, ?, ?, ?, ?, ?")
    start, cpu = time.perf_counter(), time.process_time()
    for connector in CONNECTORS:
        for batch in chunks(raw_rows(connector, per_connector), BATCH):
            conn.executemany(statement, batch)
            conn.commit()
    elapsed = time.perf_counter() - start, time.process_time() - cpu
    conn.close()
    return elapsed


async def raw_postgres(url: str, per_connector: int) -> float:
    """Seconds for a plain asyncpg executemany upsert of the same rows."""
    conn = await asyncpg.connect(url)
    await conn.execute("DROP TABLE IF EXISTS raw_account")
    await conn.execute(RAW_TABLE.format(serial="SERIAL"))
    statement = RAW_UPSERT.format(p="$1, $2, $3, $4, $5, $6")
    start = time.perf_counter()
    for connector in CONNECTORS:
        for batch in chunks(raw_rows(connector, per_connector), BATCH):
            await conn.executemany(statement, batch)
    elapsed = time.perf_counter() - start
    await conn.execute("DROP TABLE raw_account")
    await conn.close()
    return elapsed


RAW_STAGE = """CREATE TEMPORARY TABLE raw_stage (connector VARCHAR, external_id VARCHAR,
  email VARCHAR, status VARCHAR, attributes_json VARCHAR, raw_json VARCHAR) ON COMMIT DROP"""
RAW_MERGE = """INSERT INTO raw_account (connector, external_id, email, status, attributes_json,
  raw_json) SELECT * FROM raw_stage ON CONFLICT (connector, external_id) DO UPDATE
  SET email = excluded.email, status = excluded.status, attributes_json = excluded.attributes_json,
  raw_json = excluded.raw_json WHERE raw_account.raw_json IS DISTINCT FROM excluded.raw_json"""


async def raw_postgres_copy(url: str, per_connector: int) -> float:
    """Seconds for asyncpg binary COPY of the same rows into a temporary table plus one merge."""
    conn = await asyncpg.connect(url)
    await conn.execute("DROP TABLE IF EXISTS raw_account")
    await conn.execute(RAW_TABLE.format(serial="SERIAL"))
    start = time.perf_counter()
    for connector in CONNECTORS:
        for batch in chunks(raw_rows(connector, per_connector), BATCH):
            async with conn.transaction():
                await conn.execute(RAW_STAGE)
                await conn.copy_records_to_table("raw_stage", records=batch)
                await conn.execute(RAW_MERGE)
    elapsed = time.perf_counter() - start
    await conn.execute("DROP TABLE raw_account")
    await conn.close()
    return elapsed


async def ingest_all(store: GraphStore, per_connector: int) -> tuple[float, float, int]:
    """Seconds (wall, then this process's CPU) to ingest and finish a full listing of every
    connector, and rows written.
    """
    written = 0
    start, cpu = time.perf_counter(), time.process_time()
    for connector in CONNECTORS:
        listing = await store.begin_listing(connector)
        pages = chunks(accounts(connector, per_connector), BATCH)
        written += (await store.ingest_pages(listing, pages)).rows_written
        await store.finish_listing(listing, complete=True)
    return time.perf_counter() - start, time.process_time() - cpu, written


async def timed_resolve(store: GraphStore) -> tuple[float, int]:
    """Seconds to resolve every connector, and how many accounts were linked."""
    start = time.perf_counter()
    linked = 0
    for connector in CONNECTORS:
        linked += (await store.resolve(connector)).linked
    return time.perf_counter() - start, linked


async def run(total: int, backend: str, workdir: Path, database: str) -> dict[str, object]:
    """Run every phase and return the figures."""
    per_connector = total // len(CONNECTORS)
    url = await bench_database(backend, workdir, database, "SYNCD_BENCH_POSTGRES_URL")
    store = await GraphStore.open(url)
    try:
        start = time.perf_counter()
        await store.upsert_people(people(per_connector), source="hr")
        people_s = time.perf_counter() - start

        first_s, first_cpu_s, first_written = await ingest_all(store, per_connector)
        resolve_s, linked = await timed_resolve(store)
        again_s, _, again_written = await ingest_all(store, per_connector)
        again_resolve_s, _ = await timed_resolve(store)
    finally:
        await store.close()
    copy: dict[str, object] = {}
    if backend == "sqlite":
        raw_s, raw_cpu_s = raw_sqlite(workdir / "raw.db", per_connector)
        # CPU time of this process (the driver's thread included) is steadier than wall time
        # on a loaded machine; on PostgreSQL most of the work is the server's.
        copy = {
            "first_ingest_cpu_s": round(first_cpu_s, 2),
            "raw_upsert_cpu_s": round(raw_cpu_s, 2),
            "raw_cpu_ratio": round(first_cpu_s / raw_cpu_s, 2),
        }
    else:
        raw_s = await raw_postgres(url, per_connector)
        copy_s = await raw_postgres_copy(url, per_connector)
        copy = {"copy_merge_s": round(copy_s, 2), "copy_merge_ratio": round(first_s / copy_s, 2)}
    accounts_total = per_connector * len(CONNECTORS)
    return {
        "backend": backend,
        "accounts": accounts_total,
        "people": per_connector,
        "people_per_s": round(per_connector / people_s),
        "first_ingest_s": round(first_s, 2),
        "first_rows_written": first_written,
        "resolve_s": round(resolve_s, 2),
        "linked": linked,
        "accounts_per_s": round(accounts_total / (first_s + resolve_s)),
        "raw_upsert_s": round(raw_s, 2),
        "raw_ratio": round(first_s / raw_s, 2),
        **copy,
        "reingest_s": round(again_s + again_resolve_s, 2),
        "reingest_rows_written": again_written,
        "reingest_ratio": round((again_s + again_resolve_s) / (first_s + resolve_s), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    """Parse arguments, run the benchmark, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--database", default="syncd_bench", help="PostgreSQL database to recreate")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as workdir:
        figures = anyio.run(run, args.accounts, args.backend, Path(workdir), args.database)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
