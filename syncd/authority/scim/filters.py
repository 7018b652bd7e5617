"""SCIM filters as SQL: the parsed filter becomes a WHERE clause on the graph's SCIM tables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from scim2_models import SCIMException, ScimFilter
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

from graph.models import scim_group, scim_group_member, scim_user, scim_user_email
from syncd.authority.scim.protocol import GROUP_MODEL, USER_MODEL, BadRequest

MAX_FILTER = 4096  # characters
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@dataclass(frozen=True, slots=True)
class Column:
    """A filterable attribute: its column, and whether it compares case-insensitively."""

    column: sa.ColumnElement[Any]
    folded: bool = False  # compare lowercased (caseExact false)
    boolean: bool = False


@dataclass(frozen=True, slots=True)
class Multi:
    """A multi-valued attribute kept in a child table: sub-attribute name → column."""

    table: sa.Table
    parent: sa.ColumnElement[Any]  # the child's column naming its parent
    key: sa.ColumnElement[Any]  # the parent's id
    subs: dict[str, Column]


_USER_COLUMNS = {
    "id": Column(scim_user.c.id),
    "username": Column(scim_user.c.user_name_key, folded=True),
    "externalid": Column(scim_user.c.external_id),
    "displayname": Column(sa.func.lower(scim_user.c.display_name), folded=True),
    "active": Column(scim_user.c.active, boolean=True),
}
_USER_MULTI = {
    "emails": Multi(
        scim_user_email,
        scim_user_email.c.user_id,
        scim_user.c.id,
        {
            "value": Column(scim_user_email.c.value_key, folded=True),
            "type": Column(sa.func.lower(scim_user_email.c.type), folded=True),
            "primary": Column(scim_user_email.c.is_primary, boolean=True),
        },
    )
}
_GROUP_COLUMNS = {
    "id": Column(scim_group.c.id),
    "displayname": Column(sa.func.lower(scim_group.c.display_name), folded=True),
    "externalid": Column(scim_group.c.external_id),
}
_GROUP_MULTI = {
    "members": Multi(
        scim_group_member,
        scim_group_member.c.group_id,
        scim_group.c.id,
        {"value": Column(scim_group_member.c.user_id)},
    )
}


def _invalid(detail: str) -> BadRequest:
    return BadRequest(400, detail, "invalidFilter")


def _compare(column: Column, op: CompareOperator, value: Any) -> sa.ColumnElement[bool]:
    if column.boolean:
        if not isinstance(value, bool) or op not in (CompareOperator.eq, CompareOperator.ne):
            raise _invalid("a boolean attribute takes eq or ne true/false")
        return column.column == value if op == CompareOperator.eq else column.column != value
    if not isinstance(value, str):
        raise _invalid(f"compare this attribute with a string, not {value!r}")
    text = value.casefold() if column.folded else value
    col = column.column
    present = col.is_not(None)
    comparisons: dict[CompareOperator, Callable[[], sa.ColumnElement[bool]]] = {
        CompareOperator.eq: lambda: col == text,
        CompareOperator.ne: lambda: col != text,
        CompareOperator.co: lambda: col.contains(text, autoescape=True),
        CompareOperator.sw: lambda: col.startswith(text, autoescape=True),
        CompareOperator.ew: lambda: col.endswith(text, autoescape=True),
        CompareOperator.gt: lambda: col > text,
        CompareOperator.ge: lambda: col >= text,
        CompareOperator.lt: lambda: col < text,
        CompareOperator.le: lambda: col <= text,
    }
    # A missing value matches nothing but ne, and never yields NULL (so `not` stays exact).
    if op == CompareOperator.ne:
        return sa.or_(col.is_(None), col != text)
    return sa.and_(present, comparisons[op]())


@dataclass(frozen=True, slots=True)
class _Translator:
    columns: dict[str, Column]
    multi: dict[str, Multi]

    def where(self, node: FilterNode) -> sa.ColumnElement[bool]:
        if isinstance(node, LogicalExpr):
            terms = [self.where(term) for term in node.terms]
            return sa.and_(*terms) if node.op == LogicalOperator.and_ else sa.or_(*terms)
        if isinstance(node, Not):
            return sa.not_(self.where(node.expr))
        if isinstance(node, ValuePath):
            multi = self._multi(node.attr_path)
            return self._exists(multi, _Translator(multi.subs, {}).where(node.val_filter))
        if isinstance(node, (Comparison, Present)):
            return self._leaf(node)
        raise _invalid(f"unsupported filter expression: {node}")

    def _multi(self, path: AttrPath) -> Multi:
        multi = self.multi.get(path.attr.lower())
        if multi is None:
            raise _invalid(f"{path} cannot be filtered on")
        return multi

    @staticmethod
    def _exists(multi: Multi, condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
        # IN, not a correlated EXISTS: SQLite then looks the values up by their index.
        return multi.key.in_(sa.select(multi.parent).where(condition))

    def _leaf(self, node: Comparison | Present) -> sa.ColumnElement[bool]:
        path = node.attr_path
        name = path.attr.lower()
        if name in self.multi:
            multi = self.multi[name]
            sub = multi.subs.get((path.sub_attr or "value").lower())
            if sub is None:
                raise _invalid(f"{path} cannot be filtered on")
            return self._exists(multi, self._test(sub, node))
        column = None if path.sub_attr else self.columns.get(name)
        if path.uri not in (None, USER_MODEL.__schema__, GROUP_MODEL.__schema__):
            column = None
        if column is None:
            raise _invalid(f"{path} cannot be filtered on")
        return self._test(column, node)

    @staticmethod
    def _test(column: Column, node: Comparison | Present) -> sa.ColumnElement[bool]:
        if isinstance(node, Present):
            if column.boolean:
                return column.column.is_not(None)
            return sa.and_(column.column.is_not(None), column.column != "")
        return _compare(column, node.op, node.value)


_USERS = _Translator(_USER_COLUMNS, _USER_MULTI)
_GROUPS = _Translator(_GROUP_COLUMNS, _GROUP_MULTI)


def where_clause(kind: str, text: str) -> sa.ColumnElement[bool]:
    """The SQL condition for a SCIM filter on Users or Groups; BadRequest if unsupported."""
    if len(text) > MAX_FILTER:
        raise _invalid(f"the filter is longer than {MAX_FILTER} characters")
    model = USER_MODEL if kind == "User" else GROUP_MODEL
    try:
        parsed = ScimFilter[model](text)  # type: ignore[valid-type]
    except (SCIMException, ValueError) as exc:
        raise _invalid(f"the filter cannot be read: {exc}") from None
    return (_USERS if kind == "User" else _GROUPS).where(parsed.ast)
