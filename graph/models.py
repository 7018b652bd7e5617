"""The identity graph's tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

UTCDateTime = sa.DateTime(timezone=True)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """The moment in UTC with its zone (SQLite hands back naive datetimes)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _ts(nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(UTCDateTime, nullable=nullable)


class Person(SQLModel, table=True):
    """A canonical person, as the authority describes them."""

    id: int | None = Field(default=None, primary_key=True)
    authority_id: str | None = Field(default=None, unique=True)
    primary_email: str = Field(unique=True)
    given_name: str | None = None
    family_name: str | None = None
    display_name: str | None = None
    lifecycle: str = Field(default="active", index=True)
    attributes_json: str = "{}"
    source: str
    version: int = 1
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class PersonEmail(SQLModel, table=True):
    """One normalized address known for a person (primary, alias or former)."""

    __tablename__ = "person_email"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", ondelete="CASCADE", index=True)
    email: str = Field(unique=True)
    email_loose: str | None = Field(default=None, index=True)  # only to spot look-alikes
    raw: str
    is_primary: bool = False
    source: str
    added_at: datetime = Field(sa_column=_ts())


def _partial_index(name: str, column: str, where: str) -> sa.Index:
    """An index of only the rows `where` holds, on both databases."""
    return sa.Index(name, column, sqlite_where=sa.text(where), postgresql_where=sa.text(where))


class Account(SQLModel, table=True):
    """One vendor account as last listed, and its link to a person."""

    __table_args__ = (
        sa.UniqueConstraint("connector", "external_id", name="uq_account_connector_external_id"),
        # Most accounts arrive unlinked, and they need no entry in this index.
        _partial_index("ix_account_person_id", "person_id", "person_id IS NOT NULL"),
        # Only look-alike addresses have a loose form stored.
        _partial_index("ix_account_email_loose", "email_loose", "email_loose IS NOT NULL"),
        # A leaver's unlinked accounts by email: few are unlinked once resolution ran.
        _partial_index("ix_account_unlinked_email", "email", "person_id IS NULL"),
        # A connector's live accounts are counted as all of them less these few.
        _partial_index("ix_account_missing", "connector", "missing_since IS NOT NULL"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connector: str
    external_id: str
    email_raw: str | None = None
    email: str | None = None  # the strict key: what links automatically
    email_error: str | None = None
    email_loose: str | None = None  # set only for a look-alike, which never links by itself
    status: str
    attributes_json: str = "{}"
    raw_json: str = "{}"
    payload_hash: str
    first_seen: datetime = Field(sa_column=_ts())
    changed_at: datetime = Field(sa_column=_ts())
    missing_since: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    person_id: int | None = Field(default=None, foreign_key="person.id", ondelete="SET NULL")
    link_method: str | None = None
    linked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Event(SQLModel, table=True):
    """An append-only audit record of one change."""

    __table_args__ = (
        sa.Index("ix_event_subject", "subject", "subject_id"),
        sa.Index("ix_event_person_id", "person_id"),
        # Also finds the events not chained yet (seq IS NULL): a handful at a time.
        sa.Index("uq_event_seq", "seq", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=_ts())
    source: str
    kind: str
    subject: str
    subject_id: int
    old_json: str | None = None
    new_json: str | None = None
    actor: str | None = None  # `syncd`, or the operator's user name
    connector: str | None = None
    person_id: int | None = None  # no foreign key: the trail outlives what it names
    operation_id: int | None = None
    outcome: str | None = None
    detail: str | None = None  # why: the vendor's error, an operator's reason
    seq: int | None = None  # place in the hash chain
    hash: str | None = None  # sha256 of the content and prev_hash (graph/audit.py)
    prev_hash: str | None = None


class Operation(SQLModel, table=True):
    """An outbox entry: one write to push to a vendor."""

    __table_args__ = (sa.Index("ix_operation_connector_state", "connector", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    connector: str
    account_id: int | None = Field(default=None, foreign_key="account.id", ondelete="SET NULL")
    person_id: int | None = Field(default=None, foreign_key="person.id", ondelete="SET NULL")
    op: str
    payload_json: str = "{}"
    idempotency_key: str = Field(unique=True)
    state: str = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_error: str | None = None
    error_kind: str | None = None  # why it failed last: transient, lookup, lookalike, ...
    lookup_failures: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # The fencing token of the lease its claimer held: only that claimer may complete it.
    lease_token: int | None = None


class OperationAttempt(SQLModel, table=True):
    """One try of an operation at its vendor, or an operator's action on it, and how it ended."""

    __tablename__ = "operation_attempt"

    id: int | None = Field(default=None, primary_key=True)
    operation_id: int = Field(foreign_key="operation.id", ondelete="CASCADE", index=True)
    at: datetime = Field(sa_column=_ts())
    status: int | None = None  # the vendor's HTTP status; None: no answer, or not a request
    outcome: str  # done, retry, dead, or an operator's retried / cancelled
    message: str | None = None  # the vendor's reason (trimmed, redacted) or the error


class Conflict(SQLModel, table=True):
    """Something only a person can settle; never acted on automatically."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    kind: str = Field(index=True)
    connector: str | None = None
    email: str | None = None
    person_id: int | None = Field(default=None, foreign_key="person.id", ondelete="CASCADE")
    account_id: int | None = Field(default=None, foreign_key="account.id", ondelete="CASCADE")
    detail_json: str = "{}"
    state: str = Field(default="open", index=True)
    created_at: datetime = Field(sa_column=_ts())
    resolved_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class ConnectorState(SQLModel, table=True):
    """Per-connector bookkeeping: listings, learned rate, failures, parking."""

    __tablename__ = "connector_state"

    connector: str = Field(primary_key=True)
    listing_started_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    listing_finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    listing_complete: bool = False
    last_complete_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    page_count: int = 0
    account_count: int = 0
    learned_rate: float | None = None
    consecutive_failures: int = 0
    parked_reason: str | None = None
    resolved_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    updated_at: datetime = Field(sa_column=_ts())


class AuthorityState(SQLModel, table=True):
    """Per authority source: the last feed applied, and a refusal waiting for an operator."""

    __tablename__ = "authority_state"

    source: str = Field(primary_key=True)
    applied_digest: str | None = None  # sha256 of the last feed applied
    applied_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    refused_reason: str | None = None
    refused_since: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    refused_digest: str | None = None  # the exact feed version that was refused
    refused_count: int | None = None  # people the refused feed would deprovision
    approved_digest: str | None = None  # a refused feed version an operator approved
    updated_at: datetime = Field(sa_column=_ts())


class Lease(SQLModel, table=True):
    """Who may write: one row per lease (the writer today; per connector when scaled out)."""

    name: str = Field(primary_key=True)
    holder: str  # unique per process: host, pid and a random part
    host: str
    pid: int
    token: int = 0  # fencing token: increases on every takeover
    started_at: datetime = Field(sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())


class Replica(SQLModel, table=True):
    """A running `syncd run` that shares the leases; live while seen within a lease TTL."""

    id: str = Field(primary_key=True)  # the replica's lease holder id
    host: str
    pid: int
    started_at: datetime = Field(sa_column=_ts())
    seen_at: datetime = Field(sa_column=_ts())


metadata = SQLModel.metadata


def _table(model: type[SQLModel]) -> sa.Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, sa.Table)
    return table


person_table = _table(Person)
person_email_table = _table(PersonEmail)
account_table = _table(Account)
event_table = _table(Event)
operation_table = _table(Operation)
operation_attempt_table = _table(OperationAttempt)
conflict_table = _table(Conflict)
connector_state_table = _table(ConnectorState)
authority_state_table = _table(AuthorityState)
lease_table = _table(Lease)
replica_table = _table(Replica)

# SCIM resources an identity provider provisioned (graph.scim reads and writes them).


def _scim_resource(name: str, *columns: sa.Column[Any]) -> sa.Table:
    """A SCIM resource's table: its id, own columns, stored JSON, version and timestamps."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.String(), primary_key=True),
        *columns,
        sa.Column("external_id", sa.String(), index=True),
        sa.Column("resource_json", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def _owned_by(name: str, owner: str, *, key: bool = False, index: bool = True) -> sa.Column[str]:
    """A column naming the SCIM resource a row belongs to; the row goes with it."""
    owner_id = sa.ForeignKey(f"{owner}.id", ondelete="CASCADE")
    return sa.Column(name, sa.String(), owner_id, primary_key=key, nullable=False, index=index)


scim_user = _scim_resource(
    "scim_user",
    sa.Column("person_id", sa.Integer(), sa.ForeignKey("person.id", ondelete="SET NULL")),
    sa.Column("user_name", sa.String(), nullable=False),
    sa.Column("user_name_key", sa.String(), nullable=False, unique=True),
    sa.Column("display_name", sa.String(), index=True),
    sa.Column("active", sa.Boolean(), nullable=False, index=True),
)

scim_user_email = sa.Table(
    "scim_user_email",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    _owned_by("user_id", "scim_user"),
    sa.Column("value", sa.String(), nullable=False),
    sa.Column("value_key", sa.String(), nullable=False, index=True),
    sa.Column("type", sa.String()),
    sa.Column("is_primary", sa.Boolean(), nullable=False),
)

scim_group = _scim_resource(
    "scim_group",
    sa.Column("display_name", sa.String(), nullable=False, index=True),
)

scim_group_member = sa.Table(
    "scim_group_member",
    metadata,
    _owned_by("group_id", "scim_group", key=True, index=False),
    _owned_by("user_id", "scim_user", key=True),
)

# The authority rows last applied: a row whose hash is here, for a person still at this version,
# is what the graph already holds (syncd/authority/hrfeed.py reads only the others).
authority_row_table = sa.Table(
    "authority_row",
    metadata,
    sa.Column("source", sa.String(), primary_key=True),
    sa.Column("row_hash", sa.String(), primary_key=True),
    sa.Column("person_id", sa.Integer(), sa.ForeignKey("person.id", ondelete="CASCADE")),
    sa.Column("version", sa.Integer(), nullable=False),
    # Covering: a feed reads every row of its source, and this reads them from the index alone.
    sa.Index("ix_authority_row_current", "source", "row_hash", "person_id", "version"),
)
