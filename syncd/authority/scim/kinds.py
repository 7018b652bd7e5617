"""What differs between Users and Groups: checks, storage, and the people a write affects."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from graph import scim
from graph.emails import normalize_email
from syncd.authority.scim.mapping import SOURCE, login_email, person_record, user_emails
from syncd.authority.scim.protocol import GROUP_MODEL, USER_MODEL, BadRequest

Resource = Mapping[str, Any]


class Kind(Protocol):
    """One SCIM resource type as syncd stores it."""

    name: str  # "User" or "Group"
    endpoint: str  # "Users" or "Groups"
    model: Any  # the scim2-models class

    async def new_id(self, conn: AsyncConnection, resource: Resource) -> str:
        """The id a created resource gets."""
        ...

    async def check(self, conn: AsyncConnection, resource: Resource) -> None:
        """Refuse a resource the graph cannot take (BadRequest)."""
        ...

    async def save(
        self,
        conn: AsyncConnection,
        resource: Resource,
        version: int,
        created_at: datetime | None = None,
    ) -> None:
        """Store the resource at this version (1: insert)."""
        ...

    def affected(self, before: Resource | None, after: Resource | None) -> set[str]:
        """The users whose person record this change alters."""
        ...


@dataclass(slots=True)
class Users:
    """SCIM Users: each one is an authority person."""

    name: str = "User"
    endpoint: str = "Users"
    model: Any = USER_MODEL

    async def new_id(self, conn: AsyncConnection, resource: Resource) -> str:
        """A new id, or the deleted user's whose person this one's email names (a rehire)."""
        email = normalize_email(login_email(resource)).email or ""
        return await scim.vacated_authority_id(conn, email, SOURCE) or str(uuid.uuid4())

    async def check(self, conn: AsyncConnection, resource: Resource) -> None:
        """A userName nobody else holds, and a usable email."""
        if await scim.user_name_taken(conn, resource["userName"], but=resource["id"]):
            raise BadRequest(409, "userName is already taken", "uniqueness")
        person_record(resource, ())

    async def save(
        self,
        conn: AsyncConnection,
        resource: Resource,
        version: int,
        created_at: datetime | None = None,
    ) -> None:
        """Store the user and its emails."""
        await scim.save_user(
            conn,
            resource["id"],
            resource,
            user_emails(resource),
            version=version,
            created_at=created_at,
        )

    def affected(self, before: Resource | None, after: Resource | None) -> set[str]:
        """The user itself."""
        return {str((after or before or {})["id"])}


def member_ids(resource: Resource | None) -> set[str]:
    """The ids a group's members name."""
    members = (resource or {}).get("members") or ()
    return {str(member["value"]) for member in members if member.get("value")}


@dataclass(slots=True)
class Groups:
    """SCIM Groups: their membership becomes each member's `groups` attribute."""

    name: str = "Group"
    endpoint: str = "Groups"
    model: Any = GROUP_MODEL

    async def new_id(self, conn: AsyncConnection, resource: Resource) -> str:
        """A new random id."""
        return str(uuid.uuid4())

    async def check(self, conn: AsyncConnection, resource: Resource) -> None:
        """Every member is a stored user."""
        wanted = member_ids(resource)
        unknown = wanted - await scim.existing_users(conn, wanted)
        if unknown:
            raise BadRequest(
                400,
                f"members must be existing Users; unknown: {', '.join(sorted(unknown)[:5])}",
                "invalidValue",
            )

    async def save(
        self,
        conn: AsyncConnection,
        resource: Resource,
        version: int,
        created_at: datetime | None = None,
    ) -> None:
        """Store the group and its members."""
        await scim.save_group(
            conn,
            resource["id"],
            resource,
            member_ids(resource),
            version=version,
            created_at=created_at,
        )

    def affected(self, before: Resource | None, after: Resource | None) -> set[str]:
        """Members who joined or left; every member when the group was renamed or removed."""
        old, new = member_ids(before), member_ids(after)
        if before is None or after is None or before.get("displayName") != after.get("displayName"):
            return old | new
        return old ^ new


KINDS: dict[str, Kind] = {"Users": Users(), "Groups": Groups()}
