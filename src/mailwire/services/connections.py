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

import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

from mailwire.backends.imap.errors import CommandFailedError, ImapConnectionError
from mailwire.backends.imap.operation_errors import OperationRefusedError
from mailwire.backends.imap.operations import MailboxOperations
from mailwire.errors import ConflictError, InputError, UnavailableError, UpstreamError
from mailwire.logs import get_logger
from mailwire.workers.commands import CommandPool, PoolClosedError, PoolTimeoutError

log = get_logger(__name__)


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


@contextlib.asynccontextmanager
async def server_connection(
    connections: LocalConnections, account_id: str, *, refused_is_input: bool = False
) -> AsyncIterator[MailboxOperations]:
    """One of the account's command connections, with every failure as an API error.

    - no worker for the account here: 503 `AccountNotConnected` (routes that need
      the server take `OwnedAccount`, which forwards such requests first);
    - every connection busy, or the worker stopping: 503 `AccountBusy`;
    - an operation the server cannot do (a missing extension, an unsafe EXPUNGE):
      409 with the refusal's code;
    - with `refused_is_input`, a NO from the server is the request's fault (a folder
      name it does not allow): 400;
    - any other server failure: 502 `MailServerError`, logged without content.
    """
    pool = connections.pool(account_id)
    if pool is None:
        raise UnavailableError(
            "The account is not connected to a worker in this process",
            code="AccountNotConnected",
        )
    try:
        async with pool.connection() as conn:
            yield MailboxOperations(conn)
    except (PoolTimeoutError, PoolClosedError) as error:
        raise UnavailableError(str(error), code="AccountBusy") from error
    except OperationRefusedError as error:
        raise ConflictError(str(error), code=error.code) from error
    except CommandFailedError as error:
        if not refused_is_input:
            log.warning("mail_server_failed", account=account_id, error=str(error))
            raise UpstreamError(f"The mail server failed: {error}") from error
        raise InputError(f"The mail server refused: {error.text or error.status}") from error
    except ImapConnectionError as error:
        log.warning("mail_server_failed", account=account_id, error=str(error))
        raise UpstreamError(f"The mail server failed: {error}") from error
