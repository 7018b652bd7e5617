"""Vendor connectors, the shared HTTP layer, paginators and vendor simulators."""
