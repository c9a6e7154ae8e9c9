"""The edge where state lives: the delivery ledger and the subscriber list (SQLite, PostgreSQL)."""
