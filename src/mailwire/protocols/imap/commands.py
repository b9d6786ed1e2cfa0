"""Builders for the client commands Mailwire sends (RFC 3501 section 6, RFC 9051, extensions).

A builder (`login`, `uid_fetch`, ...) returns a `Command`, a name and a tuple of
typed arguments (`arguments`); it does not depend on the connection. `encode`
(`encoding`) turns it into bytes for one connection. This module re-exports
both, so callers need only `commands`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from mailwire.protocols.imap.arguments import (
    DEFAULT_SEQUENCE_SET_LENGTH,
    ID_MAX_FIELD,
    ID_MAX_PAIRS,
    ID_MAX_VALUE,
    LITERAL_MINUS_MAX,
    MAX_COMMAND_LINE_LENGTH,
    NIL,
    Arg,
    Atom,
    DateTime,
    Flag,
    Literal,
    Mailbox,
    ParenList,
    Raw,
    SaslResponse,
    SequenceSet,
    String,
    split_sequence_set,
)
from mailwire.protocols.imap.encoding import (
    SASL_CANCEL,
    Command,
    EncodedCommand,
    EncodingContext,
    Tagger,
    done,
    encode,
    sasl_response,
)
from mailwire.protocols.imap.errors import CommandError

__all__ = [
    "DEFAULT_SEQUENCE_SET_LENGTH",
    "LITERAL_MINUS_MAX",
    "MAX_COMMAND_LINE_LENGTH",
    "NIL",
    "SASL_CANCEL",
    "Arg",
    "Atom",
    "Command",
    "DateTime",
    "EncodedCommand",
    "EncodingContext",
    "Flag",
    "Literal",
    "Mailbox",
    "ParenList",
    "Raw",
    "SaslResponse",
    "SequenceSet",
    "String",
    "Tagger",
    "append",
    "authenticate",
    "capability",
    "compress_deflate",
    "create",
    "delete",
    "done",
    "enable",
    "encode",
    "examine",
    "expunge",
    "id_",
    "idle",
    "list_",
    "login",
    "logout",
    "lsub",
    "namespace",
    "noop",
    "rename",
    "sasl_response",
    "select",
    "split_sequence_set",
    "starttls",
    "status",
    "subscribe",
    "uid_copy",
    "uid_expunge",
    "uid_fetch",
    "uid_move",
    "uid_search",
    "uid_store",
    "uid_store_gmail_labels",
    "unselect",
    "unsubscribe",
]

# --------------------------------------------------------------------------- builders
# One per command the engine uses; the RFC section gives the grammar followed.


def _atoms(names: Iterable[str]) -> tuple[Atom, ...]:
    return tuple(Atom(name) for name in names)


def _flags(flags: Iterable[str]) -> ParenList:
    return ParenList(tuple(Flag(flag) for flag in flags))


def capability() -> Command:
    """CAPABILITY (RFC 3501 section 6.1.1)."""
    return Command("CAPABILITY")


def noop() -> Command:
    """NOOP (RFC 3501 section 6.1.2)."""
    return Command("NOOP")


def logout() -> Command:
    """LOGOUT (RFC 3501 section 6.1.3)."""
    return Command("LOGOUT")


def starttls() -> Command:
    """STARTTLS (RFC 3501 section 6.2.1)."""
    return Command("STARTTLS")


def login(user: str, password: str) -> Command:
    """LOGIN (RFC 3501 section 6.2.3); marked sensitive."""
    return Command("LOGIN", (String(user), String(password)), sensitive=True)


def authenticate(mechanism: str, initial_response: bytes | None = None) -> Command:
    """AUTHENTICATE (RFC 3501 section 6.2.2) with an optional initial response (RFC 4959)."""
    args: tuple[Arg | SaslResponse, ...] = (Atom(mechanism),)
    if initial_response is not None:
        args += (SaslResponse(initial_response),)
    return Command("AUTHENTICATE", args, sensitive=True)


def enable(*capabilities: str) -> Command:
    """ENABLE (RFC 5161 section 3.1)."""
    if not capabilities:
        raise CommandError("ENABLE needs at least one capability")
    return Command("ENABLE", _atoms(capabilities))


def id_(params: Mapping[str, str | None] | None = None) -> Command:
    """ID (RFC 2971 section 3.1); `None` sends NIL."""
    if params is None:
        return Command("ID", (NIL,))
    if len(params) > ID_MAX_PAIRS:
        raise CommandError(f"ID allows at most {ID_MAX_PAIRS} fields")
    items: list[Arg] = []
    for key, value in params.items():
        if len(key.encode()) > ID_MAX_FIELD or (
            value is not None and len(value.encode()) > ID_MAX_VALUE
        ):
            raise CommandError(f"ID field or value too long: {key!r}")
        items += [String(key), NIL if value is None else String(value)]
    return Command("ID", (ParenList(tuple(items)) if items else NIL,))


def _select(
    name: str,
    mailbox: str,
    condstore: bool,
    qresync: tuple[int, int, SequenceSet | None] | None,
) -> Command:
    args: tuple[Arg, ...] = (Mailbox(mailbox),)
    if qresync is not None:
        # RFC 7162 section 3.2.5: QRESYNC (uidvalidity modseq [known-uids]).
        uidvalidity, modseq, known = qresync
        params: tuple[Arg, ...] = (uidvalidity, modseq) + ((known,) if known else ())
        args += (ParenList((Atom("QRESYNC"), ParenList(params))),)
    elif condstore:
        args += (ParenList((Atom("CONDSTORE"),)),)
    return Command(name, args)


def select(
    mailbox: str,
    *,
    condstore: bool = False,
    qresync: tuple[int, int, SequenceSet | None] | None = None,
) -> Command:
    """SELECT (RFC 3501 section 6.3.1) with CONDSTORE or QRESYNC (RFC 7162)."""
    return _select("SELECT", mailbox, condstore, qresync)


def examine(
    mailbox: str,
    *,
    condstore: bool = False,
    qresync: tuple[int, int, SequenceSet | None] | None = None,
) -> Command:
    """EXAMINE (RFC 3501 section 6.3.2) with CONDSTORE or QRESYNC (RFC 7162)."""
    return _select("EXAMINE", mailbox, condstore, qresync)


def list_(
    reference: str,
    pattern: str,
    *,
    select_options: Sequence[str] = (),
    return_options: Sequence[str] = (),
    status_items: Sequence[str] = (),
) -> Command:
    """LIST (RFC 3501 section 6.3.8) with LIST-EXTENDED options (RFC 5258).

    `status_items` adds `STATUS (...)` to the return options (RFC 5819).
    """
    args: tuple[Arg, ...] = ()
    if select_options:
        args += (ParenList(_atoms(select_options)),)
    args += (Mailbox(reference), Mailbox(pattern))
    returns: tuple[Arg, ...] = _atoms(return_options)
    if status_items:
        returns += (Atom("STATUS"), ParenList(_atoms(status_items)))
    if returns:
        args += (Atom("RETURN"), ParenList(returns))
    return Command("LIST", args)


def lsub(reference: str, pattern: str) -> Command:
    """LSUB (RFC 3501 section 6.3.9)."""
    return Command("LSUB", (Mailbox(reference), Mailbox(pattern)))


def status(mailbox: str, items: Sequence[str]) -> Command:
    """STATUS (RFC 3501 section 6.3.10)."""
    return Command("STATUS", (Mailbox(mailbox), ParenList(_atoms(items))))


def create(mailbox: str) -> Command:
    """CREATE (RFC 3501 section 6.3.3)."""
    return Command("CREATE", (Mailbox(mailbox),))


def delete(mailbox: str) -> Command:
    """DELETE (RFC 3501 section 6.3.4)."""
    return Command("DELETE", (Mailbox(mailbox),))


def rename(old: str, new: str) -> Command:
    """RENAME (RFC 3501 section 6.3.5)."""
    return Command("RENAME", (Mailbox(old), Mailbox(new)))


def subscribe(mailbox: str) -> Command:
    """SUBSCRIBE (RFC 3501 section 6.3.6)."""
    return Command("SUBSCRIBE", (Mailbox(mailbox),))


def unsubscribe(mailbox: str) -> Command:
    """UNSUBSCRIBE (RFC 3501 section 6.3.7)."""
    return Command("UNSUBSCRIBE", (Mailbox(mailbox),))


def namespace() -> Command:
    """NAMESPACE (RFC 2342 section 5)."""
    return Command("NAMESPACE")


def idle() -> Command:
    """IDLE (RFC 2177 section 3); end it with `done()`."""
    return Command("IDLE")


def compress_deflate() -> Command:
    """COMPRESS DEFLATE (RFC 4978 section 3)."""
    return Command("COMPRESS", (Atom("DEFLATE"),))


def unselect() -> Command:
    """UNSELECT (RFC 3691 section 2): leave the selected state without expunging."""
    return Command("UNSELECT")


def expunge() -> Command:
    """EXPUNGE (RFC 3501 section 6.4.3)."""
    return Command("EXPUNGE")


def uid_expunge(uids: SequenceSet) -> Command:
    """UID EXPUNGE (RFC 4315 section 2.1)."""
    return Command("UID EXPUNGE", (uids,))


def uid_fetch(
    uids: SequenceSet,
    items: Sequence[str],
    *,
    changed_since: int | None = None,
    vanished: bool = False,
) -> Command:
    """UID FETCH (RFC 3501 section 6.4.5); `items` are fetch-att such as `BODY.PEEK[]`.

    `changed_since` adds (CHANGEDSINCE n) and `vanished` adds VANISHED to it
    (RFC 7162 sections 3.1.4.1 and 3.2.6).
    """
    if not items:
        raise CommandError("UID FETCH needs at least one item")
    args: tuple[Arg, ...] = (uids, ParenList(tuple(Raw(item) for item in items)))
    if vanished and changed_since is None:
        raise CommandError("VANISHED needs CHANGEDSINCE (RFC 7162 section 3.2.6)")
    if changed_since is not None:
        modifiers: tuple[Arg, ...] = (Atom("CHANGEDSINCE"), changed_since)
        args += (ParenList(modifiers + ((Atom("VANISHED"),) if vanished else ())),)
    return Command("UID FETCH", args)


def uid_search(
    criteria: Sequence[Arg],
    *,
    return_options: Sequence[str] | None = None,
    charset: str | None = None,
) -> Command:
    """UID SEARCH (RFC 3501 section 6.4.4) with ESEARCH RETURN options (RFC 4731)."""
    if not criteria:
        raise CommandError("UID SEARCH needs at least one criterion")
    args: tuple[Arg, ...] = ()
    if return_options is not None:
        args += (Atom("RETURN"), ParenList(_atoms(return_options)))
    if charset is not None:
        args += (Atom("CHARSET"), Atom(charset))
    return Command("UID SEARCH", args + tuple(criteria))


_STORE_MODES = {"+": "+FLAGS", "-": "-FLAGS", "": "FLAGS"}


def uid_store(
    uids: SequenceSet,
    mode: str,
    flags: Sequence[str],
    *,
    silent: bool = False,
    unchanged_since: int | None = None,
) -> Command:
    """UID STORE (RFC 3501 section 6.4.6); `mode` is "+", "-" or "" (replace).

    `unchanged_since` adds (UNCHANGEDSINCE n), which RFC 7162 section 3.1.3
    places between the set and the flags.
    """
    if mode not in _STORE_MODES:
        raise CommandError(f"unknown STORE mode: {mode!r}")
    args: tuple[Arg, ...] = (uids,)
    if unchanged_since is not None:
        args += (ParenList((Atom("UNCHANGEDSINCE"), unchanged_since)),)
    item = _STORE_MODES[mode] + (".SILENT" if silent else "")
    return Command("UID STORE", (*args, Atom(item), _flags(flags)))


#: Longest Gmail label accepted in one STORE argument; Google documents none, and
#: a label is a folder name, which Mailwire bounds the same way.
MAX_GMAIL_LABEL = 1024


def uid_store_gmail_labels(
    uids: SequenceSet, mode: str, labels: Sequence[str], *, silent: bool = False
) -> Command:
    """UID STORE of X-GM-LABELS (Gmail's IMAP extensions, X-GM-EXT-1); `mode` as `uid_store`.

    Labels are astrings, sent quoted (or as literals), so a label with a space
    or a backslash-prefixed system label such as `\\Important` stays one value.
    """
    if mode not in _STORE_MODES:
        raise CommandError(f"unknown STORE mode: {mode!r}")
    for label in labels:
        if not label or any(char in label for char in "\r\n\x00"):
            raise CommandError("a label cannot be empty or contain CR, LF or NUL")
        if len(label.encode("utf-8")) > MAX_GMAIL_LABEL:
            raise CommandError(f"a label is longer than {MAX_GMAIL_LABEL} octets")
    item = mode + "X-GM-LABELS" + (".SILENT" if silent else "")
    values = ParenList(tuple(String(label) for label in labels))
    return Command("UID STORE", (uids, Atom(item), values))


def uid_copy(uids: SequenceSet, mailbox: str) -> Command:
    """UID COPY (RFC 3501 section 6.4.8)."""
    return Command("UID COPY", (uids, Mailbox(mailbox)))


def uid_move(uids: SequenceSet, mailbox: str) -> Command:
    """UID MOVE (RFC 6851 section 3.1)."""
    return Command("UID MOVE", (uids, Mailbox(mailbox)))


def append(
    mailbox: str,
    message: bytes,
    *,
    flags: Sequence[str] | None = None,
    internal_date: datetime | None = None,
) -> Command:
    """APPEND (RFC 3501 section 6.3.11); the message is always a literal."""
    args: tuple[Arg, ...] = (Mailbox(mailbox),)
    if flags is not None:
        args += (_flags(flags),)
    if internal_date is not None:
        args += (DateTime(internal_date),)
    return Command("APPEND", (*args, Literal(message)))
