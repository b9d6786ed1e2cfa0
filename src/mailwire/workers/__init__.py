"""Account workers: one asyncio task per account (sync loop, IDLE, command handling).

Nothing lives here yet. Workers use `backends` for provider access and the store
for the index and the event outbox.
"""
