"""SCIM operations on the graph: a write stores the resource and its people in one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from scim2_models import Context, ListResponse, PatchOp, ResponseParameters, SearchRequest
from sqlalchemy.ext.asyncio import AsyncConnection

from graph import scim
from graph.db import Database
from graph.scim import StoredResource
from syncd.authority.scim import lenient
from syncd.authority.scim.filters import where_clause
from syncd.authority.scim.kinds import Kind
from syncd.authority.scim.mapping import SOURCE, person_record
from syncd.authority.scim.protocol import MAX_RESULTS, POLICY, BadRequest, read_json, respond
from syncd.authority.sink import PeopleSink

PREFIX = "/scim/v2"


def etag(version: int) -> str:
    """The weak entity tag of a resource version."""
    return f'W/"{version}"'


async def _locked(conn: AsyncConnection, kind: Kind, request: web.Request) -> StoredResource:
    """The resource the request names, locked for the write, if If-Match allows (else 412)."""
    resource_id = request.match_info["id"]
    stored = await scim.get_resource(conn, kind.name, resource_id, for_update=True)
    if stored is None:
        raise BadRequest(404, f"{kind.name} {resource_id} not found")
    wanted = request.headers.get("If-Match")
    if wanted is None:
        return stored
    tags = {tag.strip() for tag in wanted.split(",")}
    current = etag(stored.version)
    if "*" not in tags and current not in tags and current.removeprefix("W/") not in tags:
        raise BadRequest(412, f"the resource is at version {current}", "preconditionFailed")
    return stored


def _location(kind: Kind, stored: StoredResource, request: web.Request) -> str:
    return f"{request.url.origin()}{PREFIX}/{kind.endpoint}/{stored.id}"


def _integer(query: Mapping[str, Any], name: str, default: int) -> int:
    value = query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(400, f"{name} must be an integer", "invalidValue") from None


def _selected(
    kinds: Sequence[Kind], text: str | None
) -> list[tuple[Kind, sa.ColumnElement[bool] | None]]:
    """Each kind with its SQL condition; a kind the filter cannot apply to is left out."""
    if not text:
        return [(kind, None) for kind in kinds]
    selected: list[tuple[Kind, sa.ColumnElement[bool] | None]] = []
    refusal = None
    for kind in kinds:
        try:
            selected.append((kind, where_clause(kind.name, text)))
        except BadRequest as exc:
            refusal = exc
    if not selected and refusal is not None:
        raise refusal
    return selected


class ScimService:
    """The Users and Groups endpoints over the graph and a people sink."""

    def __init__(self, db: Database, sink: PeopleSink, actor: str) -> None:
        self.db = db
        self.sink = sink
        self.actor = actor

    # -- rendering ------------------------------------------------------------------

    def render(
        self,
        kind: Kind,
        stored: StoredResource,
        request: web.Request,
        params: ResponseParameters[Any] | None = None,
    ) -> dict[str, Any]:
        """The resource as the client sees it: meta filled in, attributes selected."""
        data = dict(stored.resource)
        data["meta"] = {
            "resourceType": kind.name,
            "created": stored.created_at.isoformat(),
            "lastModified": stored.updated_at.isoformat(),
            "version": etag(stored.version),
            "location": _location(kind, stored, request),
        }
        model = kind.model.model_validate(data)
        dumped: dict[str, Any] = model.model_dump(
            scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=params
        )
        return dumped

    def _one(
        self, kind: Kind, stored: StoredResource, request: web.Request, status: int = 200
    ) -> web.Response:
        body = self.render(kind, stored, request, self._parameters(kind, request.query))
        headers = {"ETag": etag(stored.version)}
        if status == 201:
            headers["Location"] = _location(kind, stored, request)
        return respond(body, status, headers)

    @staticmethod
    def _parameters(kind: Kind, query: Mapping[str, Any]) -> ResponseParameters[Any] | None:
        raw = {key: query[key] for key in ("attributes", "excludedAttributes") if query.get(key)}
        if not raw:
            return None
        parameters: ResponseParameters[Any] = ResponseParameters[kind.model].model_validate(  # type: ignore[name-defined]
            raw
        )
        return parameters

    # -- reads ----------------------------------------------------------------------

    async def get(self, kind: Kind, request: web.Request) -> web.Response:
        """GET one resource by id."""
        async with self.db.read() as conn:
            stored = await scim.get_resource(conn, kind.name, request.match_info["id"])
        if stored is None:
            raise BadRequest(404, f"{kind.name} {request.match_info['id']} not found")
        return self._one(kind, stored, request)

    async def query(self, kind: Kind, request: web.Request) -> web.Response:
        """GET the resources a filter selects, one page of them."""
        return await self._search([kind], request, request.query)

    async def search(self, kinds: Sequence[Kind], request: web.Request) -> web.Response:
        """POST .search: the query in a SearchRequest body (RFC 7644 §3.4.3)."""
        payload = await read_json(request)
        SearchRequest.model_validate(payload, scim_ctx=Context.SEARCH_REQUEST)
        query = {
            key: ",".join(value) if isinstance(value, list) else value
            for key, value in payload.items()
            if value is not None
        }
        return await self._search(kinds, request, query)

    async def _search(
        self, kinds: Sequence[Kind], request: web.Request, query: Mapping[str, Any]
    ) -> web.Response:
        """One page across the kinds, in order: an attribute a kind lacks matches none of it."""
        start = max(_integer(query, "startIndex", 1), 1)
        count = min(max(_integer(query, "count", MAX_RESULTS), 0), MAX_RESULTS)
        selected = _selected(kinds, query.get("filter"))
        offset, total = start - 1, 0
        resources: list[dict[str, Any]] = []
        async with self.db.read() as conn:
            for kind, where in selected:
                found, page = await scim.list_resources(
                    conn, kind.name, where, offset, count - len(resources)
                )
                offset = max(offset - found, 0)
                total += found
                params = self._parameters(kind, query)
                resources += [self.render(kind, stored, request, params) for stored in page]
        return respond(
            {
                "schemas": [ListResponse.__schema__],
                "totalResults": total,
                "startIndex": start,
                "itemsPerPage": len(resources),
                "Resources": resources,
            }
        )

    # -- writes ---------------------------------------------------------------------

    async def create(self, kind: Kind, request: web.Request) -> web.Response:
        """POST a new resource."""
        payload = lenient.resource(await read_json(request))
        model = kind.model.model_validate(
            payload, scim_ctx=Context.RESOURCE_CREATION_REQUEST, scim_policy=POLICY
        )
        async with self.db.write() as conn:
            model.id = await kind.new_id(conn, _resource(model))
            resource = _resource(model)
            await kind.check(conn, resource)
            stored = await kind.save(conn, resource, 1, None)
            await self._apply(conn, kind.affected(None, resource))
        self.sink.committed()
        return self._one(kind, stored, request, 201)

    async def replace(self, kind: Kind, request: web.Request) -> web.Response:
        """PUT a whole resource in place of the stored one."""
        payload = lenient.resource(await read_json(request))
        model = kind.model.model_validate(
            payload, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST, scim_policy=POLICY
        )
        return await self._change(kind, request, lambda original: _replaced(model, original))

    async def patch(self, kind: Kind, request: web.Request) -> web.Response:
        """PATCH a resource with add, replace and remove operations."""
        payload = lenient.patch(await read_json(request))
        operations = PatchOp[kind.model].model_validate(  # type: ignore[name-defined]
            payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=POLICY
        )

        def patched(original: Any) -> Any | None:
            return original if operations.patch(original, POLICY) else None

        return await self._change(kind, request, patched)

    async def _change(self, kind: Kind, request: web.Request, change: Any) -> web.Response:
        async with self.db.write() as conn:
            stored = await _locked(conn, kind, request)
            original = kind.model.model_validate({**stored.resource, "id": stored.id})
            changed = change(original)
            if changed is not None:
                changed.id = stored.id
                resource = _resource(changed)
                if resource != stored.resource:
                    await kind.check(conn, resource)
                    before = stored.resource
                    stored = await kind.save(conn, resource, stored.version + 1, stored.created_at)
                    await self._apply(conn, kind.affected(before, resource))
        self.sink.committed()
        return self._one(kind, stored, request)

    async def delete(self, kind: Kind, request: web.Request) -> web.Response:
        """DELETE a resource: a user's person is deprovisioned, a group's members leave it."""
        resource_id = request.match_info["id"]
        async with self.db.write() as conn:
            stored = await _locked(conn, kind, request)
            affected = kind.affected(stored.resource, None)
            await scim.delete_resource(conn, kind.name, resource_id)
            gone = {resource_id: stored.resource} if kind.name == "User" else {}
            await self._apply(conn, affected - gone.keys(), gone)
        self.sink.committed()
        return web.Response(status=204)

    async def _apply(
        self,
        conn: AsyncConnection,
        user_ids: set[str],
        deleted: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Hand the affected users to the sink as people; a rejected one undoes the write."""
        users = await scim.users_of(conn, user_ids)
        groups = await scim.group_names(conn, user_ids)
        records = [person_record(user.resource, groups[user.id]) for user in users]
        records += [
            person_record(resource, (), deleted=True) for resource in (deleted or {}).values()
        ]
        if not records:
            return
        stats = await self.sink.apply_people(conn, records, SOURCE, self.actor)
        if stats.rejected_records:
            reason = stats.rejected_records[0][1]
            raise BadRequest(409, f"the graph refused the person: {reason}", "uniqueness")
        await scim.link_people(conn, user_ids)


def _resource(model: Any) -> dict[str, Any]:
    """What is stored of a validated resource: everything but meta and write-only secrets."""
    if hasattr(model, "password"):
        model.password = None
    resource: dict[str, Any] = model.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    resource.pop("meta", None)
    return resource


def _replaced(model: Any, original: Any) -> Any:
    """The PUT body with read-only and immutable values kept from the original."""
    model.replace(original)
    return model
