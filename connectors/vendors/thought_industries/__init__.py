"""The thought_industries vendor: connector and simulator."""
