"""PUT, PATCH and DELETE over the live endpoint: versions, If-Match, and the people they change."""

from __future__ import annotations

import sqlite3

import pytest

from tests.authority.conftest import ENTERPRISE, Scim, ops, user_body


async def test_patch_bumps_the_version_and_updates_the_person(scim: Scim) -> None:
    user = await scim.create_user("ada@example.com", name={"givenName": "Ada"})
    path = f"/Users/{user['id']}"
    status, patched, headers = await scim.call(
        "PATCH",
        path,
        ops(
            {"op": "replace", "path": "name.givenName", "value": "Augusta"},
            {"op": "add", "path": "title", "value": "Countess"},
            {"op": "add", "path": f"{ENTERPRISE}:department", "value": "Math"},
        ),
        **{"If-Match": 'W/"1"'},
    )
    assert status == 200, patched
    assert headers["ETag"] == 'W/"2"' == patched["meta"]["version"]
    assert patched["name"]["givenName"] == "Augusta"
    person = await scim.engine.store.person("ada@example.com")
    assert person is not None
    assert person.given_name == "Augusta"
    assert person.attributes["title"] == "Countess"
    assert person.attributes["department"] == "Math"
    status, error, _ = await scim.call(
        "PATCH", path, ops({"op": "remove", "path": "title"}), **{"If-Match": 'W/"1"'}
    )
    assert (status, error["scimType"]) == (412, "preconditionFailed")
    status, _, headers = await scim.call("PATCH", path, ops({"op": "remove", "path": "title"}))
    assert (status, headers["ETag"]) == (200, 'W/"3"')
    person = await scim.engine.store.person("ada@example.com")
    assert person is not None and "title" not in person.attributes


async def test_patch_value_path_and_multi_valued(scim: Scim) -> None:
    user = await scim.create_user(
        "ada@example.com",
        emails=[
            {"value": "ada@example.com", "type": "work", "primary": True},
            {"value": "ada@home.net", "type": "home"},
        ],
    )
    path = f"/Users/{user['id']}"
    status, patched, _ = await scim.call(
        "PATCH",
        path,
        ops({"op": "replace", "path": 'emails[type eq "work"].value', "value": "ada@corp.com"}),
    )
    assert status == 200, patched
    person = await scim.engine.store.person("ada@corp.com")
    assert person is not None and person.primary_email == "ada@corp.com"
    status, patched, _ = await scim.call(
        "PATCH", path, ops({"op": "remove", "path": 'emails[type eq "home"]'})
    )
    assert [email["value"] for email in patched["emails"]] == ["ada@corp.com"]
    status, patched, _ = await scim.call(
        "PATCH",
        path,
        ops({"op": "add", "path": "emails", "value": [{"value": "a@b.org", "type": "other"}]}),
    )
    assert {email["value"] for email in patched["emails"]} == {"ada@corp.com", "a@b.org"}
    status, listing, _ = await scim.call("GET", "/Users?filter=emails.value%20eq%20%22a@b.org%22")
    assert listing["totalResults"] == 1
    status, _, _ = await scim.call(
        "PATCH",
        path,
        ops({"op": "replace", "path": 'emails[type eq "fax"].display', "value": "x"}),
    )
    assert status == 200  # Entra's unmatched filter path creates the entry


async def test_bad_patches_are_scim_errors(scim: Scim) -> None:
    user = await scim.create_user("ada@example.com")
    path = f"/Users/{user['id']}"
    for body, expected in (
        (ops({"op": "jump", "path": "title", "value": "x"}), "invalidValue"),
        (ops({"op": "replace", "path": "id", "value": "other"}), "mutability"),
        (ops({"op": "replace", "path": "nosuch", "value": "x"}), "invalidPath"),
        ({"Operations": "nope"}, "invalidValue"),
    ):
        status, error, _ = await scim.call("PATCH", path, body)
        assert status == 400, error
        assert error.get("scimType") == expected, error
    other = await scim.create_user("bob@example.com")
    status, error, _ = await scim.call(
        "PATCH",
        f"/Users/{other['id']}",
        ops({"op": "replace", "path": "userName", "value": "ADA@example.com"}),
    )
    assert (status, error["scimType"]) == (409, "uniqueness")
    status, _, _ = await scim.call(
        "PATCH", "/Users/missing", ops({"op": "remove", "path": "title"})
    )
    assert status == 404


async def test_put_replaces_and_keeps_id_and_created(scim: Scim) -> None:
    user = await scim.create_user("ada@example.com", title="Engineer", displayName="Ada")
    path = f"/Users/{user['id']}"
    body = user_body("ada@example.com", displayName="Ada L.")
    status, replaced, headers = await scim.call("PUT", path, body, **{"If-Match": 'W/"1"'})
    assert status == 200, replaced
    assert replaced["id"] == user["id"]
    assert replaced["meta"]["created"] == user["meta"]["created"]
    assert headers["ETag"] == 'W/"2"'
    assert "title" not in replaced
    person = await scim.engine.store.person("ada@example.com")
    assert (
        person is not None and person.display_name == "Ada L." and "title" not in person.attributes
    )
    status, _, _ = await scim.call("PUT", path, body, **{"If-Match": 'W/"1"'})
    assert status == 412
    status, _, headers = await scim.call("PUT", path, body)
    assert headers["ETag"] == 'W/"2"'  # nothing changed, no new version


async def test_delete_deprovisions_and_forgets(scim: Scim) -> None:
    user = await scim.create_user("ada@example.com")
    path = f"/Users/{user['id']}"
    status, _, _ = await scim.call("DELETE", path, **{"If-Match": 'W/"7"'})
    assert status == 412
    status, body, _ = await scim.call("DELETE", path)
    assert (status, body) == (204, None)
    status, _, _ = await scim.call("GET", path)
    assert status == 404
    person = await scim.engine.store.person("ada@example.com")
    assert person is not None and person.lifecycle == "deprovisioned"
    status, _, _ = await scim.call("DELETE", path)
    assert status == 404
    # A rehire: the person comes back under the id it had, the graph's authority id.
    again = await scim.create_user("ada@example.com")
    assert again["id"] == user["id"]
    person = await scim.engine.store.person("ada@example.com")
    assert person is not None and person.lifecycle == "active"


async def test_a_person_the_graph_refuses_rolls_the_write_back(scim: Scim) -> None:
    ada = await scim.create_user("ada@example.com")
    body = user_body("ada2@example.com", emails=[{"value": "ada@example.com", "primary": True}])
    status, error, _ = await scim.call("POST", "/Users", body)
    assert (status, error["scimType"]) == (409, "uniqueness")
    assert "another person" in error["detail"]
    status, listing, _ = await scim.call("GET", "/Users?filter=userName%20sw%20%22ada2%22")
    assert listing["totalResults"] == 0
    person = await scim.engine.store.person("ada@example.com")
    assert person is not None and person.authority_id == ada["id"]


async def test_a_locked_database_is_503_with_retry_after(scim: Scim, db_url: str) -> None:
    """A graph locked past its busy timeout answers 503 + Retry-After, so the IdP retries."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the lock is taken with sqlite3 on the SQLite file")
    blocker = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        status, body, headers = await scim.call("POST", "/Users", user_body("busy@corp.example"))
    finally:
        blocker.close()
    assert status == 503, body
    assert headers["Retry-After"] == "2"
    assert "busy" in body["detail"] and "sqlite" not in body["detail"].lower()
    status, _, _ = await scim.call("POST", "/Users", user_body("busy@corp.example"))
    assert status == 201
