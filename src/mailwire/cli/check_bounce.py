"""`mailwire check-bounce FILE`: what the sync engine would make of a message.

Reads one RFC 5322 message (a file, or `-` for standard input; at most
`MAX_INPUT_BYTES`), and prints as JSON the `messageBounce` or
`messageComplaint` data it would raise, or `{"kind": null}` when the message is
neither. Useful to check a provider's bounce format before relying on it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mailwire.cli.options import fail
from mailwire.protocols.mime.bounces import parse_bounce
from mailwire.protocols.mime.complaints import parse_complaint

#: Larger input is refused (the parsers look at the first MiB anyway).
MAX_INPUT_BYTES = 32 * 1024 * 1024
#: The message id shown in place of the stored message's API id.
PLACEHOLDER_ID = "(this message)"


def check_bounce(
    path: Annotated[str, typer.Argument(help="The message file, or - for standard input")],
) -> None:
    """Print the bounce or complaint a message reports, as webhook data (JSON)."""
    raw = _read(path)
    found: dict[str, Any] = {"kind": None}
    bounce = parse_bounce(raw)
    if bounce is not None:
        found = {
            "kind": "bounce",
            "format": bounce.kind,
            "raisesEvent": bounce.event_ready,
            "data": bounce.to_event_data(PLACEHOLDER_ID),
        }
    else:
        complaint = parse_complaint(raw)
        if complaint is not None:
            found = {"kind": "complaint", "data": complaint.to_event_data(PLACEHOLDER_ID)}
    print(json.dumps(found, indent=2, ensure_ascii=False, default=str))


def _read(path: str) -> bytes:
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            with Path(path).open("rb") as handle:
                raw = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as error:
        fail(f"cannot read {path}: {error.strerror or error}", 2)
    if len(raw) > MAX_INPUT_BYTES:
        fail(f"{path} is larger than {MAX_INPUT_BYTES} bytes", 2)
    return raw
