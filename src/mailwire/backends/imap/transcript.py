"""Lines of the per-account protocol log, built from commands and events.

The log is written from the typed command and the parsed events, never by
cutting up the bytes on the wire. Credentials never appear: the arguments of
a sensitive command (LOGIN, AUTHENTICATE) and every SASL answer are replaced
by "***" (the user name of LOGIN is kept, it helps support). Literal contents
are replaced by their size, so message bodies stay out of the log. Every line
still goes through `mask_text` as a second line of defence.
"""

from __future__ import annotations

from collections.abc import Callable

from mailwire.logs import mask_text
from mailwire.protocols.imap.commands import (
    Arg,
    Atom,
    Command,
    DateTime,
    Flag,
    Literal,
    Mailbox,
    Raw,
    SaslResponse,
    SequenceSet,
    String,
)
from mailwire.protocols.imap.responses import (
    Capability,
    Continuation,
    Enabled,
    Event,
    Exists,
    Expunge,
    Fetch,
    Greeting,
    Recent,
    ResponseCode,
    Tagged,
    UntaggedStatus,
)

#: on_line(src, text): src is "c" (client) or "s" (server).
LineHook = Callable[[str, str], None]

MASK = "***"
#: Longest text kept from a string argument or a response text.
MAX_TEXT = 200


def _short(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "..."


def _string(data: bytes) -> str:
    if b"\r" in data or b"\n" in data or any(byte >= 0x80 for byte in data):
        return f"{{{len(data)} octets}}"
    return '"' + _short(data.decode("ascii")) + '"'


def _arg(arg: Arg | SaslResponse) -> str:  # noqa: PLR0911 - one return per argument type
    if isinstance(arg, SaslResponse):
        return MASK
    if isinstance(arg, int):
        return str(arg)
    if isinstance(arg, Atom | Flag | Raw):
        return arg.value
    if isinstance(arg, Literal):
        return f"{{{len(arg.data)} octets}}"
    if isinstance(arg, String):
        return _string(arg.data)
    if isinstance(arg, Mailbox):
        return _string(arg.name.encode("utf-8"))
    if isinstance(arg, SequenceSet | DateTime):
        return _short(arg.to_bytes().decode("ascii"))
    return "(" + " ".join(_arg(item) for item in arg.items) + ")"


def render_command(tag: str, command: Command) -> str:
    """One log line for `command`; see the module docstring for what is hidden."""
    args = command.args
    if command.sensitive:
        if command.name == "LOGIN" and args:
            shown = [_arg(args[0]), MASK]
        else:
            # AUTHENTICATE: the mechanism name is not secret, anything after it is.
            shown = [_arg(args[0]), MASK] if len(args) > 1 else [_arg(a) for a in args[:1]]
    else:
        shown = [_arg(arg) for arg in args]
    return mask_text(" ".join([tag, command.name, *shown]))


def _code(code: ResponseCode | None) -> str:
    if code is None:
        return ""
    if code.items:
        return f"[{code.name} {' '.join(code.items)}] "
    if code.number is not None:
        return f"[{code.name} {code.number}] "
    return f"[{code.name}] "


def render_event(event: Event) -> str:
    """One log line for a server response; FETCH data is summarised by size."""
    match event:
        case Greeting() | UntaggedStatus():
            line = f"* {event.status} {_code(event.code)}{event.text}"
        case Tagged():
            line = f"{event.tag} {event.status} {_code(event.code)}{event.text}"
        case Continuation():
            line = f"+ {event.text}"
        case Capability() | Enabled():
            name = "CAPABILITY" if isinstance(event, Capability) else "ENABLED"
            line = f"* {name} {' '.join(event.capabilities)}"
        case Exists() | Recent():
            line = f"* {event.count} {type(event).__name__.upper()}"
        case Expunge():
            line = f"* {event.seq} EXPUNGE"
        case Fetch():
            sizes = " ".join(
                f"{s.kind}[{s.section}] {{{len(s.data or b'')} octets}}" for s in event.sections
            )
            line = f"* {event.seq} FETCH (UID {event.uid} FLAGS {event.flags} {sizes})"
        case _:
            line = f"* {type(event).__name__}"
    return mask_text(_short(line))
