"""The example vendor: connector and simulator."""
