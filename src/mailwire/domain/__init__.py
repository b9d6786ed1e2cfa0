"""Plain values and rules: tokens, accounts, mailboxes, messages, changes, events.

Frozen dataclasses and pure functions with no I/O and no framework imports.
"""
