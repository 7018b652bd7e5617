"""Users over the live endpoint: create, read, filter, page, and what the graph holds."""

from __future__ import annotations

import aiohttp
import orjson

from tests.authority.conftest import ENTERPRISE, TOKEN, USER, Scim, user_body


async def test_every_path_needs_the_token(scim: Scim) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/Users", "/ServiceProviderConfig", "/Schemas", "/nowhere"):
            for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                async with session.get(f"{scim.url}{path}", headers=header) as response:
                    assert response.status == 401
                    assert response.headers["WWW-Authenticate"].startswith("Bearer")
                    assert response.content_type == "application/scim+json"
                    body = await response.json(content_type=None)
                    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
                    assert body["status"] == "401"
                    assert TOKEN not in str(body)


async def test_create_stores_an_authority_person(scim: Scim) -> None:
    body = user_body(
        "ada@example.com",
        name={"givenName": "Ada", "familyName": "Lovelace"},
        displayName="Ada Lovelace",
        title="Engineer",
        externalId="ext-1",
        locale="en-GB",
        emails=[
            {"value": "ada.l@example.com", "type": "other"},
            {"value": "ada@example.com", "type": "work", "primary": True},
        ],
        **{ENTERPRISE: {"department": "R&D", "organization": "Acme", "employeeNumber": "7"}},
    )
    status, created, headers = await scim.call("POST", "/Users", body)
    assert status == 201, created
    assert headers["ETag"] == 'W/"1"' == created["meta"]["version"]
    assert headers["Location"] == created["meta"]["location"] == f"{scim.url}/Users/{created['id']}"
    assert created["meta"]["resourceType"] == "User"
    assert scim.wakes, "the pushers were not woken after the commit"
    person = await scim.engine.store.person("ada@example.com")
    assert person is not None
    assert person.authority_id == created["id"]
    assert person.primary_email == "ada@example.com"
    assert "ada.l@example.com" in person.emails
    assert (person.given_name, person.family_name, person.display_name) == (
        "Ada",
        "Lovelace",
        "Ada Lovelace",
    )
    assert person.lifecycle == "active"
    assert person.attributes["company"] == "Acme"
    assert person.attributes["department"] == "R&D"
    assert person.attributes["title"] == "Engineer"
    assert person.attributes["groups"] == []
    status, fetched, headers = await scim.call("GET", f"/Users/{created['id']}")
    assert status == 200 and fetched == created


async def test_duplicate_user_name_is_409_uniqueness(scim: Scim) -> None:
    await scim.create_user("bob@example.com")
    status, error, _ = await scim.call("POST", "/Users", user_body("BOB@example.com"))
    assert status == 409
    assert error["scimType"] == "uniqueness"


async def test_no_usable_email_is_invalid_value(scim: Scim) -> None:
    status, error, _ = await scim.call(
        "POST", "/Users", {"schemas": [USER], "userName": "just-a-name"}
    )
    assert (status, error["scimType"]) == (400, "invalidValue")
    status, _, _ = await scim.call("GET", "/Users?filter=userName%20eq%20%22just-a-name%22")
    assert status == 200


async def test_filters_are_sql(scim: Scim) -> None:
    ada = await scim.create_user("ada@example.com", externalId="A1", displayName="Ada")
    bob = await scim.create_user("bob@example.org", externalId="B2", active=False)
    cy = await scim.create_user(
        "cy@example.com",
        emails=[
            {"value": "cy@example.com", "type": "work"},
            {"value": "cy@home.net", "type": "home"},
        ],
    )
    cases = {
        'userName eq "ADA@example.com"': {ada["id"]},
        'userName sw "b"': {bob["id"]},
        'userName co "example.com"': {ada["id"], cy["id"]},
        "externalId pr": {ada["id"], bob["id"]},
        'externalId eq "a1"': set(),
        "active eq false": {bob["id"]},
        'emails.value eq "cy@home.net"': {cy["id"]},
        'emails[type eq "home" and value ew ".net"]': {cy["id"]},
        'displayName eq "ada" or active eq false': {ada["id"], bob["id"]},
        'not (userName sw "a") and active eq true': {cy["id"]},
        f'id eq "{bob["id"]}"': {bob["id"]},
        'userName ne "ada@example.com"': {bob["id"], cy["id"]},
        'userName sw "%"': set(),
    }
    for text, expected in cases.items():
        status, listing = await scim.search("Users", text)
        assert status == 200, (text, listing)
        assert {item["id"] for item in listing["Resources"]} == expected, text
        assert listing["totalResults"] == len(expected)
    for bad in ('title eq "x"', "userName eq", 'name.givenName eq "x"'):
        status, error = await scim.search("Users", bad)
        assert (status, error["scimType"]) == (400, "invalidFilter"), bad


