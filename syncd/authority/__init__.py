"""The sources of truth: the HR file and the SCIM server."""
