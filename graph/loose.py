"""The loosest email key: whether an address could be a person's under any normalization."""

from __future__ import annotations

import unicodedata
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.emails import compatibility_fold, nameprep
from graph.models import person_email_table
from graph.sql import IN_CHUNK, chunks

# The person-side loose key: every person address keeps its NFKC + casefold + IDNA form
# beside the strict key, which is what `loose_email` computes for a valid address.
PERSON_LOOSE_KEY = person_email_table.c.email_loose


def _idna(domain: str) -> str:
    labels = []
    for label in domain.split("."):
        try:
            labels.append(label if label.isascii() else nameprep(label))
        except UnicodeError:
            labels.append(label)
    return ".".join(labels)


def loose_email(raw: object) -> str | None:
    """Fold an address every way: NFKC, casefold, no spaces or invisible characters, IDNA."""
    if not isinstance(raw, str):
        return None
    text = compatibility_fold(raw)
    text = "".join(
        ch for ch in text if not (ch.isspace() or unicodedata.category(ch).startswith("C"))
    )
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return text or None
    return f"{local}@{_idna(domain)}"


async def held_by_people(conn: AsyncConnection, keys: Collection[str]) -> set[str]:
    """The loose keys among these that belong to some person."""
    found: set[str] = set()
    for batch in chunks(sorted(keys), IN_CHUNK):
        rows = await conn.execute(sa.select(PERSON_LOOSE_KEY).where(PERSON_LOOSE_KEY.in_(batch)))
        found.update(rows.scalars())
    return found
