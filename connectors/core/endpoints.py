"""Checks on where a connector sends its credentials: base URLs and hostname labels."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", re.ASCII)
_FORBIDDEN_IN_URL = re.compile(r"[\s\\\x00-\x1f\x7f]")


def label_problem(value: object) -> str | None:
    """What is wrong with a setting that becomes one DNS label of a vendor's hostname."""
    if not isinstance(value, str) or _LABEL.fullmatch(value) is None:
        return (
            "must be one DNS label: 1 to 63 letters, digits or hyphens, "
            "not starting or ending with a hyphen"
        )
    return None


def is_loopback(host: str) -> bool:
    """Whether a URL's host is this machine: localhost, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def base_url_problem(url: str, *, allow_insecure_http: bool = False) -> str | None:
    """What is wrong with a vendor base URL; None when credentials may be sent to it."""
    if _FORBIDDEN_IN_URL.search(url):
        return "must not contain spaces, backslashes or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises for a port that is not a number in range)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an https:// URL with a host"
    if "@" in parts.netloc:
        return "must not hold a user or password (user:pass@); name credentials under secrets"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "must not have a query string or fragment"
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        return (
            "plain http:// is only for loopback addresses; use https://, "
            "or set allow_insecure_http = true"
        )
    return None
