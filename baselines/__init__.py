"""baselines layer of PowerTrip (see DESIGN.md §2)."""
