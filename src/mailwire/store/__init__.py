"""Storage: SQLAlchemy Core on SQLite or PostgreSQL, migrations, secrets at rest.

All SQL in the project lives here. The store encrypts every credential field by
field (`store.cipher`) and keeps access tokens only as hashes.
"""
