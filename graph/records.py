"""What the graph takes in: vendor account records and authority person records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

LIFECYCLES = ("active", "suspended", "deprovisioned")


class AccountRecord(Protocol):
    """One vendor account as a connector lists it (connectors.core.records.VendorAccount fits)."""

    @property
    def external_id(self) -> str: ...
    @property
    def email(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, object]: ...
    @property
    def raw(self) -> Mapping[str, object]: ...


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """One person as an authority (an HR feed) describes them."""

    email: str
    authority_id: str | None = None
    aliases: Sequence[str] = ()
    given_name: str | None = None
    family_name: str | None = None
    display_name: str | None = None
    lifecycle: str = "active"
    attributes: Mapping[str, object] = field(default_factory=dict)
