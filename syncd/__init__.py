"""syncd: keep one identity graph true across SaaS vendors."""
