"""What differs between Users and Groups: checks, storage, and the people a write affects."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from graph import scim
from graph.emails import normalize_email
from graph.scim import StoredResource
from syncd.authority.scim.mapping import SOURCE, login_email, person_record, user_emails
from syncd.authority.scim.protocol import GROUP_MODEL, USER_MODEL, BadRequest

Resource = Mapping[str, Any]


class Kind:
    """One SCIM resource type as syncd stores it."""

    def __init__(self, name: str, model: Any) -> None:
        self.name = name  # "User" or "Group"
        self.endpoint = f"{name}s"
        self.model = model  # the scim2-models class

    async def new_id(self, conn: AsyncConnection, resource: Resource) -> str:
        """The id a created resource gets: a new random one."""
        return str(uuid.uuid4())

    async def check(self, conn: AsyncConnection, resource: Resource) -> None:
        """Refuse a resource the graph cannot take (BadRequest)."""

    def children(self, resource: Resource) -> Sequence[Any]:
        """What the graph keeps in the resource's child table."""
        return ()

    async def save(
        self, conn: AsyncConnection, resource: Resource, version: int, created: datetime | None
    ) -> StoredResource:
        """Store the resource at this version (1: insert) with its child rows."""
        return await scim.save_resource(
            conn, self.name, resource, self.children(resource), version=version, created_at=created
        )

    def affected(self, before: Resource | None, after: Resource | None) -> set[str]:
        """The users whose person record this change alters."""
        raise NotImplementedError


class Users(Kind):
    """SCIM Users: each one is an authority person."""

    async def new_id(self, conn: AsyncConnection, resource: Resource) -> str:
        """A new id, or the deleted user's whose person this one's email names (a rehire)."""
        email = normalize_email(login_email(resource)).email or ""
        return await scim.vacated_authority_id(conn, email, SOURCE) or str(uuid.uuid4())

    async def check(self, conn: AsyncConnection, resource: Resource) -> None:
        """A userName nobody else holds, and a usable email."""
        if await scim.user_name_taken(conn, resource["userName"], but=resource["id"]):
            raise BadRequest(409, "userName is already taken", "uniqueness")
        person_record(resource, ())

    def children(self, resource: Resource) -> Sequence[Any]:
        """The user's emails."""
        return user_emails(resource)

    def affected(self, before: Resource | None, after: Resource | None) -> set[str]:
        """The user itself."""
        return {str((after or before or {})["id"])}


def member_ids(resource: Resource | None) -> set[str]:
    """The ids a group's members name."""
    members = (resource or {}).get("members") or ()
    return {str(member["value"]) for member in members if member.get("value")}


class Groups(Kind):
    """SCIM Groups: their membership becomes each member's `groups` attribute."""

    async def check(self, conn: AsyncConnection, resource: Resource) -> None:
        """Every member is a stored user."""
        wanted = member_ids(resource)
        unknown = wanted - await scim.existing_users(conn, wanted)
        if unknown:
            listed = ", ".join(sorted(unknown)[:5])
            raise BadRequest(
                400, f"members must be existing Users; unknown: {listed}", "invalidValue"
            )

    def children(self, resource: Resource) -> Sequence[Any]:
        """The ids of the group's members."""
        return sorted(member_ids(resource))

    def affected(self, before: Resource | None, after: Resource | None) -> set[str]:
        """Members who joined or left; every member when the group was renamed or removed."""
        old, new = member_ids(before), member_ids(after)
        renamed = (before or {}).get("displayName") != (after or {}).get("displayName")
        return old | new if before is None or after is None or renamed else old ^ new


KINDS: dict[str, Kind] = {
    "Users": Users("User", USER_MODEL),
    "Groups": Groups("Group", GROUP_MODEL),
}
