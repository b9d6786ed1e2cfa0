"""Generated mailboxes for the IMAP benchmarks: varied, repeatable, written straight to Maildir.

Messages are 2-50 KB, from a few dozen senders, one in five multipart with a
base64 attachment, two in three already seen; a fixed seed makes every run
index the same bytes.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from mailwire.testing.dovecot import Dovecot

#: The newest message's date; the others go back one minute each, so all are in the past
#: (an account added now indexes them without announcing any, as a real mailbox would).
LAST_DATE = datetime(2026, 11, 1, tzinfo=UTC)


def message(rng: random.Random, n: int) -> bytes:
    size = rng.randint(2_000, 50_000)
    sender = f"Sender {n % 97} <sender{n % 97}@example.{('com', 'org', 'net')[n % 3]}>"
    headers = (
        f"From: {sender}\r\nTo: Alice <alice@example.com>, team{n % 13}@example.com\r\n"
        f"Subject: Report {n} about {rng.choice(['budget', 'launch', 'hiring', 'support'])}\r\n"
        f"Date: Tue, 3 Nov 2026 10:{n % 60:02d}:00 +0000\r\n"
        f"Message-ID: <m{n}@example.com>\r\n"
    )
    if n % 5:
        body = ("Lorem ipsum dolor sit amet. " * (size // 28 + 1))[:size]
        return (headers + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()
    attachment = ("QUJDRA==" * (size // 8 + 1))[:size]
    return (
        headers
        + 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + "--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        + '--b\r\nContent-Type: application/pdf; name="r.pdf"\r\n'
        + "Content-Transfer-Encoding: base64\r\n\r\n"
        + attachment
        + "\r\n--b--\r\n"
    ).encode()


def fill(dovecot: Dovecot, user: str, count: int, *, seed: int = 20_000) -> None:
    """Write `count` messages into `user`'s INBOX, one minute apart up to `LAST_DATE`."""
    rng = random.Random(seed)
    for n in range(count):
        flags = "S" if n % 3 else ""
        dovecot.deliver(
            user,
            message(rng, n),
            flags=flags,
            internaldate=LAST_DATE - timedelta(minutes=count - n),
        )
