"""The discovery endpoints describe what the server does (RFC 7644 §4)."""

from __future__ import annotations

from tests.authority.conftest import ENTERPRISE, USER, Scim


async def test_service_provider_config(scim: Scim) -> None:
    status, config, headers = await scim.call("GET", "/ServiceProviderConfig")
    assert status == 200 and headers["Content-Type"].startswith("application/scim+json")
    assert config["etag"] == {"supported": True}
    assert config["patch"] == {"supported": True}
    assert config["bulk"]["supported"] is False
    assert config["filter"] == {"supported": True, "maxResults": 1000}
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"


async def test_resource_types_and_schemas(scim: Scim) -> None:
    status, listing, _ = await scim.call("GET", "/ResourceTypes")
    types = {item["id"]: item for item in listing["Resources"]}
    assert set(types) == {"User", "Group"} and listing["totalResults"] == 2
    assert types["User"]["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    status, user_type, _ = await scim.call("GET", "/ResourceTypes/User")
    assert status == 200 and user_type["endpoint"] == "/Users"
    status, listing, _ = await scim.call("GET", "/Schemas")
    assert {item["id"] for item in listing["Resources"]} == {
        USER,
        ENTERPRISE,
        "urn:ietf:params:scim:schemas:core:2.0:Group",
    }
    status, schema, _ = await scim.call("GET", f"/Schemas/{USER}")
    emails = next(item for item in schema["attributes"] if item["name"] == "emails")
    assert emails["required"] is True
    status, _, _ = await scim.call("GET", "/Schemas/urn:nope")
    assert status == 404
    status, error, _ = await scim.call("GET", '/Schemas?filter=id eq "x"')
    assert status == 403 and error["status"] == "403"
