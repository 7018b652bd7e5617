"""The appxite vendor: connector and simulator."""
