"""Durable job runner on the store: retry with backoff, dead letter, visibility.

Nothing lives here yet. Jobs are rows in the store; the runner claims and runs them.
"""
