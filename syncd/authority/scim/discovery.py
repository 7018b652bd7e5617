"""The discovery endpoints: ServiceProviderConfig, ResourceTypes and Schemas (RFC 7644 §4)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from scim2_models import Context, ListResponse

from syncd.authority.scim.protocol import PROVIDER, USER_MODEL, BadRequest, respond


def _listing(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [ListResponse.__schema__],
        "totalResults": len(items),
        "startIndex": 1,
        "itemsPerPage": len(items),
        "Resources": items,
    }


def _require_emails(schema: dict[str, Any]) -> None:
    """Say in the User schema what syncd needs: an email to make a person of (RFC 7643 §7)."""
    for attribute in schema["attributes"]:
        if attribute["name"] == "emails":
            attribute["required"] = True
            for sub in attribute.get("subAttributes") or ():
                sub["required"] = sub["required"] or sub["name"] == "value"


def _documents(prefix: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Each discovery collection's documents by id, with their meta.location."""
    config = PROVIDER.config
    assert config is not None
    collections: dict[str, dict[str, dict[str, Any]]] = {"ResourceTypes": {}, "Schemas": {}}
    for resource_type in PROVIDER.resource_types:
        body = resource_type.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        body["meta"] = {
            "resourceType": "ResourceType",
            "location": f"{prefix}/ResourceTypes/{resource_type.id}",
        }
        collections["ResourceTypes"][str(resource_type.id)] = body
    for schema in PROVIDER.schemas:
        body = schema.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        if schema.id == USER_MODEL.__schema__:
            _require_emails(body)
        body["meta"] = {"resourceType": "Schema", "location": f"{prefix}/Schemas/{schema.id}"}
        collections["Schemas"][str(schema.id)] = body
    config_body = config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    config_body["meta"] = {
        "resourceType": "ServiceProviderConfig",
        "location": f"{prefix}/ServiceProviderConfig",
    }
    collections["ServiceProviderConfig"] = {"": config_body}
    return collections


def discovery_routes(prefix: str) -> list[web.RouteDef]:
    """Routes answering the three discovery endpoints from the provider's description."""
    documents = _documents(prefix)

    async def config(_request: web.Request) -> web.Response:
        return respond(documents["ServiceProviderConfig"][""])

    def collection(name: str) -> list[web.RouteDef]:
        async def listing(request: web.Request) -> web.Response:
            if request.query.get("filter"):
                raise BadRequest(403, f"{name} cannot be filtered (RFC 7644 §4)")
            return respond(_listing(list(documents[name].values())))

        async def one(request: web.Request) -> web.Response:
            found = documents[name].get(request.match_info["id"])
            if found is None:
                raise BadRequest(404, f"no {name} entry {request.match_info['id']}")
            return respond(found)

        return [
            web.get(f"{prefix}/{name}", listing, allow_head=False),
            web.get(f"{prefix}/{name}/{{id}}", one, allow_head=False),
        ]

    return [
        web.get(f"{prefix}/ServiceProviderConfig", config, allow_head=False),
        *collection("ResourceTypes"),
        *collection("Schemas"),
    ]
