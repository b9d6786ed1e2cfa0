"""Durable jobs: the runner that claims them from the store and records what became of them.

`model` names what a handler returns (`Done`, `Retry`, `Fail`) and re-exports
the store's job values; `runner.JobRunner` runs one queue's handler with
leases, retries with exponential backoff, the dead letter, pause and
concurrency from the `queues` table. The rows themselves live in
`mailwire.store.jobs`.

May import `store`, `net`, `protocols`, `domain` and the shared modules
(`config`, `errors`, `logs`, `types`).
"""
