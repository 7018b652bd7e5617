"""The names seeded users are drawn from, and the email each drawn name makes."""

from __future__ import annotations

from dataclasses import dataclass

GIVEN_NAMES = (
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Radia",
    "Tim",
)
FAMILY_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")


@dataclass(frozen=True, slots=True)
class SeedName:
    """Seeded user number `number`'s drawn name."""

    given: str
    family: str
    number: int

    @property
    def full(self) -> str:
        """Return "Given Family"."""
        return f"{self.given} {self.family}"

    def email(self, domain: str) -> str:
        """Return `given.family.number@domain`, lower-case."""
        return f"{self.given.lower()}.{self.family.lower()}.{self.number}@{domain}"
