"""Client TLS contexts for outgoing connections (IMAP, and later SMTP).

Verification is on unless the caller opts out explicitly: the certificate
chain must reach a trusted anchor (the system store, or `ca_file` alone when
given) and must name the host. `verify=False` mirrors an account's
`tls.rejectUnauthorized: false` for servers with self-signed certificates; it
still encrypts, but proves nothing about the peer. TLS 1.0 and 1.1 are refused
either way (RFC 8996 deprecates them): an account's `tls.minVersion` can raise
the floor to TLS 1.3, never lower it.
"""

from __future__ import annotations

import functools
import ssl
from pathlib import Path

#: The oldest protocol version offered (RFC 8996: TLS 1.0 and 1.1 are deprecated).
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
#: The names `tls.minVersion` takes (as EmailEngine's, Node.js's spelling).
VERSION_NAMES = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def minimum_version(name: str | None) -> ssl.TLSVersion:
    """The floor for an account's `tls.minVersion`: never below `MINIMUM_VERSION`."""
    wanted = VERSION_NAMES.get(name or "", MINIMUM_VERSION)
    return max(wanted, MINIMUM_VERSION)


@functools.lru_cache(maxsize=16)
def shared_client_context(*, verify: bool = True, min_version: str | None = None) -> ssl.SSLContext:
    """`client_context` with the system trust store, built once per setting and shared.

    Loading the system store costs tens of milliseconds (it was a third of a
    send's CPU when built per delivery); a client context is not changed by the
    connections that use it, so one per (verify, min_version) serves them all.
    New system certificates are seen after a restart.
    """
    return client_context(verify=verify, min_version=min_version)


def client_context(
    *,
    verify: bool = True,
    ca_file: str | Path | None = None,
    min_version: str | None = None,
) -> ssl.SSLContext:
    """Build a client context: verifying by default, or not at all with `verify=False`.

    `ca_file` (PEM) replaces the system trust store as the set of anchors; it
    is ignored when `verify` is False. `min_version` is a `tls.minVersion`
    name (see `minimum_version`).
    """
    if verify:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file is not None else None
        )
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        # The order matters: check_hostname must be off before CERT_NONE is allowed.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = minimum_version(min_version)
    return context
