"""The example vendor's simulator: Bearer auth, page + per_page + total, `user` wrapper."""

from __future__ import annotations

import random
from typing import ClassVar

from aiohttp import web

from connectors.sim.base import SimConnection, SimPerson, VendorSimulator
from connectors.sim.listing import ListingStyle, PageTotalListing, Record


class ExampleSimulator(VendorSimulator):
    """Simulates the example vendor: `{"users": [...], "total": N}`, PATCH/PUT merge."""

    vendor = "example"
    credentials = "Authorization: Bearer TOKEN"
    listing: ClassVar[ListingStyle] = PageTotalListing()
    wrapper_key = "user"

    def authorized(self, request: web.Request) -> bool:
        """Accept `Authorization: Bearer TOKEN`."""
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    def connection(self) -> SimConnection:
        """Return the Bearer token."""
        return SimConnection(secrets={"token": self.token})

    def user_for(self, person: SimPerson) -> Record:
        """Return an active user for this person."""
        return {
            "id": f"u{person.index + 1:06d}",
            "email": person.email,
            "first_name": person.given_name,
            "last_name": person.family_name,
            "status": "active",
            "role": "member",
        }

    def seed_user(self, index: int, rng: random.Random) -> Record:
        """Return seeded user number `index`."""
        name = self.seed_name(index, rng)
        status = rng.choices(("active", "inactive", "invited"), weights=(90, 7, 3))[0]
        return {
            "id": f"u{index + 1:06d}",
            "email": name.email("example.com"),
            "first_name": name.given,
            "last_name": name.family,
            "status": status,
            "role": rng.choice(("member", "member", "member", "admin")),
            "created_at": f"2024-01-01T00:00:{index % 60:02d}Z",
        }

    def new_user(self, fields: Record) -> Record:
        """Return a created user: status defaults to active."""
        return {"id": self.allocate_id(), "status": "active", **fields}
