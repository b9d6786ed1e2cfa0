"""Bounces without a delivery-status part, recognised by the text of their notice.

Theory of operation. Many mail systems still return mail with a plain-text
notice instead of an RFC 3464 report. Each such format has a fixed opening
phrase and a fixed way of listing the failed addresses, so each gets one small
recogniser that looks for its phrase and reads its list. `recognise` tries
them in this order and returns the first that finds at least one recipient:

1. qmail: "This is the qmail-send program at HOST", then `<address>:` lines,
   each followed by the remote server's answer up to a blank line;
2. Exim: "This message was created automatically by mail delivery software",
   then after "...failed:" (or "...not yet been delivered is:" in a delay
   warning) an indented address per recipient with its SMTP error below it;
3. Microsoft Exchange / Outlook text NDRs: "Delivery has failed to these
   recipients or groups:" (with "Diagnostic information for administrators")
   or the older "The following recipient(s) cannot be reached:";
4. Postfix without a DSN part: "This is the mail system at host HOST" (or
   "the Postfix program"), then `<address>: reason` with indented continuations;
5. generic: a sender whose local part is MAILER-DAEMON or postmaster and a
   subject such as "Undelivered Mail Returned to Sender", "Delivery Status
   Notification (Failure)", "Mail delivery failed", "failure notice" or
   "Undeliverable:"; the first address in the notice that is not its own
   (its From and To), the first SMTP reply and enhanced status code (RFC
   3463) in it.

The four format recognisers run only for mail that a mail system sent: a
system sender (as for the generic one) or a null reverse path (`Return-Path:
<>`, RFC 5321 section 4.5.5). A person quoting a bounce is not a bounce.

The text given is the notice only: `bounces` splits off the copy of the
original message first. Nothing here raises on any input. Only lines of at
most `MAX_HEAD_LINE_CHARS` can start a recipient's block, which bounds the
work of the per-line patterns; the patterns run over the whole text are
written so that no position is scanned more than a fixed number of times.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

#: Recipients kept per report: RFC 5321 section 4.5.3.1.8 makes 100 the number of
#: recipients every server takes in one transaction, so one bounce rarely names more.
MAX_RECIPIENTS: Final = 100
#: A head line (a recipient's first line) is at most this long: RFC 5321 section
#: 4.5.3.1.3 bounds a path at 256 octets, and the notices add a name or a date to it.
#: Longer lines are never heads, which also bounds the cost of matching them.
MAX_HEAD_LINE_CHARS: Final = 320

#: Local parts of the addresses that mail systems send notices from.
SYSTEM_SENDERS: Final = re.compile(
    r"(?:mailer-?daemon|mail-daemon|postmaster|microsoftexchange[0-9a-f]*)", re.IGNORECASE
)

# RFC 3463 section 2: class "." subject "." detail, 1-3 digits each. Not part of a
# longer dotted number (an IP address, a version), hence the look-arounds.
_STATUS: Final = re.compile(r"(?<![\w.])([245]\.\d{1,3}\.\d{1,3})(?!\w|\.\d)")
_SMTP_REPLY: Final = re.compile(r"(?<![\w.\[=])([245]\d\d)(?:[ :-]|$)")
#: Starts only where a token starts (the look-behind), so a long run of address
#: characters costs one scan, not one per position.
_ADDRESS: Final = re.compile(
    r"(?<![^\s<>()\[\]\"',;:@])[^\s<>()\[\]\"',;:@]++@[^\s<>()\[\]\"',;:@]+\.[^\s<>()\[\]\"',;:@]+"
)
_BLANKS: Final = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Finding:
    """One recipient a text notice names, with what the notice says about it."""

    recipient: str
    action: str = "failed"
    status: str | None = None
    #: The remote server's reply or the notice's reason, whitespace collapsed.
    message: str | None = None
    #: The server that refused the message, when the notice names it.
    mta: str | None = None


@dataclass(frozen=True, slots=True)
class TextBounce:
    """What a recogniser read: its name, the recipients, per-message details."""

    kind: str
    findings: tuple[Finding, ...]
    reporting_mta: str | None = None
    queue_id: str | None = None


@dataclass(frozen=True, slots=True)
class Clues:
    """The parts of a message the recognisers look at."""

    #: The notice's From address, lower-cased.
    sender: str
    subject: str
    #: The notice's text, without the copy of the original message.
    text: str
    null_return_path: bool = False
    #: Addresses that are not the failed recipient (the notice's own From and To).
    own: frozenset[str] = field(default_factory=frozenset)

    @property
    def system_sender(self) -> bool:
        local = self.sender.rpartition("@")[0] or self.sender
        return SYSTEM_SENDERS.fullmatch(local) is not None


# ---------------------------------------------------------------- shared helpers


def enhanced_status(text: str | None) -> str | None:
    """The first RFC 3463 status code (`5.1.1`) in `text`, or None."""
    found = _STATUS.search(text) if text else None
    return found[1] if found else None


def smtp_reply(text: str) -> str | None:
    """`text` from its first SMTP reply code on (RFC 5321 section 4.2), or None."""
    found = _SMTP_REPLY.search(text)
    return text[found.start() :].strip() or None if found else None


def squeeze(text: str) -> str:
    """`text` with every run of whitespace (folding included) made one space."""
    return _BLANKS.sub(" ", text).strip()


def clean_address(value: str) -> str:
    """An address without angle brackets, quotes or surrounding blanks."""
    return value.strip().strip("<>").strip().strip('"').strip()


# ---------------------------------------------------------------- recognisers


def _blocks(lines: list[str], head: re.Pattern[str]) -> list[tuple[re.Match[str], list[str]]]:
    """Each line matching `head`, with the lines after it up to a blank line or the next head."""
    found: list[tuple[re.Match[str], list[str]]] = []
    current: list[str] | None = None
    for line in lines:
        match = head.match(line) if len(line) <= MAX_HEAD_LINE_CHARS else None
        if match is not None:
            if len(found) >= MAX_RECIPIENTS:
                break
            current = []
            found.append((match, current))
        elif not line.strip():
            current = None
        elif current is not None:
            current.append(line)
    return found


def _host(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.search(text)
    return found[1].rstrip(".") if found else None


_QMAIL: Final = re.compile(r"This is the qmail-send program at (\S+?)\.?\s", re.IGNORECASE)
_QMAIL_HEAD: Final = re.compile(r"<([^<>\s]+@[^<>\s]+)>:\s*$")
_QMAIL_MTA: Final = re.compile(r"(?m)^(\S+) does not like recipient|Connected to (\S+) but")
_QMAIL_REPLY: Final = re.compile(r"Remote host said:\s*(.*)", re.IGNORECASE | re.DOTALL)


def qmail(text: str) -> TextBounce | None:
    """qmail-send's notice: `<address>:` then the reason, up to a blank line."""
    intro = _QMAIL.search(text)
    if intro is None:
        return None
    findings = []
    for head, body in _blocks(text[intro.end() :].splitlines(), _QMAIL_HEAD):
        reason = squeeze(" ".join(body))
        said = _QMAIL_REPLY.search(reason)
        mta = _QMAIL_MTA.search("\n".join(body))
        findings.append(
            Finding(
                clean_address(head[1]),
                status=enhanced_status(reason),
                message=squeeze(said[1].split(" Giving up on ")[0]) if said else reason or None,
                mta=(mta[1] or mta[2]) if mta else None,
            )
        )
    return TextBounce("qmail", tuple(findings), reporting_mta=intro[1])


