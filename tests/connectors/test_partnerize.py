"""Partnerize quirks against its simulator (generic behaviour is the contract suite's)."""

from __future__ import annotations

from base64 import b64encode
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp
import pytest
import structlog
from aiohttp import web

from connectors import (
    AuthenticationError,
    ConnectorConfigError,
    RetryPolicy,
    UnsupportedOperation,
    VendorHTTPError,
)
from connectors.sim.listing import ListingStyle, ListingView
from connectors.vendors.partnerize.connector import PartnerizeConnector, count_problem
from connectors.vendors.partnerize.simulator import PartnerizeListing, PartnerizeSimulator
from tests.connectors.conftest import (
    LogLines,
    build_connector,
    configure,
    incomplete_listing,
    list_served,
    sim_get,
    throttled_replies,
)

APP_KEY = "appKey-Partnerize-9f3a"
USER_KEY = "userKey-Partnerize-77c1"


def basic(user: str, password: str) -> dict[str, str]:
    """Return an HTTP Basic Authorization header."""
    return {"Authorization": "Basic " + b64encode(f"{user}:{password}".encode()).decode()}


BASIC = basic(APP_KEY, USER_KEY)
PATIENT = RetryPolicy(attempts=8, base_delay=0.005, max_delay=0.02)


@pytest.fixture
def simulator() -> PartnerizeSimulator:
    """A Partnerize simulator with 1,000 seeded users."""
    return PartnerizeSimulator(users=1000, seed=11, token=f"{APP_KEY}:{USER_KEY}")


def connect(
    session: aiohttp.ClientSession,
    url: str,
    *,
    keys: tuple[str, str] = (APP_KEY, USER_KEY),
    **settings: Any,
) -> PartnerizeConnector:
    """Build a Partnerize connector against the simulator."""
    secrets = {"application_key": keys[0], "user_api_key": keys[1]}
    return build_connector(PartnerizeConnector, session, url, secrets, **settings)


async def stored(session: aiohttp.ClientSession, url: str) -> dict[str, dict[str, Any]]:
    """Every user the simulator holds, by id."""
    return {user["user_id"]: user for user in (await sim_get(session, url, "users"))["users"]}


