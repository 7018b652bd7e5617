"""Tests of the connector foundation: HTTP layer, budget, paginators, simulators."""
