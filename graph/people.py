"""Upsert people from an authority, with their emails and lifecycle."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.audit import SYNCD
from graph.db import Database
from graph.emails import DEFAULT_POLICY, EmailPolicy, normalize_email
from graph.models import (
    conflict_table,
    event_table,
    person_email_table,
    person_table,
    utcnow,
)
from graph.records import LIFECYCLES, PersonRecord
from graph.shared import (
    SOURCES_KEY,
    deprovision_views,
    described_active,
    ids_of,
    linked_ids,
    record_view,
    shared_attributes_json,
    strictest,
    views_of,
)
from graph.sql import IN_CHUNK, chunks, dumps, event_row, execute_many, insert_for, loads

p = person_table
pe = person_email_table
PEOPLE_CHUNK = 1_000
_FIELDS = ("given_name", "family_name", "display_name", "lifecycle")
DEPROVISIONED_EVENT = "person.deprovisioned"


def lifecycle_event(old: str, new: str) -> str:
    """The audit kind of a person's change: a move to deprovisioned is a leaver, as for the feed."""
    if new == "deprovisioned" and old != "deprovisioned":
        return DEPROVISIONED_EVENT
    return "person.updated"


@dataclass
class PeopleStats:
    """What one upsert of people did."""

    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    conflicts: int = 0
    rejections: list[str] = field(default_factory=list)
    rejected_records: list[tuple[int, str]] = field(default_factory=list)  # (record, reason)
    present: set[int] = field(default_factory=set)  # every person the records named
    changed: set[int] = field(default_factory=set)  # people created or updated
    claimed: set[int] = field(default_factory=set)  # people a record changed or kept
    applied: dict[int, int] = field(default_factory=dict)  # record -> the person it describes

    def reject(self, line: int, reason: str) -> None:
        """Count a record that was not applied, with the reason."""
        self.rejected += 1
        self.rejections.append(f"record {line}: {reason}")
        self.rejected_records.append((line, reason))


@dataclass
class _Clean:
    line: int
    record: PersonRecord
    primary: str
    emails: list[tuple[str, str]]  # (normalized, raw), primary first
    attributes_json: str
    loose: dict[str, str]  # each normalized email's loose form, to spot look-alikes


def _clean(
    line: int, record: PersonRecord, policy: EmailPolicy, stats: PeopleStats
) -> _Clean | None:
    def reject(reason: str) -> None:
        stats.reject(line, reason)

    primary = normalize_email(record.email, policy)
    if primary.email is None:
        reject(f"invalid email: {primary.error}")
        return None
    if record.lifecycle not in LIFECYCLES:
        reject(f"lifecycle must be one of {', '.join(LIFECYCLES)}, not {record.lifecycle!r}")
        return None
    emails = [(primary.email, record.email)]
    loose = {primary.email: primary.loose_key or primary.email}
    for alias in record.aliases:
        normalized = normalize_email(alias, policy)
        if normalized.email is None:
            stats.rejections.append(f"record {line}: alias skipped: {normalized.error}")
        elif all(normalized.email != known for known, _ in emails):
            emails.append((normalized.email, alias))
            loose[normalized.email] = normalized.loose_key or normalized.email
    if SOURCES_KEY in record.attributes:
        reject(f"the attribute {SOURCES_KEY} is reserved")
        return None
    try:
        attributes_json = dumps(dict(record.attributes))
    except TypeError as exc:
        reject(f"attributes are not JSON: {exc}")
        return None
    return _Clean(line, record, primary.email, emails, attributes_json, loose)


def _conflict(kind: str, email: str, person_id: int, owner: int, now: datetime) -> dict[str, Any]:
    return {
        "key": f"{kind}:{email}:{person_id}",
        "kind": kind,
        "email": email,
        "person_id": person_id,
        "detail_json": dumps({"claimed_by": owner}),
        "state": "open",
        "created_at": now,
    }


