"""Search across annotations with SQL: locally (SQLite catalogue) and on AWS (Athena)."""
