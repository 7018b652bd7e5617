"""A simulator's users by id, with listings kept in order until the users change."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, MutableMapping, ValuesView

from connectors.sim.listing import Listed, Record

Select = Callable[[Iterable[Record]], list[Record]]

MAX_LISTINGS = 64  # kept listings (filters, orders) between changes; a filter per query value


class Users(MutableMapping[str, Record]):
    """Users by id; every kept listing is dropped when a user is stored or deleted.

    Simulators replace a user through the mapping, never change a stored one in place, so a
    kept listing (order, filter, position index) is the one a fresh scan would build.
    """

    def __init__(self, id_key: str) -> None:
        self._by_id: dict[str, Record] = {}
        self._id_key = id_key
        self._listings: dict[Hashable, Listed] = {}

    def __getitem__(self, user_id: str) -> Record:
        return self._by_id[user_id]

    def __setitem__(self, user_id: str, user: Record) -> None:
        self._by_id[user_id] = user
        self._listings.clear()

    def __delitem__(self, user_id: str) -> None:
        del self._by_id[user_id]
        self._listings.clear()

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._by_id

    def values(self) -> ValuesView[Record]:
        """Return the users in insertion order (the dict's own view: scans stay fast)."""
        return self._by_id.values()

    def clear(self) -> None:
        """Remove every user."""
        self._by_id.clear()
        self._listings.clear()

    def listed(self, key: Hashable = (), select: Select = list) -> Listed:
        """Return the users `select` keeps, in its order, built once per `key` between changes."""
        listed = self._listings.get(key)
        if listed is None:
            if len(self._listings) >= MAX_LISTINGS:
                self._listings.clear()
            listed = Listed(select(self._by_id.values()), self._id_key)
            self._listings[key] = listed
        return listed