async def _upsert_chunk(
    conn: AsyncConnection,
    batch: list[_Clean],
    source: str,
    stats: PeopleStats,
    untouched: Collection[int],
    actor: str,
) -> None:
    now = utcnow()
    all_emails = {email for item in batch for email, _ in item.emails}
    owner: dict[str, int] = {}
    authority_of: dict[int, str | None] = {}
    ids: dict[int, dict[str, str | None]] = {}  # each authority's id for the email's holder
    for row in await conn.execute(
        sa.select(pe.c.email, pe.c.person_id, p.c.authority_id, p.c.source, p.c.attributes_json)
        .join(p, p.c.id == pe.c.person_id)
        .where(pe.c.email.in_(all_emails))
    ):
        owner[row.email] = row.person_id
        authority_of[row.person_id] = row.authority_id
        ids[row.person_id] = ids_of(row)
    authority_ids = [item.record.authority_id for item in batch if item.record.authority_id]
    by_authority = {
        row.authority_id: row.id
        for row in await conn.execute(
            sa.select(p.c.id, p.c.authority_id).where(p.c.authority_id.in_(authority_ids))
        )
    }
    by_authority.update(
        await linked_ids(conn, source, {aid for aid in authority_ids if aid not in by_authority})
    )

    creates: list[_Clean] = []
    claims: dict[object, list[tuple[_Clean, bool]]] = {}  # target -> (record, by employee id)
    conflicts: list[dict[str, Any]] = []
    for item in batch:
        aid = item.record.authority_id
        person_id = by_authority.get(aid) if aid else None
        by_aid = person_id is not None
        holder = owner.get(item.primary)
        if person_id is None and holder is not None:
            known_as = authority_of.get(holder)
            # Another authority's person: this one links to them (graph/shared.py).
            joins = bool(aid) and source not in ids[holder]
            if known_as is not None and known_as != aid and not joins:
                # The address belongs to someone the authority knows under another id (or
                # the row has none): never take that person over.
                stats.present.add(holder)
                if aid:
                    conflicts.append(
                        _conflict("email_claimed_twice", item.primary, holder, holder, now)
                    )
                    stats.reject(item.line, "email belongs to another person")
                else:
                    stats.reject(
                        item.line, "no employee_id, and the email belongs to a person who has one"
                    )
                continue
            person_id = holder
        if person_id is not None and person_id in untouched:
            stats.reject(item.line, "the same person is on an invalid row")
            continue
        if person_id is not None and person_id in stats.claimed:
            stats.present.add(person_id)
            stats.reject(item.line, "the same person appears twice")
            continue
        target: object = person_id
        if person_id is None:
            target = ("new employee", aid) if aid else ("new email", item.primary)
        claims.setdefault(target, []).append((item, by_aid))

    matched: dict[int, _Clean] = {}
    claimed_here: set[str] = set()  # emails that people created in this chunk take
    for target, items in claims.items():
        winners = [item for item, by_aid in items if by_aid] if len(items) > 1 else [items[0][0]]
        if isinstance(target, int):
            stats.present.add(target)
        for item, _ in items:
            if len(winners) != 1:
                stats.reject(item.line, "the same person appears twice")
            elif item is not winners[0]:
                stats.reject(
                    item.line, "the same person appears twice (another row has their employee_id)"
                )
        if len(winners) != 1:
            continue
        item = winners[0]
        if isinstance(target, int):
            matched[target] = item
            stats.applied[item.line] = target
            continue
        if item.primary in claimed_here:
            stats.reject(item.line, "email repeated in this feed")
            continue
        item.emails = [pair for pair in item.emails if pair[0] not in claimed_here]
        claimed_here.update(email for email, _ in item.emails)
        creates.append(item)
    stats.claimed.update(matched)

    events: list[dict[str, Any]] = []
    new_emails: list[dict[str, Any]] = []

    if creates:
        rows = await conn.execute(
            sa.insert(p).returning(p.c.id, p.c.primary_email),
            [
                {
                    "authority_id": item.record.authority_id,
                    "primary_email": item.primary,
                    "given_name": item.record.given_name,
                    "family_name": item.record.family_name,
                    "display_name": item.record.display_name,
                    "lifecycle": item.record.lifecycle,
                    "attributes_json": item.attributes_json,
                    "source": source,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for item in creates
            ],
        )
        created = {row.primary_email: row.id for row in rows}
        stats.present.update(created.values())
        stats.claimed.update(created.values())
        stats.changed.update(created.values())
        for item in creates:
            person_id = created[item.primary]
            stats.applied[item.line] = person_id
            for email, raw in item.emails:
                if email in owner:
                    conflicts.append(
                        _conflict("email_claimed_twice", email, person_id, owner[email], now)
                    )
                    continue
                new_emails.append(
                    _email_row(
                        person_id, email, raw, item.loose[email], email == item.primary, source, now
                    )
                )
            events.append(
                event_row(
                    source,
                    "person.created",
                    person_id,
                    now,
                    None,
                    {"email": item.primary, "lifecycle": item.record.lifecycle},
                    "person",
                    actor=actor,
                    person_id=person_id,
                )
            )
        stats.created += len(creates)

    stats.present.update(matched)
    if matched:
        await _update_matched(
            conn, matched, owner, (source, actor), now, stats, events, conflicts, new_emails
        )

    await execute_many(conn, sa.insert(pe), new_emails)
    await execute_many(conn, sa.insert(event_table), events)
    if conflicts:
        statement = insert_for(conn, conflict_table).on_conflict_do_nothing(index_elements=["key"])
        await conn.execute(statement, conflicts)
        stats.conflicts += len(conflicts)


def _email_row(
    person_id: int, email: str, raw: str, loose: str, primary: bool, source: str, now: datetime
) -> dict[str, Any]:
    return {
        "person_id": person_id,
        "email": email,
        "email_loose": loose,
        "raw": raw,
        "is_primary": primary,
        "source": source,
        "added_at": now,
    }


async def _update_matched(
    conn: AsyncConnection,
    matched: dict[int, _Clean],
    owner: dict[str, int],
    origin: tuple[str, str],  # (source, actor)
    now: datetime,
    stats: PeopleStats,
    events: list[dict[str, Any]],
    conflicts: list[dict[str, Any]],
    new_emails: list[dict[str, Any]],
) -> None:
    current = {
        row.id: row for row in await conn.execute(sa.select(p).where(p.c.id.in_(list(matched))))
    }
    source, actor = origin
    updates: list[dict[str, Any]] = []
    primary_moves: list[dict[str, Any]] = []
    for person_id, item in matched.items():
        row = current[person_id]
        wanted = {name: getattr(item.record, name) for name in _FIELDS}
        attributes_json, authority_id = item.attributes_json, item.record.authority_id
        views = views_of(row)
        if source not in views or len(views) > 1:  # two authorities describe this person
            views[source] = record_view(item.record)
            wanted["lifecycle"] = strictest(views)
            attributes_json = shared_attributes_json(item.record.attributes, views)
            authority_id = row.authority_id  # the first authority's; the others' are in views
        before: dict[str, object] = {}
        after: dict[str, object] = {}
        for name, value in wanted.items():
            if getattr(row, name) != value:
                before[name], after[name] = getattr(row, name), value
        if row.attributes_json != attributes_json:
            old, new = loads(row.attributes_json), loads(attributes_json)
            changed = sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))
            before["attributes"] = {key: old.get(key) for key in changed}
            after["attributes"] = {key: new.get(key) for key in changed}
        primary = row.primary_email
        for email, raw in item.emails:
            holder = owner.get(email)
            if holder is None:
                new_emails.append(
                    _email_row(person_id, email, raw, item.loose[email], False, source, now)
                )
                owner[email] = person_id
            elif holder != person_id:
                conflicts.append(_conflict("email_claimed_twice", email, person_id, holder, now))
        if item.primary != primary and owner.get(item.primary) == person_id:
            before["primary_email"], after["primary_email"] = primary, item.primary
            primary = item.primary
            primary_moves.append({"pid": person_id, "primary": primary})
        if authority_id and row.authority_id != authority_id:
            before["authority_id"], after["authority_id"] = row.authority_id, authority_id
        if not before:
            stats.unchanged += 1
            continue
        updates.append(
            {
                "pid": person_id,
                "authority_id": authority_id or row.authority_id,
                "primary_email": primary,
                **wanted,
                "attributes_json": attributes_json,
                "version": row.version + 1,
            }
        )
        events.append(
            event_row(
                source,
                lifecycle_event(row.lifecycle, wanted["lifecycle"]),
                person_id,
                now,
                before,
                after,
                "person",
                actor=actor,
                person_id=person_id,
            )
        )
        stats.changed.add(person_id)
    if updates:
        await conn.execute(
            sa.update(p)
            .where(p.c.id == sa.bindparam("pid"))
            .values(
                {name: sa.bindparam(name) for name in updates[0] if name != "pid"}
                | {"updated_at": now, "source": source}
            ),
            updates,
        )
        stats.updated += len(updates)
    # New emails must exist before they can be flagged primary.
    await execute_many(conn, sa.insert(pe), new_emails)
    new_emails.clear()
    if primary_moves:
        await conn.execute(
            sa.update(pe)
            .where(pe.c.person_id == sa.bindparam("pid"))
            .values(is_primary=pe.c.email == sa.bindparam("primary")),
            primary_moves,
        )


