"""The generic SCIM 2.0 vendor: connector and simulator."""
