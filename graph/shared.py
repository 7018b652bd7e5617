"""People two authorities describe (an HR file and SCIM): each one's view, in attributes_json.

A person one authority describes is stored as before. Once a second authority's record
links to them (by email), the person's `attributes_json` also keeps, under `@sources`,
each authority's own view: its id for them, the lifecycle it says, and its attributes and
names. The person's lifecycle is the most restrictive of those views; its other columns
are the last writer's, as for one authority.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.bulk import Bulk
from graph.models import person_table
from graph.records import LIFECYCLES, PersonRecord
from graph.sql import IN_CHUNK, chunks, dumps, loads

p = person_table
SOURCES_KEY = "@sources"
_SHARED = f'%"{SOURCES_KEY}"%'  # the attributes of a person more than one authority describes
# The people one authority alone describes and has not deprovisioned (read through the driver:
# a row for nearly everyone).
_OWN_ACTIVE = """SELECT id FROM person WHERE source = ? AND lifecycle != 'deprovisioned'
  AND NOT attributes_json LIKE ?"""
_NAMES = ("given_name", "family_name", "display_name")
View = dict[str, Any]  # {"id": ..., "lifecycle": ..., "attributes": {...}}


def views_of(row: Any) -> dict[str, View]:
    """Each authority's view of a stored person (the one writer's, until a second links)."""
    attributes = loads(row.attributes_json) or {}
    if SOURCES_KEY in attributes:
        return {source: dict(view) for source, view in attributes[SOURCES_KEY].items()}
    names = {name: getattr(row, name) for name in _NAMES if getattr(row, name) is not None}
    return {
        row.source: {
            "id": row.authority_id,
            "lifecycle": row.lifecycle,
            "attributes": {**attributes, **names},
        }
    }


def ids_of(row: Any) -> dict[str, str | None]:
    """Each authority's id for a stored person (its `source`, `authority_id`, attributes)."""
    if f'"{SOURCES_KEY}"' not in row.attributes_json:
        return {row.source: row.authority_id}
    views = loads(row.attributes_json)[SOURCES_KEY]
    return {source: view.get("id") for source, view in views.items()}


def record_view(record: PersonRecord) -> View:
    """What one authority's record says of a person."""
    names = {name: getattr(record, name) for name in _NAMES if getattr(record, name) is not None}
    return {
        "id": record.authority_id,
        "lifecycle": record.lifecycle,
        "attributes": {**record.attributes, **names},
    }


def strictest(views: Mapping[str, View]) -> str:
    """The lifecycle the views add up to: any deprovision deprovisions, then any suspension."""
    said = {str(view["lifecycle"]) for view in views.values()}
    return next(state for state in reversed(LIFECYCLES) if state in said or state == "active")


def shared_attributes_json(attributes: Mapping[str, object], views: Mapping[str, View]) -> str:
    """The last writer's attributes, with every authority's view beside them."""
    return dumps({**attributes, SOURCES_KEY: dict(views)})


def split(attributes: Mapping[str, Any], source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A stored person's attributes without the views, and each authority's attributes."""
    views = attributes.get(SOURCES_KEY)
    if not isinstance(views, dict):
        own = dict(attributes)
        return own, {source: own}  # one authority: its view is the person, names added later
    own = {key: value for key, value in attributes.items() if key != SOURCES_KEY}
    return own, {name: dict(view.get("attributes", {})) for name, view in views.items()}


def _shared(*columns: Any) -> Any:
    """People more than one authority describes (their views are in attributes_json)."""
    return sa.select(p.c.id, *columns).where(p.c.attributes_json.like(_SHARED))


async def linked_ids(
    conn: AsyncConnection, source: str, authority_ids: Collection[str]
) -> dict[str, int]:
    """The people `source` knows by these ids although another authority created them."""
    if not authority_ids:
        return {}
    found: dict[str, int] = {}
    for row in await conn.execute(_shared(p.c.attributes_json)):
        view = (loads(row.attributes_json) or {}).get(SOURCES_KEY, {}).get(source)
        if view is not None and view.get("id") in authority_ids:
            found[str(view["id"])] = row.id
    return found


async def described_active(conn: AsyncConnection, source: str) -> set[int]:
    """The people `source` last described as not deprovisioned, shared ones by its own view."""
    bulk = await Bulk.on(conn)
    found = {pid for (pid,) in await bulk.fetch(_OWN_ACTIVE, [source, _SHARED])}
    for row in await conn.execute(_shared(p.c.attributes_json)):
        view = (loads(row.attributes_json) or {}).get(SOURCES_KEY, {}).get(source)
        if view is not None and view.get("lifecycle") != "deprovisioned":
            found.add(row.id)
    return found


async def deprovision_views(conn: AsyncConnection, person_ids: Iterable[int], source: str) -> None:
    """Record in shared people's views that `source` deprovisioned them."""
    updates = []
    for batch in chunks(sorted(set(person_ids)), IN_CHUNK):
        for row in await conn.execute(_shared(p.c.attributes_json).where(p.c.id.in_(batch))):
            attributes = loads(row.attributes_json)
            view = attributes[SOURCES_KEY].get(source)
            if view is not None:
                view["lifecycle"] = "deprovisioned"
                updates.append({"pid": row.id, "attributes_json": dumps(attributes)})
    if updates:
        await conn.execute(
            sa.update(p)
            .where(p.c.id == sa.bindparam("pid"))
            .values(attributes_json=sa.bindparam("attributes_json")),
            updates,
        )
