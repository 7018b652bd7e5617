"""Vendor simulators: aiohttp apps that behave like each vendor, for tests and benchmarks."""

from connectors.sim.base import CONTROL_PREFIX, VendorSimulator, json_response
from connectors.sim.errors import VendorError
from connectors.sim.listing import (
    CursorListing,
    ListingStyle,
    ListingView,
    PageCountListing,
    PageNumberListing,
    PageTotalListing,
)
from connectors.sim.schema import Field, Schema
from connectors.sim.serve import run_forever, serve
from connectors.sim.settings import Faults, SimSettings

__all__ = [
    "CONTROL_PREFIX",
    "CursorListing",
    "Faults",
    "Field",
    "ListingStyle",
    "ListingView",
    "PageCountListing",
    "PageNumberListing",
    "PageTotalListing",
    "Schema",
    "SimSettings",
    "VendorError",
    "VendorSimulator",
    "json_response",
    "run_forever",
    "serve",
]