async def test_paging(scim: Scim) -> None:
    ids = [(await scim.create_user(f"u{index}@example.com"))["id"] for index in range(5)]
    status, page, _ = await scim.call("GET", "/Users?startIndex=2&count=2")
    assert status == 200
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (5, 2, 2)
    assert [item["id"] for item in page["Resources"]] == ids[1:3]
    status, page, _ = await scim.call("GET", "/Users?count=0")
    assert (page["totalResults"], page["Resources"]) == (5, [])
    status, page, _ = await scim.call("GET", "/Users?count=99999&startIndex=-3")
    assert (page["startIndex"], page["itemsPerPage"]) == (1, 5)
    status, error, _ = await scim.call("GET", "/Users?count=many")
    assert (status, error["scimType"]) == (400, "invalidValue")


async def test_attributes_selection(scim: Scim) -> None:
    status, created, headers = await scim.call(
        "POST", "/Users?attributes=userName", user_body("ada@example.com", displayName="Ada")
    )
    assert (status, set(created)) == (201, {"schemas", "id", "userName"})
    assert headers["Location"].endswith(f"/Users/{created['id']}")
    status, only, _ = await scim.call("GET", f"/Users/{created['id']}?attributes=displayName")
    assert status == 200
    assert only["displayName"] == "Ada" and "emails" not in only and only["id"] == created["id"]
    status, without, _ = await scim.call("GET", f"/Users/{created['id']}?excludedAttributes=emails")
    assert "emails" not in without and without["userName"] == "ada@example.com"


async def test_bad_bodies_are_scim_errors(scim: Scim) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"}
    for data, expected in (
        (b"{not json", (400, "invalidSyntax")),
        (b"[1, 2]", (400, "invalidSyntax")),
        (
            b'{"schemas": ["' + USER.encode() + b'"], "userName": "' + b"a" * 5000 + b'"}',
            (400, "invalidValue"),
        ),
        (b'{"schemas": ["' + USER.encode() + b'"], "userName": 12}', (400, "invalidValue")),
    ):
        async with scim.session.post(f"{scim.url}/Users", data=data, headers=headers) as response:
            error = await response.json(content_type=None)
            assert (response.status, error.get("scimType")) == expected, error
    async with scim.session.post(
        f"{scim.url}/Users", data=b"x" * (2 * 1024 * 1024), headers=headers
    ) as response:
        assert response.status == 413
    for kind, expected in (("text/plain", 415), ("application/json; charset=utf-8", 201)):
        body = orjson.dumps(user_body(f"{kind[:4]}@example.com"))
        async with scim.session.post(
            f"{scim.url}/Users", data=body, headers={**headers, "Content-Type": kind}
        ) as response:
            assert response.status == expected, await response.text()
    status, error, _ = await scim.call("GET", "/Users/no-such-id")
    assert status == 404 and error["status"] == "404"
    status, error, _ = await scim.call("DELETE", "/Users")
    assert status == 405 and error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


async def test_search_by_post(scim: Scim) -> None:
    ada = await scim.create_user("ada@example.com", displayName="Ada")
    await scim.create_user("bob@example.com")
    request = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'displayName eq "Ada"',
        "attributes": ["userName"],
        "count": 10,
    }
    for path in ("/Users/.search", "/.search"):
        status, listing, _ = await scim.call("POST", path, request)
        assert status == 200, listing
        assert [item["id"] for item in listing["Resources"]] == [ada["id"]]
        assert "emails" not in listing["Resources"][0]
    status, error, _ = await scim.call("POST", "/.search", {**request, "filter": 'title eq "x"'})
    assert (status, error["scimType"]) == (400, "invalidFilter")
