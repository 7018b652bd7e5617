"""Every vendor by name: its connector declaration and its simulator."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.core.base import Connector
from connectors.sim.base import VendorSimulator
from connectors.vendors.appxite.connector import AppXiteConnector
from connectors.vendors.appxite.simulator import AppXiteSimulator
from connectors.vendors.example.connector import ExampleConnector
from connectors.vendors.example.simulator import ExampleSimulator
from connectors.vendors.influitive.connector import InfluitiveConnector
from connectors.vendors.influitive.simulator import InfluitiveSimulator
from connectors.vendors.partnerize.connector import PartnerizeConnector
from connectors.vendors.partnerize.simulator import PartnerizeSimulator
from connectors.vendors.scim.connector import ScimConnector
from connectors.vendors.scim.simulator import ScimSimulator
from connectors.vendors.thought_industries.connector import ThoughtIndustriesConnector
from connectors.vendors.thought_industries.simulator import ThoughtIndustriesSimulator
from connectors.vendors.userflow.connector import UserflowConnector
from connectors.vendors.userflow.simulator import UserflowSimulator


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
    "scim": Vendor("scim", ScimConnector, ScimSimulator),
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
