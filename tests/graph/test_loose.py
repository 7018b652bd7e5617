"""The loose email key the orphan policy compares by."""

from __future__ import annotations

import pytest

from graph.loose import loose_email


@pytest.mark.parametrize(
    "raw",
    [
        "vic@corp.example",
        " VIC@Corp.Example ",
        "v\u200bic@corp.example",
        "\uff56ic@corp.example",
        "vic@corp.example\n",
        "vic @corp.example",
    ],
)
def test_every_variant_folds_to_the_one_key(raw: str) -> None:
    assert loose_email(raw) == "vic@corp.example"


def test_idna_domains_and_non_addresses() -> None:
    assert loose_email("vic@bücher.example") == "vic@xn--bcher-kva.example"
    assert loose_email(None) is None
    assert loose_email("   ") is None
    assert loose_email("no-at-sign") == "no-at-sign"
