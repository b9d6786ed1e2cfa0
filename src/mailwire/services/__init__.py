"""Use cases shared by the API, the UI, the CLI and the servers.

Each service takes plain values and returns plain values or domain objects; no
HTTP types. Services call the store, the jobs runner and account workers.
"""
