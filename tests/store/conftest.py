"""Store tests use `make_settings` and `store` from the root conftest (SQLite and PostgreSQL)."""
