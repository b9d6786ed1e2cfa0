"""The IMAP backend: one asyncio connection to an IMAP server, and what runs on it.

- `connection`: `ImapConnection`, the read-feed-act-write loop around the
  sans-io core (connect, implicit TLS or STARTTLS, capabilities, LOGIN and
  SASL, commands, IDLE, COMPRESS, LOGOUT), with timeouts;
- `idle`: the IDLE exchange (`IdleSession`);
- `auth`: SASL payloads and the decisions taken around authentication;
- `stream`: the byte stream under it (asyncio streams, TLS upgrade, DEFLATE);
- `transcript`: the per-account protocol log lines, with secrets masked;
- `errors`: what the connection raises.

May import `net`, `protocols`, `domain`, and `config`, `errors`, `logs`, `types`.
"""
