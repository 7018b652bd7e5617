"""The account record contract the graph consumes, and link resolution for next pages."""

from __future__ import annotations

import dataclasses

import aiohttp
import pytest

from connectors import BearerAuth, RateBudget, VendorAccount, VendorHttp
from connectors.vendors.example.connector import ExampleConnector


def test_vendor_account_has_exactly_the_agreed_fields() -> None:
    assert [field.name for field in dataclasses.fields(VendorAccount)] == [
        "external_id", "email", "status", "attributes", "raw",
    ]  # fmt: skip
    account = VendorAccount("1", None, "active", {}, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        account.status = "inactive"  # type: ignore[misc]
    assert not hasattr(account, "__dict__")


def test_example_mapping_fills_canonical_attributes(connector: ExampleConnector) -> None:
    raw: dict[str, object] = {
        "id": "u9", "email": "a@b.example", "first_name": "Ada", "last_name": "L",
        "status": "inactive", "role": "admin",
    }  # fmt: skip
    attributes: dict[str, object] = {
        "email": "a@b.example", "given_name": "Ada", "family_name": "L",
        "display_name": "Ada L", "role": "admin", "active": False,
    }  # fmt: skip
    account = connector.to_account(raw)
    assert account == VendorAccount("u9", "a@b.example", "inactive", attributes, raw)
    assert connector.to_vendor({"given_name": "B", "active": True}) == {
        "first_name": "B",
        "status": "active",
    }


def http_at(session: aiohttp.ClientSession, base_url: str) -> VendorHttp:
    """The shared HTTP layer for a vendor at `base_url`."""
    return VendorHttp(
        vendor="v",
        connector="v1",
        session=session,
        base_url=base_url,
        auth=BearerAuth("resolve-test-token"),
        budget=RateBudget(1),
    )


async def test_next_page_links_resolve_under_the_base_path(
    session: aiohttp.ClientSession,
) -> None:
    http = http_at(session, "https://api.vendor.example/incoming/v2/")
    assert http.resolve_link("/incoming/v2/users?limit=10&starting_after=x") == (
        "/users",
        {"limit": "10", "starting_after": "x"},
    )
    assert http.resolve_link("https://api.vendor.example/incoming/v2/users?limit=5") == (
        "/users",
        {"limit": "5"},
    )
    assert http.resolve_link("/users?limit=5") == ("/users", {"limit": "5"})
    with pytest.raises(ValueError, match="another origin"):
        http.resolve_link("https://evil.example/incoming/v2/users")
    with pytest.raises(ValueError, match="absolute URL"):
        http_at(session, "/relative")
