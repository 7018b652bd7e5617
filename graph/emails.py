"""Email normalization: the one key that ties vendor accounts to people."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

MAX_LOCAL = 64
MAX_TOTAL = 254


@dataclass(frozen=True, slots=True)
class EmailPolicy:
    """Per-deployment normalization settings; both are off by default."""

    strip_plus_tags: bool = False
    domain_aliases: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Normalized:
    """The outcome of normalizing one address: `email` on success, else `error`."""

    email: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the address is valid."""
        return self.email is not None


DEFAULT_POLICY = EmailPolicy()

# Lowercased ASCII that the full path would accept unchanged; checked first because
# nearly every real address is plain ASCII and the full path costs far more.
_PLAIN_ASCII = re.compile(r"[!#-?\[-~]{1,64}@(?:[a-z0-9-]{1,63}\.)+[a-z0-9-]{1,63}", re.ASCII)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _ascii_domain(domain: str) -> str:
    labels = domain.split(".")
    if any(not label for label in labels):
        raise ValueError("domain has an empty label")
    encoded = []
    for label in labels:
        if label.isascii():
            if len(label) > 63:
                raise ValueError("domain label longer than 63 characters")
            encoded.append(label)
        else:
            encoded.append(label.encode("idna").decode("ascii"))
    return ".".join(encoded)


def _reject(reason: str) -> Normalized:
    return Normalized(None, reason)


def normalize_email(raw: object, policy: EmailPolicy = DEFAULT_POLICY) -> Normalized:
    """Normalize an address (trim, NFKC, casefold, IDNA domain); never raises."""
    if not isinstance(raw, str):
        return _reject("not a string")
    if raw.isascii():
        lowered = raw.strip().lower()
        if (
            _PLAIN_ASCII.fullmatch(lowered)
            and len(lowered) <= MAX_TOTAL
            and not policy.strip_plus_tags
            and not policy.domain_aliases
        ):
            return Normalized(lowered)
    text = _fold(raw.strip())
    if not text:
        return _reject("empty")
    if text.count("@") != 1:
        return _reject("must contain exactly one @")
    local, domain = text.split("@")
    if not local:
        return _reject("empty local part")
    if any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in text):
        return _reject("contains whitespace or control characters")
    if "." not in domain:
        return _reject("domain must contain a dot")
    try:
        domain = _ascii_domain(domain)
    except (UnicodeError, ValueError) as exc:
        return _reject(f"invalid domain: {exc}")
    if not all(ch.isalnum() or ch in "-." for ch in domain):
        return _reject("invalid character in domain")
    if policy.strip_plus_tags and "+" in local:
        local = local.split("+", 1)[0]
        if not local:
            return _reject("empty local part before plus tag")
    domain = policy.domain_aliases.get(domain, domain)
    if len(local) > MAX_LOCAL:
        return _reject("local part longer than 64 characters")
    email = f"{local}@{domain}"
    if len(email) > MAX_TOTAL:
        return _reject("address longer than 254 characters")
    return Normalized(email)
