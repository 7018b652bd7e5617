"""One package per vendor: its connector, its simulator and its README."""
