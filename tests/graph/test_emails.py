"""Email normalization: idempotent, case and Unicode-form insensitive, strict, never raising."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from graph.emails import EmailPolicy, Normalized, mixes_scripts, normalize_email

local_part = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+_-éÄßİ",
    min_size=1,
    max_size=30,
)
label = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789üÖ",
    min_size=1,
    max_size=20,
)
emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    local_part,
    label,
    st.sampled_from(["com", "DE", "org"]),
)


@given(st.one_of(st.text(), emails, st.integers(), st.none()))
def test_never_raises_and_always_says_why(raw: object) -> None:
    result = normalize_email(raw)
    assert (result.email is None) != (result.error is None)


@given(emails)
def test_idempotent(raw: str) -> None:
    first = normalize_email(raw)
    if first.email is not None:
        assert normalize_email(first.email).email == first.email


@given(emails)
def test_case_insensitive(raw: str) -> None:
    # The strict key lowercases; only the loose form folds `ß` and `SS` together.
    assert normalize_email(raw).email == normalize_email(raw.lower()).email
    assert normalize_email(raw.upper()).loose_key == normalize_email(raw.lower()).loose_key


@given(emails, st.sampled_from(["NFC", "NFD", "NFKC", "NFKD"]))
def test_unicode_form_insensitive(raw: str, form: str) -> None:
    assert normalize_email(unicodedata.normalize(form, raw)).email == normalize_email(raw).email


@given(emails, st.text(alphabet=" \t\n", max_size=3))
def test_surrounding_whitespace_ignored(raw: str, pad: str) -> None:
    assert normalize_email(pad + raw + pad).email == normalize_email(raw).email


def test_examples() -> None:
    assert normalize_email("  Ann.Lee@Example.COM ").email == "ann.lee@example.com"
    assert normalize_email("jo@Bücher.de").email == "jo@xn--bcher-kva.de"
    assert normalize_email("müller@Bücher.de") == Normalized("müller@xn--bcher-kva.de")
    assert normalize_email("jo@пример.рф") == Normalized("jo@xn--e1afmkfd.xn--p1ai")
    assert normalize_email("STRASSE@x.de").email != normalize_email("straße@x.de").email
    assert normalize_email("STRASSE@x.de").loose_key == normalize_email("straße@x.de").loose_key


def test_lookalikes_keep_their_own_key_and_are_marked() -> None:
    cases = {
        "ｃｅｏ@corp.example": ("ｃｅｏ@corp.example", "ceo@corp.example"),  # fullwidth
        "ſam@corp.example": ("ſam@corp.example", "sam@corp.example"),  # long s
        "\u212aim@corp.example": ("kim@corp.example", "kim@corp.example"),  # Kelvin sign
        "p\u0430ypal@corp.example": ("p\u0430ypal@corp.example", "p\u0430ypal@corp.example"),
        "jo@b\u0430nk.example": ("jo@xn--bnk-6cd.example", "jo@xn--bnk-6cd.example"),
        "straße@x.de": ("straße@x.de", "strasse@x.de"),
    }
    for raw, (strict, loose) in cases.items():
        result = normalize_email(raw)
        assert (result.email, result.loose, result.lookalike) == (strict, loose, True), raw


def test_a_domain_idna_2008_refuses_is_invalid_but_still_a_lookalike() -> None:
    joiner = normalize_email("cfo@corp.exa\u034fmple")  # combining grapheme joiner
    assert joiner.email is None and joiner.error and "U+034F" in joiner.error
    assert joiner.loose == "cfo@corp.example"
    fullwidth = normalize_email("jo@ｅｘａｍｐｌｅ.com")
    assert fullwidth.email is None and fullwidth.loose == "jo@example.com"


def test_mixed_scripts() -> None:
    assert mixes_scripts("p\u0430ypal")  # Latin with a Cyrillic a
    assert mixes_scripts("\u0430\u03b1a")  # Cyrillic, Greek, Latin
    assert not mixes_scripts("пример")
    assert not mixes_scripts("jo.smith-2")
    assert not mixes_scripts("やまだ太郎")  # Hiragana with Han is one writing system


def test_rejections_name_the_reason() -> None:
    assert normalize_email("no-at-sign").error == "must contain exactly one @"
    assert normalize_email("a@@b.com").error == "must contain exactly one @"
    assert normalize_email("@example.com").error == "empty local part"
    assert normalize_email("a b@example.com").error == "contains whitespace or control characters"
    assert normalize_email("a@localhost").error == "domain must contain a dot"
    assert normalize_email("a@x..com").error == "invalid domain: domain has an empty label"
    assert normalize_email("a" * 65 + "@x.com").error == "local part longer than 64 characters"
    assert normalize_email(None).error == "not a string"
    assert normalize_email("").error == "empty"


def test_plus_tags_and_domain_aliases_are_opt_in() -> None:
    assert normalize_email("ann+hr@example.com").email == "ann+hr@example.com"
    policy = EmailPolicy(strip_plus_tags=True, domain_aliases={"corp.example.com": "example.com"})
    assert normalize_email("Ann+hr@Corp.Example.com", policy).email == "ann@example.com"


ascii_emails = st.from_regex(r"\A[ -~]{0,8}@[ -~]{0,12}\Z")


@given(st.one_of(ascii_emails, emails))
def test_plain_ascii_fast_path_agrees_with_the_full_path(raw: str) -> None:
    # A policy with a (never matching) domain alias always takes the full path.
    full_path = EmailPolicy(domain_aliases={"unused.invalid": "example.com"})
    assert normalize_email(raw) == normalize_email(raw, full_path)
