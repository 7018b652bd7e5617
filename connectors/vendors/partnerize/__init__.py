"""The partnerize vendor: connector and simulator."""
