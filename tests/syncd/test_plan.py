"""Planning one person's operations."""

from __future__ import annotations

from syncd.plan import (
    Account,
    Guard,
    Person,
    Target,
    desired_attributes,
    plan_person,
    same_value,
)

ANN = Person(1, "ann@example.com", "active", 3, {"given_name": "Ann", "title": "CTO"})
EVERYONE = Target("acme", provision=lambda person: person.email.endswith("@example.com"))
NOBODY = Target("zeta")


def test_a_new_hire_gets_an_account_where_the_rule_says() -> None:
    plan = plan_person(ANN, {}, [EVERYONE, NOBODY])
    [create] = plan.operations
    assert (create.connector, create.op, create.payload["email"]) == ("acme", "create", ANN.email)
    assert create.payload["title"] == "CTO"


def test_only_differing_mapped_attributes_are_updated() -> None:
    account = Account(7, True, {"email": ANN.email, "title": "Dev", "given_name": "Ann"})
    [update] = plan_person(ANN, {"acme": account}, [EVERYONE]).operations
    assert (update.op, dict(update.payload), update.account_id) == ("update", {"title": "CTO"}, 7)
    same = Account(7, True, {"email": ANN.email, "title": "CTO", "given_name": "Ann"})
    assert plan_person(ANN, {"acme": same}, [EVERYONE]).operations == []


def test_a_cleared_attribute_is_sent_as_none() -> None:
    cleared = Person(1, ANN.email, "active", 3, {**ANN.attributes, "company": None})
    held = {"email": ANN.email, "given_name": "Ann", "title": "CTO", "company": "Old Co"}
    account = Account(7, True, held)
    [update] = plan_person(cleared, {"acme": account}, [EVERYONE]).operations
    assert dict(update.payload) == {"company": None}
    # An attribute the authority never sent is left as the vendor has it.
    assert plan_person(ANN, {"acme": account}, [EVERYONE]).operations == []


def test_a_leaver_is_deactivated_where_the_vendor_can() -> None:
    leaver = Person(1, ANN.email, "deprovisioned", 4, ANN.attributes)
    accounts = {"acme": Account(7, True, {}), "zeta": Account(8, True, {})}
    plan = plan_person(leaver, accounts, [EVERYONE, Target("zeta", has_deactivate=False)])
    assert [(op.connector, op.op) for op in plan.operations] == [("acme", "deactivate")]
    assert plan.unsupported == ["zeta: cannot deactivate"]
    assert plan_person(leaver, {}, [EVERYONE]).operations == []  # nobody creates for a leaver


def test_a_rehire_is_reactivated() -> None:
    held = {"email": ANN.email, "given_name": "Ann", "title": "CTO"}
    rehired = Account(7, False, held, link_method="created_by_push")
    [op] = plan_person(ANN, {"acme": rehired}, [EVERYONE]).operations
    assert (op.op, dict(op.payload)) == ("reactivate", {"active": True})


BOSS = Person(
    2, "boss@example.com", "active", 1, {"title": "CEO", "role": "admin", "groups": ["g"]}
)
HELD = {"email": "old@example.com", "title": "Intern", "role": "learner", "groups": []}


def test_an_untrusted_link_gets_ordinary_fields_only() -> None:
    for link_method in ("email", None):
        account = Account(7, False, HELD, link_method=link_method)
        plan = plan_person(BOSS, {"acme": account}, [EVERYONE])
        [op] = plan.operations
        assert (op.op, dict(op.payload)) == ("update", {"title": "CEO"})
        assert plan.unsupported == [
            "acme: the account of boss@example.com needs a confirmed link: "
            "no reactivation, email, groups, role"
        ]


def test_a_confirmed_link_gets_everything_inside_the_provision_rule() -> None:
    trusting = Target("acme", provision=EVERYONE.provision, trust_email_links=True)
    for target, link_method in (
        (EVERYONE, "manual"),
        (EVERYONE, "created_by_push"),
        (trusting, "email"),
    ):
        account = Account(7, False, HELD, link_method=link_method)
        [op] = plan_person(BOSS, {"acme": account}, [target]).operations
        assert op.op == "reactivate"
        assert set(op.payload) == {"email", "title", "role", "groups", "active"}
    outside = Target("acme", provision=lambda person: False)
    account = Account(7, True, HELD, link_method="manual")
    plan = plan_person(BOSS, {"acme": account}, [outside])
    assert [dict(op.payload) for op in plan.operations] == [{"title": "CEO"}]
    assert "is outside the provision rule" in plan.unsupported[0]


def test_an_untrusted_link_is_still_deactivated() -> None:
    leaver = Person(2, BOSS.email, "deprovisioned", 2, BOSS.attributes)
    account = Account(7, True, HELD, link_method="email")
    assert [op.op for op in plan_person(leaver, {"zeta": account}, [NOBODY]).operations] == [
        "deactivate"
    ]


def test_access_is_never_taken_from_an_unconfirmed_account() -> None:
    precedence = {"role": ["zeta", "authority"], "title": ["zeta", "authority"]}
    source = {"role": "owner", "title": "Chief"}
    for link_method, role in (("email", "admin"), ("manual", "owner")):
        accounts = {"zeta": Account(8, True, source, link_method=link_method)}
        wanted = desired_attributes(BOSS, accounts, precedence)
        assert (wanted["role"], wanted["title"]) == (role, "Chief")


def test_a_lookalike_vendor_email_is_not_the_same_email() -> None:
    assert same_value("email", "Sam@corp.example", "sam@CORP.example")
    assert not same_value("email", "sam@corp.example", "ſam@corp.example")
    assert not same_value("email", "kim@corp.example", "\u212aim@corp.example")


def test_idempotency_keys_follow_the_person_version() -> None:
    account = Account(7, True, {"title": "Dev"})
    first = plan_person(ANN, {"acme": account}, [EVERYONE]).operations[0]
    again = plan_person(ANN, {"acme": account}, [EVERYONE]).operations[0]
    newer = Person(1, ANN.email, "active", 4, ANN.attributes)
    later = plan_person(newer, {"acme": account}, [EVERYONE]).operations[0]
    assert first.idempotency_key == again.idempotency_key != later.idempotency_key


def test_guard_holds_mass_deactivations() -> None:
    guard = Guard(max_count=10, max_share=0.05)
    assert not guard.holds(1, 3)  # one leaver at a small vendor goes through
    assert not guard.holds(5, 1000)
    assert guard.holds(11, 10_000)  # past the count
    assert guard.holds(6, 100)  # past the share
    assert guard.holds(2, 0)


def test_a_leaver_is_deleted_where_only_delete_is_allowed() -> None:
    leaver = Person(1, ANN.email, "deprovisioned", 4, ANN.attributes)
    deletes = Target("zeta", has_deactivate=False, can_delete=True)
    plan = plan_person(leaver, {"zeta": Account(8, True, {})}, [deletes])
    assert [(op.connector, op.op, op.account_id) for op in plan.operations] == [
        ("zeta", "delete", 8)
    ]
    assert plan.unsupported == []


def test_the_guard_counts_people_changing_login_email() -> None:
    guard = Guard(max_email_changes=2)
    assert not guard.holds_email_changes(2)
    assert guard.holds_email_changes(3)
