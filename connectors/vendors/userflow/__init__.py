"""The userflow vendor: connector and simulator."""