_EXIM: Final = re.compile(r"This message was created automatically by mail delivery software")
_EXIM_LIST: Final = re.compile(r"(?im)(?:failed|delivered (?:is|are)):[ \t]*$")
_EXIM_HEAD: Final = re.compile(r" {1,3}<?([^\s<>@]+@[^\s<>]+?)>?:?\s*$")
_EXIM_HOST: Final = re.compile(r"\bhost (\S+) \[")
_EXIM_ID: Final = re.compile(r"The message identifier is:\s+(\S+)")


def exim(text: str) -> TextBounce | None:
    """Exim's notice: after "...failed:", an indented address with its error below it."""
    if _EXIM.search(text) is None:
        return None
    listing = _EXIM_LIST.search(text)
    if listing is None:
        return None
    action = "delayed" if "has not yet been delivered" in text else "failed"
    findings = []
    for head, body in _blocks(text[listing.end() :].splitlines(), _EXIM_HEAD):
        reason = squeeze(" ".join(body))
        findings.append(
            Finding(
                clean_address(head[1]),
                action=action,
                status=enhanced_status(reason),
                message=smtp_reply(reason) or reason or None,
                mta=_host(_EXIM_HOST, reason),
            )
        )
    queue = _EXIM_ID.search(text)
    return TextBounce("exim", tuple(findings), queue_id=queue[1] if queue else None)


_EXCHANGE: Final = re.compile(
    r"(?im)^[ \t]*(?:Delivery has failed to these recipients or groups:"
    r"|The following recipient\(s\) cannot be reached:)[ \t]*$"
)
_EXCHANGE_DIAGNOSTIC: Final = re.compile(r"(?im)^[ \t]*Diagnostic information for administrators:")
_EXCHANGE_SERVER: Final = re.compile(r"Generating server:\s*(\S+)", re.IGNORECASE)
#: A recipient line: the address alone, as "Name (address)" or "address<mailto:address>".
_EXCHANGE_RECIPIENT: Final = re.compile(
    r"[ \t]*(?:[^@\n]*?[\s(])?<?([^\s<>()@]+@[^\s<>()]+?)>?(?:<mailto:[^>\s]*>|\))?"
    r"(?: on .*)?[ \t]*$"
)
_EXCHANGE_RETURNED: Final = re.compile(r"Remote Server returned '(.*)'", re.IGNORECASE)
_EXCHANGE_LEGACY_HOST: Final = re.compile(r"<([^\s<>]+) #[245]\.\d{1,3}\.\d{1,3}>")