async def answer(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    """Send one raw request; return status, JSON body and headers."""
    kwargs.setdefault("headers", BASIC)
    async with session.request(method, url, **kwargs) as response:
        return response.status, await response.json(), response.headers


# -- listing ---------------------------------------------------------------------------------


async def test_full_listing_of_10000_users_equals_the_vendor(
    session: aiohttp.ClientSession,
) -> None:
    simulator = PartnerizeSimulator(users=10_000, seed=3, token=f"{APP_KEY}:{USER_KEY}")
    accounts, held, stats = await list_served(session, simulator, connect)
    assert [account.raw for account in accounts] == held
    assert len({account.external_id for account in accounts}) == 10_000
    assert accounts[0].external_id == "1l1000001"  # alphanumeric ids, never numbers
    assert stats["requests"] - stats["throttled"] == 101  # 100 full, 1 empty
    assert stats["query_keys"] == ["limit", "offset"]
    assert stats["secret_in_url"] == 0
    inactive = next(account for account in accounts if account.status == "inactive")
    assert inactive.attributes["active"] is False


async def test_a_listing_page_is_the_vendors_standard_pagination(
    session: aiohttp.ClientSession, url: str
) -> None:
    status, body, _ = await answer(session, "GET", f"{url}/user?limit=100&offset=900")
    assert status == 200
    assert body["count"] == 1000 and body["offset"] == 900 and body["limit"] == 100
    assert set(body["users"][0]) == {"user"}  # each item wrapped, as every v1 collection
    pagination = body["hypermedia"]["pagination"]
    assert pagination["next_page"] is None and pagination["total_page_count"] == 10
    assert pagination["previous_page"] == "/user?limit=100&offset=800"


@dataclass(frozen=True, kw_only=True)
class ReferenceListing(ListingStyle):
    """The reference's reading: bare items and `count` the length of the page."""

    def respond(self, request: web.Request, view: ListingView) -> object:
        """Return the page with its own length as `count`."""
        body = PartnerizeListing().respond(request, view)
        assert isinstance(body, dict)
        users = [item["user"] for item in body["users"]]
        return {"users": users, "count": len(users)}


class ReferenceShapedSimulator(PartnerizeSimulator):
    """A Partnerize simulator answering listings in the reference's shape."""

    listing: ClassVar[ListingStyle] = ReferenceListing()


async def test_count_as_the_page_length_and_bare_items_are_accepted(
    session: aiohttp.ClientSession,
) -> None:
    simulator = ReferenceShapedSimulator(users=250, seed=5, token=f"{APP_KEY}:{USER_KEY}")
    accounts, held, _ = await list_served(session, simulator, connect)
    assert [account.raw for account in accounts] == held and len(held) == 250


@pytest.mark.parametrize(
    ("seen", "problem"),
    [
        ([(250, 100), (250, 100), (250, 50)], None),  # the total, as the vendor documents
        ([(100, 100), (100, 100), (50, 50)], None),  # the page's length, as the reference
        ([(1000, 100), (1000, 30)], "130 records listed, the vendor reports 1000: cut short"),
        ([(250, 100), (249, 100), (249, 49)], "the 'count' changed during the listing"),
        ([(None, 100), (None, 5)], "response has no valid 'count'"),
        ([("250", 100), ("250", 5)], "response has no valid 'count'"),
    ],
)
def test_count_must_fit_the_total_or_the_page_lengths(
    seen: list[tuple[object, int]], problem: str | None
) -> None:
    assert count_problem(seen, "count") == problem


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        ({"truncate_after": 0}, "0 records listed, the vendor reports 1000: cut short"),
        ({"truncate_after": 130}, "130 records listed, the vendor reports 1000: cut short"),
        ({"truncate_after": 200}, "200 records listed, the vendor reports 1000: cut short"),
        ({"repeat_page": 1}, "page 3 repeats an earlier page"),
    ],
)
async def test_a_listing_cut_short_is_incomplete(
    session: aiohttp.ClientSession, url: str, faults: dict[str, object], reason: str
) -> None:
    await configure(session, url, faults=faults)
    incomplete, seen = await incomplete_listing(connect(session, url))
    assert incomplete.reason == reason
    assert incomplete.records == len(seen)


async def test_verify_total_off_ends_at_the_short_page(
    session: aiohttp.ClientSession, url: str
) -> None:
    await configure(session, url, faults={"truncate_after": 130})
    listed = [a async for a in connect(session, url, verify_total=False).list_accounts()]
    assert len(listed) == 130


# -- strictness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=101", "limit must be between 1 and 100"),
        ("limit=0", "limit must be between 1 and 100"),
        ("offset=-1", "offset must be between 0 and 1000000000"),
        ("limit=ten", "limit must be an integer"),
        ("page=1&count=100", "unknown parameter(s): count, page"),
    ],
)
async def test_listing_refuses_bad_paging_with_a_v1_error(
    session: aiohttp.ClientSession, url: str, query: str, message: str
) -> None:
    status, body, _ = await answer(session, "GET", f"{url}/user?{query}")
    assert (status, body) == (400, {"error": {"message": message, "type": "400"}})


@pytest.mark.parametrize(
    "credentials",
    [
        {"headers": {"X-Application-Key": APP_KEY, "X-User-Api-Key": USER_KEY}},
        {"params": {"application_key": APP_KEY, "user_api_key": USER_KEY}},
        {"headers": basic(USER_KEY, APP_KEY)},  # the pair the wrong way round
        {"headers": {"Authorization": f"Bearer {USER_KEY}"}},
    ],
)
async def test_only_http_basic_is_accepted(
    session: aiohttp.ClientSession, url: str, credentials: dict[str, Any]
) -> None:
    async with session.get(f"{url}/user", **credentials) as response:
        assert response.status == 401
        assert await response.json() == {"error": {"message": "unauthorized", "type": "401"}}


async def test_a_429_has_the_v1_body_and_no_retry_after(
    session: aiohttp.ClientSession, url: str
) -> None:
    last = (await throttled_replies(session, url, "/user/self", BASIC))[-1]
    assert last.status == 429 and "Retry-After" not in last.headers
    assert last.body == {"error": {"message": "rate limited", "type": "429"}}


