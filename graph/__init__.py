"""The identity graph: people, vendor accounts, links, events and the outbox."""
