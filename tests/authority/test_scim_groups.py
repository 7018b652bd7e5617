"""Groups over the live endpoint: membership becomes each member's `groups` attribute."""

from __future__ import annotations

from typing import Any

from graph.scim import save_resource
from graph.sql import IN_CHUNK
from syncd.authority.scim.mapping import user_emails
from tests.authority.conftest import GROUP, Scim, user_body


async def groups_of(scim: Scim, email: str) -> Any:
    """The `groups` attribute of the person with this email."""
    person = await scim.engine.store.person(email)
    assert person is not None
    return person.attributes.get("groups")


async def test_group_membership_reaches_the_people(scim: Scim) -> None:
    ada = await scim.create_user("ada@example.com")
    bob = await scim.create_user("bob@example.com")
    cy = await scim.create_user("cy@example.com")
    status, eng, headers = await scim.call(
        "POST",
        "/Groups",
        {
            "schemas": [GROUP],
            "displayName": "Engineering",
            "externalId": "g-eng",
            "members": [{"value": ada["id"]}, {"value": bob["id"]}],
        },
    )
    assert status == 201, eng
    assert headers["ETag"] == 'W/"1"' and eng["meta"]["resourceType"] == "Group"
    assert await groups_of(scim, "ada@example.com") == ["Engineering"]
    assert await groups_of(scim, "cy@example.com") == []
    path = f"/Groups/{eng['id']}"

    # Okta: add one member, remove another by value-path filter.
    status, patched = await scim.patch(
        path,
        {"op": "add", "path": "members", "value": [{"value": cy["id"]}]},
        {"op": "remove", "path": f'members[value eq "{bob["id"]}"]'},
    )
    assert status == 200, patched
    assert {member["value"] for member in patched["members"]} == {ada["id"], cy["id"]}
    assert await groups_of(scim, "bob@example.com") == []
    assert await groups_of(scim, "cy@example.com") == ["Engineering"]

    # Entra: remove a member by value, without a filter in the path.
    status, patched = await scim.patch(
        path,
        {"op": "Remove", "path": "members", "value": [{"value": cy["id"]}]},
        {"op": "Replace", "path": "displayName", "value": "Eng"},
    )
    assert status == 200, patched
    assert await groups_of(scim, "cy@example.com") == []
    assert await groups_of(scim, "ada@example.com") == ["Eng"]

    for text, expected in (
        ('displayName eq "eng"', 1),
        ('externalId eq "g-eng"', 1),
        (f'members.value eq "{ada["id"]}"', 1),
        (f'members[value eq "{bob["id"]}"]', 0),
    ):
        status, listing, _ = await scim.call("GET", f"/Groups?filter={text}")
        assert status == 200 and listing["totalResults"] == expected, (text, listing)

    status, _, _ = await scim.call("DELETE", path)
    assert status == 204
    assert await groups_of(scim, "ada@example.com") == []


async def test_group_members_must_be_users(scim: Scim) -> None:
    status, error, _ = await scim.call(
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "Ghosts", "members": [{"value": "nobody"}]},
    )
    assert (status, error["scimType"]) == (400, "invalidValue")
    status, listing, _ = await scim.call("GET", "/Groups")
    assert listing["totalResults"] == 0


async def test_deleting_a_user_leaves_its_groups(scim: Scim) -> None:
    ada = await scim.create_user("ada@example.com")
    _, group, _ = await scim.call(
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "Ops", "members": [{"value": ada["id"]}]},
    )
    await scim.call("DELETE", f"/Users/{ada['id']}")
    status, fetched, _ = await scim.call("GET", f"/Groups/{group['id']}")
    assert status == 200 and not fetched.get("members")


async def test_a_group_larger_than_one_in_list(scim: Scim) -> None:
    count = IN_CHUNK + 500
    async with scim.engine.store.db.write() as conn:
        for index in range(count):
            resource = {"id": f"u{index}", **user_body(f"user{index}@example.com")}
            await save_resource(conn, "User", resource, user_emails(resource), version=1)
    members = [{"value": f"u{index}"} for index in range(count)]
    status, group = await scim.post("/Groups", schemas=[GROUP], displayName="All", members=members)
    assert status == 201, group
    assert len(group["members"]) == count
    assert await groups_of(scim, f"user{count - 1}@example.com") == ["All"]
    status, listing = await scim.search("Groups", f'members.value eq "u{count - 1}"')
    assert listing["totalResults"] == 1