VALID = {
    "firstname": "Ada",
    "lastname": "Osei",
    "email": "ada@p.example",
    "password": "S3cure!pw-99",
}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({**VALID, "nickname": "Ace"}, 400, "unknown field 'nickname'"),
        ({**VALID, "firstname": 5}, 400, "'firstname' must be a string"),
        ({**VALID, "status": "suspended"}, 400, "'status' must be one of active, inactive"),
        ({**VALID, "user_id": "1l9"}, 400, "'user_id' is read-only"),
        (
            {k: v for k, v in VALID.items() if k != "lastname"},
            400,
            "missing required field(s): lastname",
        ),
        (
            {k: v for k, v in VALID.items() if k != "password"},
            400,
            "missing required field(s): password",
        ),
        ({**VALID, "password": "short"}, 400, "password does not meet the policy"),
        ({**VALID, "email": "not-an-email"}, 400, "email is not valid"),
        ([VALID], 400, "expected a JSON object"),
        ({"user": VALID}, 400, "unknown field 'user'"),  # writes are bare, not wrapped
    ],
)
async def test_create_refuses_what_the_vendor_refuses(
    session: aiohttp.ClientSession, url: str, body: object, status: int, message: str
) -> None:
    got, answered, _ = await answer(session, "POST", f"{url}/user", json=body)
    assert (got, answered) == (status, {"error": {"message": message, "type": str(status)}})


async def test_writes_refuse_a_taken_email_and_a_non_json_body(
    session: aiohttp.ClientSession, url: str, simulator: PartnerizeSimulator
) -> None:
    taken = str(simulator.users["1l1000002"]["email"]).upper()
    status, body, _ = await answer(session, "POST", f"{url}/user", json={**VALID, "email": taken})
    assert (status, body["error"]["type"]) == (409, "409")
    status, body, _ = await answer(
        session, "PUT", f"{url}/user/1l1000001", json={"firstname": "A", "email": taken}
    )
    assert (status, body["error"]["message"]) == (409, "email already exists")
    status, body, _ = await answer(session, "POST", f"{url}/user", data="firstname=Ada")
    assert status == 415 and body["error"]["type"] == "415"
    status, body, _ = await answer(session, "PUT", f"{url}/user/1l1000001", json={"x": 1})
    assert (status, body["error"]["message"]) == (400, "unknown field 'x'")


async def test_put_without_a_merge_resets_omitted_fields(
    session: aiohttp.ClientSession, url: str
) -> None:
    before = (await stored(session, url))["1l1000001"]
    status, _, _ = await answer(session, "PUT", f"{url}/user/1l1000001", json={"firstname": "Solo"})
    after = (await stored(session, url))["1l1000001"]
    assert status == 200 and after["firstname"] == "Solo"
    assert "phone" in before and "phone" not in after
    assert "email" not in after


# -- the connector's writes ------------------------------------------------------------------


async def test_create_update_deactivate_round_trip(
    session: aiohttp.ClientSession, url: str, simulator: PartnerizeSimulator, logs: LogLines
) -> None:
    connector = connect(session, url)
    created = await connector.create_account(
        {"email": "new.partner@partners.example", "display_name": "Nia Mensah", "role": "admin"}
    )
    assert created.external_id.startswith("1l")
    assert created.attributes["given_name"] == "Nia"
    assert created.attributes["family_name"] == "Mensah"
    assert created.status == "active"
    # The create answer carries the new user's own API key: never kept, always redacted.
    assert "password" not in created.raw and "user_api_key" not in created.raw
    password = simulator.passwords[created.external_id]
    assert len(password) >= 20

    # Vendor-only fields set by someone else must survive our writes.
    simulator.users[created.external_id]["phone"] = "+44 1632 960000"
    simulator.users[created.external_id]["country"] = "GB"
    before = (await stored(session, url))[created.external_id]

    updated = await connector.update_account(created.external_id, {"timezone": "Europe/Paris"})
    assert updated.attributes["timezone"] == "Europe/Paris"
    after = (await stored(session, url))[created.external_id]
    untouched = {key for key in before if key not in ("timezone", "updated_at")}
    assert {key: after[key] for key in untouched} == {key: before[key] for key in untouched}
    assert simulator.passwords[created.external_id] == password

    await connector.deactivate_account(created.external_id)
    final = (await stored(session, url))[created.external_id]
    assert final["status"] == "inactive"
    assert {key: final[key] for key in untouched - {"status"}} == {
        key: after[key] for key in untouched - {"status"}
    }
    stats = await sim_get(session, url, "stats")
    assert [route["status"] for route in stats["by_route"]] == [200, 200, 200]  # GET, POST, PUT


