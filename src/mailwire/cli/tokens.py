"""`mailwire tokens issue|list|revoke`: manage access tokens from the shell.

The CLI is the operator's tool: unlike the API it may mint an instance-wide
token with no `permissions` (the default `*` scope reaches everything).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from mailwire.cli.options import (
    EXIT_FAILURE,
    DatabaseSchema,
    DatabaseUrl,
    DataDir,
    fail,
    run,
    settings_from,
    with_services,
)
from mailwire.domain.tokens import Scope, TokenRecord
from mailwire.services.container import Services
from mailwire.services.tokens import TokenRequest

app = typer.Typer(help="Issue, list and revoke API access tokens.", no_args_is_help=True)


@app.command("issue")
def issue(
    scope: Annotated[
        list[Scope] | None,
        typer.Option("--scope", help="Repeat for several; default: * (everything)"),
    ] = None,
    account: Annotated[str | None, typer.Option(help="Bind the token to one account")] = None,
    description: Annotated[
        str, typer.Option(help="What the token is for")
    ] = "Issued from the command line",
    expires: Annotated[
        datetime | None, typer.Option(help="Expiry time (ISO 8601, UTC if no zone)")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
) -> None:
    """Issue a token and print it (only the token, on stdout: it is shown this once)."""
    settings = settings_from(
        data_dir=data_dir, database_url=database_url, database_schema=database_schema
    )
    request = TokenRequest(
        description=description,
        scopes=frozenset(scope or [Scope.ALL]),
        account=account,
        expires_at=None if expires is None else _epoch_ms(expires),
    )
    issued = run(
        with_services(settings, lambda svc: svc.tokens.issue(request, allow_unrestricted=True))
    )
    print(issued.token)


@app.command("list")
def list_tokens(
    account: Annotated[str | None, typer.Option(help="Only tokens bound to this account")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
) -> None:
    """List tokens, newest first: id, account, scopes, created, last used, description."""
    settings = settings_from(
        data_dir=data_dir, database_url=database_url, database_schema=database_schema
    )

    async def collect(svc: Services) -> list[TokenRecord]:
        records: list[TokenRecord] = []
        for page in range(10_000):  # bounded: at most 10 million tokens
            found = await svc.tokens.list(account=account, query=None, page=page, page_size=1000)
            records.extend(found.records)
            if len(found.records) < 1000:
                break
        return records

    for record in run(with_services(settings, collect)):
        print("\t".join(_columns(record)))


@app.command("revoke")
def revoke(
    token: Annotated[str, typer.Argument(help="The token, or its id from `tokens list`")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
) -> None:
    """Revoke a token immediately."""
    settings = settings_from(
        data_dir=data_dir, database_url=database_url, database_schema=database_schema
    )
    if not run(with_services(settings, lambda svc: svc.tokens.revoke(token.strip().lower()))):
        fail("no token has this value or id", EXIT_FAILURE)
    print("revoked")


def _columns(record: TokenRecord) -> list[str]:
    def when(ms: int | None) -> str:
        if ms is None:
            return "-"
        return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")

    return [
        record.id,
        record.account or "-",
        ",".join(sorted(s.value for s in record.scopes)),
        when(record.created_at),
        when(record.last_used_at),
        record.description,
    ]


def _epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