async def upsert_people(
    db: Database,
    records: Iterable[PersonRecord],
    source: str,
    policy: EmailPolicy = DEFAULT_POLICY,
) -> PeopleStats:
    """Create or update people; an email another person holds becomes a conflict."""
    async with db.write() as conn:
        return await upsert_people_in(conn, records, source, policy)


async def upsert_people_in(
    conn: AsyncConnection,
    records: Iterable[PersonRecord],
    source: str,
    policy: EmailPolicy = DEFAULT_POLICY,
    untouched: Collection[int] = frozenset(),
    *,
    actor: str = SYNCD,
) -> PeopleStats:
    """Upsert people inside the caller's transaction (`actor` in the audit trail).

    `untouched` people are never changed.
    """
    stats = PeopleStats()
    for batch in chunks(enumerate(records, start=1), PEOPLE_CHUNK):
        stats.received += len(batch)
        cleaned = [item for line, record in batch if (item := _clean(line, record, policy, stats))]
        if cleaned:
            await _upsert_chunk(conn, cleaned, source, stats, untouched, actor)
    return stats


async def active_from(conn: AsyncConnection, source: str) -> set[int]:
    """The people an authority last described as not deprovisioned."""
    return await described_active(conn, source)


async def deprovision(conn: AsyncConnection, person_ids: Iterable[int], source: str) -> int:
    """Mark people deprovisioned (they left the authority), one version up each."""
    ids = sorted(person_ids)
    now = utcnow()
    for batch in chunks(ids, IN_CHUNK):
        await conn.execute(
            sa.update(p)
            .where(p.c.id.in_(batch), p.c.lifecycle != "deprovisioned")
            .values(
                lifecycle="deprovisioned", version=p.c.version + 1, updated_at=now, source=source
            )
        )
    await deprovision_views(conn, ids, source)
    await execute_many(
        conn,
        sa.insert(event_table),
        [
            event_row(
                source,
                DEPROVISIONED_EVENT,
                person_id,
                now,
                None,
                None,
                "person",
                person_id=person_id,
            )
            for person_id in ids
        ],
    )
    return len(ids)


async def people_named(
    conn: AsyncConnection, authority_ids: Iterable[str], emails: Iterable[str], source: str
) -> set[int]:
    """The people `source`'s id (an employee id) or a (normalized) email names."""
    found: set[int] = set()
    ids = set(authority_ids)
    for batch in chunks(sorted(ids), IN_CHUNK):
        rows = await conn.execute(sa.select(p.c.id).where(p.c.authority_id.in_(batch)))
        found.update(rows.scalars())
    found.update((await linked_ids(conn, source, ids)).values())
    for batch in chunks(sorted(set(emails)), IN_CHUNK):
        rows = await conn.execute(sa.select(pe.c.person_id).where(pe.c.email.in_(batch)))
        found.update(rows.scalars())
    return found


async def primary_emails(conn: AsyncConnection, person_ids: Iterable[int]) -> dict[int, str]:
    """Each person's primary email, for an operator's eyes."""
    found: dict[int, str] = {}
    for batch in chunks(sorted(set(person_ids)), IN_CHUNK):
        rows = await conn.execute(sa.select(p.c.id, p.c.primary_email).where(p.c.id.in_(batch)))
        found.update({row.id: row.primary_email for row in rows})
    return found