async def test_a_new_users_api_key_is_dropped_and_redacted(
    session: aiohttp.ClientSession, url: str, simulator: PartnerizeSimulator, logs: LogLines
) -> None:
    created = await connect(session, url).create_account(
        {"email": "key@partners.example", "given_name": "Kay", "family_name": "Ng"}
    )
    issued = simulator.api_keys[created.external_id]
    assert issued not in repr(created.raw)
    structlog.get_logger("test").error("leak", detail=f"key={issued}")
    assert issued not in logs.text and "key=***" in logs.text


async def test_create_needs_names_and_email(session: aiohttp.ClientSession, url: str) -> None:
    with pytest.raises(Exception, match="needs firstname, lastname"):
        await connect(session, url).create_account({"email": "x@partners.example"})


async def test_generated_password_never_reaches_logs_or_errors(
    session: aiohttp.ClientSession, url: str, simulator: PartnerizeSimulator, logs: LogLines
) -> None:
    await configure(session, url, faults={"server_error_share": 1.0, "limit": 2})
    connector = connect(session, url, retry=PATIENT)
    created = await connector.create_account(
        {"email": "pw@partners.example", "given_name": "Pat", "family_name": "Word"}
    )
    password = simulator.passwords[created.external_id]
    assert len(logs.named("http.retry")) == 2  # the create was retried and logged
    with pytest.raises(VendorHTTPError) as caught:
        await connector.create_account(
            {"email": "PW@partners.example", "given_name": "Pat", "family_name": "Again"}
        )
    assert caught.value.status == 409
    second = [p for uid, p in simulator.passwords.items() if uid != created.external_id]
    assert second == []  # the rejected create left nothing behind
    structlog.get_logger("test").error("leak", detail=f"pw={password}", exc_info=caught.value)
    assert password not in logs.text
    assert "pw=***" in logs.text
    assert password not in str(caught.value) and password not in repr(created)


async def test_get_find_and_delete(
    session: aiohttp.ClientSession, url: str, simulator: PartnerizeSimulator
) -> None:
    connector = connect(session, url)
    assert await connector.get_account("1l9999999") is None
    one = await connector.get_account("1l1000007")
    assert one is not None and one.raw == simulator.users["1l1000007"]
    email = str(simulator.users["1l1000200"]["email"]).upper()
    found = await connector.find_by_email(email)
    assert found is not None and found.external_id == "1l1000200"
    assert await connector.find_by_email("nobody@partners.example") is None

    with pytest.raises(UnsupportedOperation, match="allow_delete"):
        await connector.delete_account("1l1000007")
    assert "1l1000007" in simulator.users
    await connect(session, url, allow_delete=True).delete_account("1l1000007")
    assert "1l1000007" not in simulator.users
    assert await connector.get_account("1l1000007") is None


def test_the_email_address_field_is_read_as_the_email() -> None:
    connector = PartnerizeConnector(
        name="p",
        session=None,
        secrets={"application_key": "a", "user_api_key": "b"},  # type: ignore[arg-type]
    )
    account = connector.to_account({"user_id": "1l5", "email_address": "ea@partners.example"})
    assert account.email == "ea@partners.example"


async def test_check_credentials_and_the_auth_setting(
    session: aiohttp.ClientSession, url: str
) -> None:
    me = await connect(session, url).check_credentials()
    assert me.attributes["role"] == "admin"
    for keys in ((APP_KEY, "userKey-wrong-000"), ("appKey-wrong-000", USER_KEY)):
        with pytest.raises(AuthenticationError, match="GET /user/self -> HTTP 401"):
            await connect(session, url, keys=keys).check_credentials()
    with pytest.raises(ConnectorConfigError, match="auth_style must be basic, not 'headers'"):
        PartnerizeConnector(
            name="p",
            session=session,
            secrets={"application_key": APP_KEY, "user_api_key": USER_KEY},
            auth_style="headers",  # type: ignore[arg-type]
        )
    stats = await sim_get(session, url, "stats")
    assert stats["secret_in_url"] == 0 and stats["query_keys"] == []
