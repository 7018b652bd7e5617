"""Email normalization: the one key that ties vendor accounts to people."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import idna
import unicodedataplus

MAX_LOCAL = 64
MAX_TOTAL = 254


@dataclass(frozen=True, slots=True)
class EmailPolicy:
    """Per-deployment normalization settings; both are off by default."""

    strip_plus_tags: bool = False
    domain_aliases: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Normalized:
    """One address normalized: the strict key `email` (else `error`), `loose` for a look-alike."""

    email: str | None
    error: str | None = None
    # The compatibility form (NFKC, case folding, IDNA 2003), only for a look-alike: an
    # address that differs from its strict key, holds a character NFC rewrites (the Kelvin
    # sign), mixes scripts, or is invalid only under the strict rules. It never links alone.
    loose: str | None = None

    @property
    def ok(self) -> bool:
        """True when the address is valid."""
        return self.email is not None

    @property
    def lookalike(self) -> bool:
        """True when the address must not link automatically."""
        return self.loose is not None

    @property
    def loose_key(self) -> str | None:
        """The form look-alikes are compared on: the loose form, else the strict key."""
        return self.loose if self.loose is not None else self.email


DEFAULT_POLICY = EmailPolicy()

# Lowercased ASCII that the full path would accept unchanged; checked first because
# nearly every real address is plain ASCII and the full path costs far more.
_PLAIN_ASCII = re.compile(r"[!#-?\[-~]{1,64}@(?:[a-z0-9-]{1,63}\.)+[a-z0-9-]{1,63}", re.ASCII)

# Scripts that go with any other (UTS #39: Common and Inherited).
_ANY_SCRIPT = frozenset({"Zyyy", "Zinh"})
# UTS #39 augmented script sets: Han writing mixes with its companion scripts.
_AUGMENTED = {"Hani": {"Hanb", "Jpan", "Kore"}, "Hira": {"Jpan"}, "Kana": {"Jpan"}}
_AUGMENTED |= {"Hang": {"Kore"}, "Bopo": {"Hanb"}}


def compatibility_fold(text: str) -> str:
    """The text as the loose rules saw it: NFKC and case folding."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _exact(text: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).lower())


def nameprep(label: str) -> str:
    """One domain label in IDNA 2003 (nameprep) ASCII form; UnicodeError when it has none."""
    return label.encode("idna").decode("ascii")


def _idna2008(label: str) -> str:
    return idna.alabel(label).decode("ascii")


def _ascii_domain(domain: str, encode: Callable[[str], str]) -> str:
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
            encoded.append(encode(label))
    return ".".join(encoded)


def _reject(reason: str) -> Normalized:
    return Normalized(None, reason)


def _key(text: str, policy: EmailPolicy, encode: Callable[[str], str]) -> Normalized:
    """Validate an address already mapped to one form and build its key."""
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
        domain = _ascii_domain(domain, encode)
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


def _scripts(ch: str) -> set[str] | None:
    """The scripts a character can be written in; None for one that goes with any."""
    found = set(unicodedataplus.script_extensions(ch))
    if found & _ANY_SCRIPT:
        return None
    for script in list(found):
        found |= _AUGMENTED.get(script, set())
    return found


def mixes_scripts(text: str) -> bool:
    """Whether no single script covers every character (UTS #39 mixed-script detection)."""
    common: set[str] | None = None
    for ch in set(text):
        scripts = _scripts(ch)
        if scripts is None:
            continue
        common = scripts if common is None else common & scripts
        if not common:
            return True
    return False


def _rewritten_by_nfc(text: str) -> bool:
    """Whether a character of the text is one NFC replaces (Kelvin sign, Ohm sign, ...)."""
    if unicodedata.is_normalized("NFC", text):
        return False
    return any(unicodedata.normalize("NFC", ch) != ch for ch in text)


def _suspicious(raw: str, exact: str) -> bool:
    local, _, domain = exact.partition("@")
    return (
        _rewritten_by_nfc(raw)
        or mixes_scripts(local)
        or any(mixes_scripts(label) for label in domain.split("."))
    )


def normalize_email(raw: object, policy: EmailPolicy = DEFAULT_POLICY) -> Normalized:
    """Normalize an address (trim, NFC, lowercase, IDNA 2008 domain); never raises."""
    if not isinstance(raw, str):
        return _reject("not a string")
    text = raw.strip()
    if text.isascii():
        lowered = text.lower()
        if (
            _PLAIN_ASCII.fullmatch(lowered)
            and len(lowered) <= MAX_TOTAL
            and not policy.strip_plus_tags
            and not policy.domain_aliases
        ):
            return Normalized(lowered)
    exact = _exact(text)
    strict = _key(exact, policy, _idna2008)
    if text.isascii():
        return strict  # ASCII has no compatibility form and one script
    loose = _key(compatibility_fold(text), policy, nameprep).email
    if loose is None:
        return strict
    if strict.email != loose or _suspicious(text, exact):
        return Normalized(strict.email, strict.error, loose)
    return strict
