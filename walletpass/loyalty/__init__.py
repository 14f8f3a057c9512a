"""Programs, members, the points ledger and the rewards catalogue."""
