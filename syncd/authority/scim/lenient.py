"""Where real identity providers depart from RFC 7643, the payload is mended before validation."""

from __future__ import annotations

from typing import Any

from syncd.authority.scim.mapping import ENTERPRISE

_MANAGER_PATHS = {"manager", f"{ENTERPRISE}:manager".lower()}


def _manager(value: Any) -> Any:
    """A manager as `{"value", "$ref"}`: IdPs send a bare id, a one-item list, or no $ref."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, str):
        value = {"value": value}
    if isinstance(value, dict) and value.get("value") and not value.get("$ref"):
        # RFC 7643 §4.3 makes $ref required; Okta and Entra send only the manager's id.
        value = {**value, "$ref": f"../Users/{value['value']}"}
    return value


def resource(payload: dict[str, Any]) -> dict[str, Any]:
    """A User body from POST or PUT with its manager mended."""
    extension = payload.get(ENTERPRISE)
    if isinstance(extension, dict) and "manager" in extension:
        payload = {**payload, ENTERPRISE: {**extension, "manager": _manager(extension["manager"])}}
    return payload


def _operation(operation: Any) -> Any:
    if not isinstance(operation, dict):
        return operation
    path = operation.get("path")
    value = operation.get("value")
    if isinstance(path, str) and path.lower() in _MANAGER_PATHS:
        return {**operation, "value": _manager(value)}
    if path is None and isinstance(value, dict):
        mended = {
            key: _manager(item) if key.lower() in _MANAGER_PATHS else item
            for key, item in resource(value).items()
        }
        return {**operation, "value": mended}
    return operation


def patch(payload: dict[str, Any]) -> dict[str, Any]:
    """A PatchOp body with any manager value mended."""
    operations = payload.get("Operations")
    if not isinstance(operations, list):
        return payload
    return {**payload, "Operations": [_operation(operation) for operation in operations]}