def exchange(text: str) -> TextBounce | None:
    """Exchange and Outlook text NDRs, current ("Delivery has failed...") and legacy."""
    start = _EXCHANGE.search(text)
    if start is None:
        return None
    diagnostic = _EXCHANGE_DIAGNOSTIC.search(text, start.end())
    listed = text[start.end() : diagnostic.start() if diagnostic else len(text)]
    details = text[diagnostic.end() :] if diagnostic else ""
    server = _host(_EXCHANGE_SERVER, details)
    answers = _exchange_answers(details)
    findings = []
    for head, body in _blocks(listed.splitlines(), _EXCHANGE_RECIPIENT):
        address = clean_address(head[1])
        reason = answers.get(address.lower()) or squeeze(" ".join(body))
        legacy = _EXCHANGE_LEGACY_HOST.search(reason)
        if legacy is not None:  # "<gateway #5.1.1>": the status and who gave it
            reason = squeeze(reason[: legacy.start()] + reason[legacy.end() :])
        findings.append(
            Finding(
                address,
                status=enhanced_status(legacy[0] if legacy else reason),
                message=reason or None,
                mta=legacy[1] if legacy else server,
            )
        )
    return TextBounce("exchange", tuple(findings), reporting_mta=server)


def _exchange_answers(details: str) -> dict[str, str]:
    """Lower-cased address -> the server's answer printed under it for administrators."""
    answers: dict[str, str] = {}
    lines = [line.strip() for line in details.splitlines()]
    for index, line in enumerate(lines):
        if "@" not in line or len(line) > MAX_HEAD_LINE_CHARS or line.lower() in answers:
            continue
        answer = next((later for later in lines[index + 1 : index + 4] if later), "")
        returned = _EXCHANGE_RETURNED.search(answer)
        text = returned[1].strip("<>") if returned else answer.strip("#")
        if text.strip():
            answers[line.lower()] = squeeze(text)
    return answers


_POSTFIX: Final = re.compile(
    r"This is the (?:mail system|Postfix program) at host (\S+?)\.?\s", re.IGNORECASE
)
_POSTFIX_HEAD: Final = re.compile(r"<([^<>\s]+)>(?: \(expanded from <[^<>\s]*>\))?: (.*)$")
_POSTFIX_HOST: Final = re.compile(r"\bhost (\S+?)\[")
_POSTFIX_SAID: Final = re.compile(r"\bsaid: ")
_POSTFIX_STAGE: Final = re.compile(r" \(in reply to [^()]*\)$")


def postfix(text: str) -> TextBounce | None:
    """Postfix's notice without a DSN part: `<address>: reason`, continued by indented lines."""
    intro = _POSTFIX.search(text)
    if intro is None:
        return None
    action = "delayed" if "THIS IS A WARNING ONLY" in text else "failed"
    findings = []
    for head, body in _blocks(text[intro.end() :].splitlines(), _POSTFIX_HEAD):
        reason = squeeze(" ".join([head[2], *body]))
        said = _POSTFIX_SAID.search(reason)
        answer = _POSTFIX_STAGE.sub("", reason[said.end() :]) if said else reason
        findings.append(
            Finding(
                clean_address(head[1]),
                action=action,
                status=enhanced_status(reason),
                message=answer or None,
                mta=_host(_POSTFIX_HOST, reason),
            )
        )
    return TextBounce("postfix", tuple(findings), reporting_mta=intro[1])


#: Subjects of notices from mail systems (case-insensitive, anywhere in the subject).
_GENERIC_SUBJECT: Final = re.compile(
    r"undelivered mail|undeliverable|returned mail|"
    r"delivery status notification \((?:failure|delay)\)|mail delivery failed|"
    r"failure notice|delivery failure|non-?delivery|could not be delivered",
    re.IGNORECASE,
)


def generic(clues: Clues) -> TextBounce | None:
    """Any other notice from a mail system, read for its first foreign address and reply."""
    if not clues.system_sender or _GENERIC_SUBJECT.search(clues.subject) is None:
        return None
    own = clues.own | {clues.sender}
    recipient = next(
        (
            address
            for found in _ADDRESS.finditer(clues.text)
            if (address := clean_address(found[0]).rstrip(".")).lower() not in own
        ),
        None,
    )
    if recipient is None:
        return None
    reply = next(filter(None, map(smtp_reply, clues.text.splitlines())), None)
    action = "delayed" if "delay" in clues.subject.lower() else "failed"
    status = enhanced_status(reply) or enhanced_status(clues.text)
    finding = Finding(recipient, action=action, status=status, message=reply)
    return TextBounce("generic", (finding,))


#: The recognisers that need a format's opening phrase, in the order they are tried.
RECOGNISERS: Final[tuple[Callable[[str], TextBounce | None], ...]] = (
    qmail,
    exim,
    exchange,
    postfix,
)


def recognise(clues: Clues) -> TextBounce | None:
    """The first recogniser's reading that names a recipient, or None (see module docstring)."""
    if not (clues.system_sender or clues.null_return_path):
        return None
    for recogniser in RECOGNISERS:
        found = recogniser(clues.text)
        if found is not None and found.findings:
            return found
    found = generic(clues)
    return found if found is not None and found.findings else None
