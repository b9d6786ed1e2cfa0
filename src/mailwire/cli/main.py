"""The `mailwire` command."""

from __future__ import annotations

import typer

from mailwire import __version__
from mailwire.cli import encrypt, serve, tokens

app = typer.Typer(
    name="mailwire",
    help="Mailwire: one REST API and one webhook stream for many mailboxes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.command("encrypt")(encrypt.encrypt)
app.add_typer(tokens.app, name="tokens")


@app.command("version")
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    app()
