"""The influitive vendor: connector and simulator."""
