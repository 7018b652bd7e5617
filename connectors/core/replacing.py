"""Vendors whose PUT replaces the whole object: every change reads, merges and writes back."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import ClassVar

from connectors.core.base import Connector
from connectors.core.pagination import Record
from connectors.core.priority import Priority
from connectors.core.records import VendorAccount


class ReplacingConnector(Connector):
    """A connector whose updates and deactivations are merge-writes of the whole object."""

    deactivation: ClassVar[Mapping[str, object]]  # the fields that deactivate an account

    @abstractmethod
    def to_vendor(self, attributes: Mapping[str, object]) -> Record:
        """Map canonical attributes to the vendor's fields."""

    async def update_account(
        self, external_id: str, attributes: Mapping[str, object]
    ) -> VendorAccount:
        """Read the account, merge the changes, write the whole object back."""
        changes = self.to_vendor(attributes)
        return self.to_account(await self._merge_write(external_id, changes, Priority.WRITE))

    async def deactivate_account(self, external_id: str) -> None:
        """Write `deactivation`, keeping every other field; ahead of routine reads."""
        await self._merge_write(external_id, dict(self.deactivation), Priority.DEACTIVATE)
