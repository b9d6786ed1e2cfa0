"""Account workers: one asyncio task per account, owned by this process through a lease.

`supervisor.Supervisor` claims this process's share of the accounts and runs
an `account.AccountWorker` per account; the worker connects, logs in and runs
a `session.Session` on the connection (the sync engine's, or `idle_session`),
reconnecting with `backoff` and within `limits`. `protocol_log` records the
exchange of accounts with `logs: true`; `errors` names connection failures.

May import `backends`, `store`, `net`, `protocols`, `domain` and the shared
modules (`config`, `errors`, `logs`, `types`).
"""
