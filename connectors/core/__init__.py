"""The shared connector layer: session, budget, retry, pagination, auth, redaction, errors."""
