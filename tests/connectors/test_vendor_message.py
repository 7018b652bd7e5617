"""The vendor's reason for an error status: read from the body, short, redacted."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from connectors import register_secret
from connectors.core.errors import AccountExistsError
from connectors.core.redaction import REDACTED
from connectors.core.vendor_message import MAX_BODY_BYTES, MAX_MESSAGE_CHARS, vendor_message
from connectors.vendors.example.connector import ExampleConnector


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"error": "email is taken"}, "email is taken"),  # the example vendor, Userflow-like
        ({"error": {"message": "bad role", "type": "422"}}, "bad role"),  # Partnerize
        ({"errors": [{"message": "a", "code": "x"}, {"message": "b"}]}, "a; b"),  # TI
        ({"errors": ["email has already been taken"]}, "email has already been taken"),
        ({"statusCode": 400, "message": "unknown RoleId"}, "unknown RoleId"),  # AppXite
        ({"schemas": ["urn:x"], "status": "409", "detail": "uniqueness"}, "uniqueness"),  # SCIM
        ({"status": 400}, None),  # nothing a person could read
    ],
)
def test_the_reason_is_found_in_each_vendor_shape(body: object, reason: str | None) -> None:
    assert vendor_message(orjson.dumps(body)) == reason


def test_a_body_that_is_not_json_is_its_text_on_one_line() -> None:
    assert vendor_message(b"<h1>Bad\n  Request</h1>") == "<h1>Bad Request</h1>"
    assert vendor_message(b"   ") is None
    assert vendor_message(b"\xff\xfe oops") == "\ufffd\ufffd oops"


def test_the_reason_is_bounded_however_long_the_body() -> None:
    long = vendor_message(orjson.dumps({"message": "x" * 10_000}))
    assert long is not None and len(long) == MAX_MESSAGE_CHARS and long.endswith("…")
    huge = vendor_message(b"y" * (MAX_BODY_BYTES * 10))
    assert huge is not None and len(huge) == MAX_MESSAGE_CHARS


def test_a_secret_the_vendor_echoes_is_redacted() -> None:
    register_secret("echoed-Secret-0042")
    reason = vendor_message(orjson.dumps({"message": "token echoed-Secret-0042 is expired"}))
    assert reason == f"token {REDACTED} is expired"


async def test_a_refused_write_carries_the_vendor_reason(
    session: aiohttp.ClientSession, connector: ExampleConnector
) -> None:
    await connector.create_account({"email": "new@example.com", "given_name": "New"})
    with pytest.raises(AccountExistsError) as caught:
        await connector.create_account({"email": "NEW@example.com"})
    assert (caught.value.status, caught.value.reason) == (409, "email already exists")
    assert str(caught.value) == "example: POST /users -> HTTP 409: email already exists"
