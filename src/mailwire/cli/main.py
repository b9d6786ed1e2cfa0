"""The `mailwire` command."""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from mailwire import __version__
from mailwire.cli import check_bounce, encrypt, serve, tokens

app = typer.Typer(
    name="mailwire",
    help="Mailwire: one REST API and one webhook stream for many mailboxes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.command("encrypt")(encrypt.encrypt)
app.command("check-bounce")(check_bounce.check_bounce)
app.add_typer(tokens.app, name="tokens")


@app.command("version")
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    """Run the CLI; usage errors are one line on stderr and exit code 2."""
    try:
        result = app(standalone_mode=False)
    except typer.Abort:
        sys.exit(130)
    except TyperException as exc:
        message = exc.format_message().strip()
        if "\n" in message:  # the help text, for a group called without a command
            print(message, file=sys.stderr)
        else:
            print(f"mailwire: error: {message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else 0)
