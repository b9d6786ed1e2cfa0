"""Errors raised by the test rig when a real peer cannot be started or stopped.

They join Mailwire's one exception tree so a test failure reads the same way as
any other Mailwire error, with the peer's own diagnostics in the message.
"""

from __future__ import annotations

from mailwire.errors import MailwireError


class PeerError(MailwireError):
    """A test peer (Dovecot, the SMTP sink) misbehaved."""

    code = "PeerError"


class PeerStartError(PeerError):
    """A test peer did not come up; the message carries the tail of its log."""

    code = "PeerStartError"


class PortInUseError(PeerStartError):
    """A peer could not bind a port that was free when probed; retry with new ports."""

    code = "PortInUse"


class PeerStopError(PeerError):
    """A test peer did not exit within its deadline, even after SIGKILL."""

    code = "PeerStopError"


class PeerTimeoutError(PeerError):
    """A test peer did not reach the awaited state (e.g. N messages received) in time."""

    code = "PeerTimeout"
