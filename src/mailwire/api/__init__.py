"""REST API (FastAPI): EmailEngine v2 compatible routes under `/v1/...`.

Translates HTTP to service calls and service errors to HTTP (one table in
`api.errors`). Holds no business rules and no SQL; imports `services` and below.
"""
