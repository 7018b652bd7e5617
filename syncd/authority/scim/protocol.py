"""The SCIM wire format: models, policy, discovery, errors and JSON responses."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    EnterpriseUser,
    Error,
    ETag,
    Filter,
    Group,
    Patch,
    ResourceType,
    SCIMException,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    User,
)

MEDIA_TYPE = "application/scim+json"
MAX_BODY = 1024 * 1024  # bytes: a group of thousands of members fits; more is a mistake
MAX_STRING = 2048  # characters in any one string value of a request
MAX_RESULTS = 1000  # resources in one list page
USER_MODEL = User[EnterpriseUser]
GROUP_MODEL = Group

# Lenient only where real IdPs depart from the RFC: Entra sends `remove` with a value to
# name the members to drop, and `replace` on a filter path that matches nothing yet.
POLICY = ScimPolicy(
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)

CONFIG = ServiceProviderConfig(
    patch=Patch(supported=True),
    bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
    filter=Filter(supported=True, max_results=MAX_RESULTS),
    change_password=ChangePassword(supported=False),
    sort=Sort(supported=False),
    etag=ETag(supported=True),
    authentication_schemes=[
        AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken,
            name="OAuth Bearer Token",
            description="A static bearer token from syncd's [scim] token setting",
            primary=True,
        )
    ],
)

PROVIDER = ScimProvider(
    models=[User, EnterpriseUser, Group],
    resource_types=[
        ResourceType.from_resource(USER_MODEL),
        ResourceType.from_resource(GROUP_MODEL),
    ],
    config=CONFIG,
    policy=POLICY,
)


def respond(
    payload: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A SCIM JSON response."""
    return web.Response(
        body=orjson.dumps(payload),
        status=status,
        content_type=MEDIA_TYPE,
        headers=headers,
    )


def error_response(error: Error) -> web.Response:
    """A SCIM Error body with its status."""
    status = error.status or 400
    return respond(error.model_dump(), status)


def scim_error(status: int, detail: str, scim_type: str | None = None) -> web.Response:
    """A SCIM Error response built from its parts."""
    return error_response(Error(status=status, scim_type=scim_type, detail=detail))


def validation_error(exc: ValidationError) -> web.Response:
    """The first problem pydantic found, as a SCIM Error (its status and scimType kept)."""
    return error_response(Error.from_validation_errors(exc)[0])


def exception_response(exc: SCIMException) -> web.Response:
    """A SCIM exception the models raised, as its Error body."""
    return error_response(exc.to_error())


def _bounded(value: Any, depth: int = 0) -> None:
    if depth > 16:
        raise _Invalid("the payload nests too deep")
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise _Invalid(f"a value is longer than {MAX_STRING} characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            _bounded(key, depth + 1)
            _bounded(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _bounded(item, depth + 1)


class _Invalid(Exception):
    """A request body syncd refuses before the models see it."""


class BadRequest(Exception):
    """A request answered with a SCIM Error, built where the problem was found."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.response = scim_error(status, detail, scim_type)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, bounded in size, string length and depth."""
    kind = request.content_type  # application/octet-stream when the header is missing
    if "Content-Type" in request.headers and not kind.endswith("json"):
        raise BadRequest(415, f"send {MEDIA_TYPE} or application/json, not {kind}")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise BadRequest(413, f"the body is larger than {MAX_BODY} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BadRequest(413, f"the body is larger than {MAX_BODY} bytes") from None
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest(400, "the body is not JSON", "invalidSyntax") from None
    if not isinstance(payload, dict):
        raise BadRequest(400, "the body must be a JSON object", "invalidSyntax")
    try:
        _bounded(payload)
    except _Invalid as exc:
        raise BadRequest(400, str(exc), "invalidValue") from None
    return payload
