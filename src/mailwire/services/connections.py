"""Where an account's command connections are: in this process, or with another worker.

Theory of operation. Requests that need the mail server (message bodies,
attachments, flags, moves, uploads, server-side search) run on the command
connections of the account's worker (`workers.commands.CommandPool`). Exactly
one worker process owns an account at a time (a lease), so a request may land
in a process that does not hold it: the API layer then forwards the request to
the owner (see `api.forwarding`), and services only ever run server commands
for accounts owned here.

`LocalConnections` is the services' view of this process's workers. The
runtime attaches the supervisor once it exists; until then (and in processes
without workers, such as tests of the API alone) no account is local.
"""

from __future__ import annotations

from typing import Protocol

from mailwire.workers.commands import CommandPool


class ConnectionSource(Protocol):
    """What owns workers here: the supervisor."""

    def commands(self, account_id: str) -> CommandPool | None: ...


class LocalConnections:
    """The command pools of the accounts this process owns."""

    def __init__(self) -> None:
        self._source: ConnectionSource | None = None

    def attach(self, source: ConnectionSource) -> None:
        self._source = source

    def pool(self, account_id: str) -> CommandPool | None:
        """The account's pool when its worker runs in this process, else None."""
        return None if self._source is None else self._source.commands(account_id)
