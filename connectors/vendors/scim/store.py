"""The SCIM simulator's users as a mapping of plain records over scim2-server's storage."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from pydantic import ValidationError
from scim2_models import NotFoundException, Resource, ResourceType, SCIMException
from scim2_server.memory import InMemoryStorage

from connectors.sim.errors import VendorError

Record = dict[str, object]


class _KeptIdStorage(InMemoryStorage):
    """An in-memory storage that keeps the id a stored record already has (seeded users)."""

    def generate_id(self, resource_type: ResourceType, resource: Resource[Any]) -> str:
        """Return the resource's own id, or a fresh one."""
        return resource.id or super().generate_id(resource_type, resource)


class ScimUserStore(MutableMapping[str, Record]):
    """Users by id, read and written as JSON records; the SCIM storage holds the truth."""

    def __init__(self, resource_type: ResourceType, model: type[Resource[Any]]) -> None:
        self.storage: InMemoryStorage = _KeptIdStorage()
        self._resource_type = resource_type
        self._model = model

    def __getitem__(self, user_id: str) -> Record:
        try:
            resource = self.storage.get(self._resource_type, user_id)
        except NotFoundException:
            raise KeyError(user_id) from None
        return self._record(resource)

    def __setitem__(self, user_id: str, record: Record) -> None:
        try:
            resource = self._model.model_validate({**record, "id": user_id})
            if user_id in self:  # a record stored again under its id replaces the user
                self.storage.update(self._resource_type, resource)
            else:
                self.storage.create(self._resource_type, resource)
        except ValidationError as error:
            raise VendorError(400, f"not a SCIM user: {error.errors()[0]['msg']}") from None
        except SCIMException as error:
            raise VendorError(error.status, str(error)) from None

    def __delitem__(self, user_id: str) -> None:
        try:
            self.storage.delete(self._resource_type, user_id)
        except NotFoundException:
            raise KeyError(user_id) from None

    def __iter__(self) -> Iterator[str]:
        return iter([str(resource.id) for resource in self.storage.resources])

    def __len__(self) -> int:
        return len(self.storage.resources)

    @staticmethod
    def _record(resource: Resource[Any]) -> Record:
        """Return a stored user as the JSON the SCIM API would send (without its location)."""
        dumped: Record = resource.model_dump(mode="json")
        return dumped
