"""Every vendor by name: its connector declaration and its simulator."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.appxite import AppXiteConnector
from connectors.base import Connector
from connectors.example import ExampleConnector
from connectors.influitive import InfluitiveConnector
from connectors.partnerize import PartnerizeConnector
from connectors.sim.appxite import AppXiteSimulator
from connectors.sim.base import VendorSimulator
from connectors.sim.example import ExampleSimulator
from connectors.sim.influitive import InfluitiveSimulator
from connectors.sim.partnerize import PartnerizeSimulator
from connectors.sim.thought_industries import ThoughtIndustriesSimulator
from connectors.sim.userflow import UserflowSimulator
from connectors.thought_industries import ThoughtIndustriesConnector
from connectors.userflow import UserflowConnector


@dataclass(frozen=True, slots=True)
class Vendor:
    """A vendor's connector class and simulator class."""

    name: str
    connector: type[Connector]
    simulator: type[VendorSimulator]


VENDORS: dict[str, Vendor] = {
    "appxite": Vendor("appxite", AppXiteConnector, AppXiteSimulator),
    "example": Vendor("example", ExampleConnector, ExampleSimulator),
    "influitive": Vendor("influitive", InfluitiveConnector, InfluitiveSimulator),
    "partnerize": Vendor("partnerize", PartnerizeConnector, PartnerizeSimulator),
    "thought_industries": Vendor(
        "thought_industries", ThoughtIndustriesConnector, ThoughtIndustriesSimulator
    ),
    "userflow": Vendor("userflow", UserflowConnector, UserflowSimulator),
}


def vendor(name: str) -> Vendor:
    """Return the vendor registered under name; KeyError names the known ones."""
    try:
        return VENDORS[name]
    except KeyError:
        known = ", ".join(sorted(VENDORS))
        raise KeyError(f"unknown vendor {name!r} (known: {known})") from None
