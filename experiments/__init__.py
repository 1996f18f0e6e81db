"""experiments layer of PowerTrip (see architecture.md §2)."""
