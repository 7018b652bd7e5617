"""syncd's SCIM 2.0 service provider: identity providers provision people into the graph."""

from syncd.authority.scim.app import scim_app

__all__ = ["scim_app"]
