"""What real identity providers send, payloads as their documentation shows them."""

from __future__ import annotations

import urllib.parse
from typing import Any

from tests.authority.conftest import ENTERPRISE, GROUP, USER, Scim

CORE_AND_ENTERPRISE = [USER, ENTERPRISE]


def by_user_name(user_name: str) -> str:
    """The lookup an IdP runs before it creates: `userName eq "..."`."""
    return "/Users?" + urllib.parse.urlencode(
        {"filter": f'userName eq "{user_name}"', "startIndex": "1", "count": "100"}
    )


async def person(scim: Scim, email: str) -> Any:
    """The graph's person with this email."""
    found = await scim.engine.store.person(email)
    assert found is not None, email
    return found


async def test_okta_lifecycle(scim: Scim) -> None:
    status, listing, _ = await scim.call("GET", by_user_name("test.user@example.com"))
    assert (status, listing["totalResults"], listing["Resources"]) == (200, 0, [])
    okta_user = {
        "schemas": [USER],
        "userName": "test.user@example.com",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": "test.user@example.com", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }
    status, created, _ = await scim.call("POST", "/Users", okta_user)
    assert status == 201, created
    assert "password" not in created
    status, listing, _ = await scim.call("GET", by_user_name("test.user@example.com"))
    assert [item["id"] for item in listing["Resources"]] == [created["id"]]
    status, error, _ = await scim.call("POST", "/Users", okta_user)
    assert (status, error["scimType"]) == (409, "uniqueness")

    path = f"/Users/{created['id']}"
    status, body = await scim.patch(path, {"op": "replace", "value": {"active": False}})
    assert (status, body["active"]) == (200, False)
    assert (await person(scim, "test.user@example.com")).lifecycle == "deprovisioned"
    status, body = await scim.patch(path, {"op": "replace", "value": {"active": True}})
    assert (await person(scim, "test.user@example.com")).lifecycle == "active"

    # Okta's older integrations PUT the whole user to deactivate.
    status, body, _ = await scim.call(
        "PUT", path, {**okta_user, "id": created["id"], "active": False}
    )
    assert (status, body["active"]) == (200, False)
    assert (await person(scim, "test.user@example.com")).lifecycle == "deprovisioned"


async def test_entra_lifecycle(scim: Scim) -> None:
    upn = "Test_User_ab6490ee@contoso.onmicrosoft.com"
    status, listing, _ = await scim.call("GET", by_user_name(upn))
    assert listing["totalResults"] == 0
    entra_user = {
        "schemas": CORE_AND_ENTERPRISE,
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": upn,
        "active": True,
        "emails": [
            {
                "primary": True,
                "type": "work",
                "value": "Test_User_fd0ea19b@testuser.com",
            }
        ],
        "meta": {"resourceType": "User"},
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName",
        },
        "roles": [],
        ENTERPRISE: {"employeeNumber": "701984", "manager": {"value": "26118915-6090-4610"}},
    }
    status, created, _ = await scim.call("POST", "/Users", entra_user)
    assert status == 201, created
    found = await person(scim, "test_user_fd0ea19b@testuser.com")
    assert found.authority_id == created["id"]
    assert found.attributes["externalId"] == "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"
    assert found.attributes["manager"] == "26118915-6090-4610"
    path = f"/Users/{created['id']}"

    status, body = await scim.patch(
        path,
        {
            "op": "Replace",
            "path": 'emails[type eq "work"].value',
            "value": "updatedEmail@microsoft.com",
        },
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    )
    assert status == 200, body
    found = await person(scim, "updatedemail@microsoft.com")
    assert found.family_name == "updatedFamilyName"

    status, body = await scim.patch(
        path,
        {
            "op": "Add",
            "value": {
                "name.givenName": "Grace",
                f"{ENTERPRISE}:department": "Navy",
                "title": "Rear Admiral",
            },
        },
    )
    assert status == 200, body
    found = await person(scim, "updatedemail@microsoft.com")
    assert (found.given_name, found.attributes["department"]) == ("Grace", "Navy")
    assert found.attributes["title"] == "Rear Admiral"

    status, body = await scim.patch(
        path,
        {
            "op": "Add",
            "path": f"{ENTERPRISE}:manager",
            "value": "2819c223-7f76-453a-919d-ab1234567891",
        },
    )
    assert status == 200, body
    found = await person(scim, "updatedemail@microsoft.com")
    assert found.attributes["manager"] == "2819c223-7f76-453a-919d-ab1234567891"

    # Disable with the string "False", then delete.
    status, body = await scim.patch(path, {"op": "Replace", "path": "active", "value": "False"})
    assert (status, body["active"]) == (200, False)
    assert (await person(scim, "updatedemail@microsoft.com")).lifecycle == "deprovisioned"
    status, listing, _ = await scim.call("GET", by_user_name(upn))
    assert listing["Resources"][0]["active"] is False
    status, _, _ = await scim.call("DELETE", path)
    assert status == 204
    assert (await person(scim, "updatedemail@microsoft.com")).lifecycle == "deprovisioned"


async def test_entra_string_booleans_on_create(scim: Scim) -> None:
    status, created = await scim.post(
        "/Users",
        schemas=[USER],
        userName="ann@contoso.com",
        active="False",
        emails=[{"primary": "True", "type": "work", "value": "ann@contoso.com"}],
    )
    assert (status, created["active"], created["emails"][0]["primary"]) == (201, False, True)
    assert (await person(scim, "ann@contoso.com")).lifecycle == "deprovisioned"


async def test_entra_groups(scim: Scim) -> None:
    user = await scim.create_user("dev@contoso.com")
    status, group, _ = await scim.call(
        "POST",
        "/Groups",
        {
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "Developers",
            "meta": {"resourceType": "Group"},
            "schemas": [GROUP],
        },
    )
    assert status == 201, group
    path = f"/Groups/{group['id']}"
    member = [{"$ref": None, "value": user["id"]}]
    status, body = await scim.patch(path, {"op": "Add", "path": "members", "value": member})
    assert status == 200, body
    assert (await person(scim, "dev@contoso.com")).attributes["groups"] == ["Developers"]
    status, body = await scim.patch(path, {"op": "Remove", "path": "members", "value": member})
    assert status == 200, body
    assert (await person(scim, "dev@contoso.com")).attributes["groups"] == []


async def test_google_and_onelogin_primary_email(scim: Scim) -> None:
    status, created = await scim.post(
        "/Users",
        schemas=[USER],
        userName="jdoe",
        name={"givenName": "Jane", "familyName": "Doe"},
        emails=[
            {"value": "jane.personal@gmail.com", "type": "home"},
            {"value": "jdoe@example.com", "primary": True},
            {"value": "jane@example.com", "type": "work"},
        ],
        active=True,
    )
    assert status == 201, created
    found = await person(scim, "jdoe@example.com")
    assert found.primary_email == "jdoe@example.com"
    assert {"jane@example.com", "jane.personal@gmail.com"} <= set(found.emails)
