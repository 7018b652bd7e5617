"""Every vendor by name: its connector declaration and its simulator."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.base import Connector
from connectors.example import ExampleConnector
from connectors.partnerize import PartnerizeConnector
from connectors.sim.base import VendorSimulator
from connectors.sim.example import ExampleSimulator
from connectors.sim.partnerize import PartnerizeSimulator
from connectors.sim.userflow import UserflowSimulator
from connectors.userflow import UserflowConnector


@dataclass(frozen=True, slots=True)
class Vendor:
    """A vendor's connector class and simulator class."""

    name: str
    connector: type[Connector]
    simulator: type[VendorSimulator]


VENDORS: dict[str, Vendor] = {
    "example": Vendor("example", ExampleConnector, ExampleSimulator),
    "partnerize": Vendor("partnerize", PartnerizeConnector, PartnerizeSimulator),
    "userflow": Vendor("userflow", UserflowConnector, UserflowSimulator),
}


def vendor(name: str) -> Vendor:
    """Return the vendor registered under name; KeyError names the known ones."""
    try:
        return VENDORS[name]
    except KeyError:
        known = ", ".join(sorted(VENDORS))
        raise KeyError(f"unknown vendor {name!r} (known: {known})") from None
