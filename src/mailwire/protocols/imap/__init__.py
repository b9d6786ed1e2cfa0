"""IMAP protocol core, sans-io (RFC 3501 IMAP4rev1 and RFC 9051 IMAP4rev2).

- `commands`: turns commands and their arguments into bytes (atoms, quoted
  strings, literals, LITERAL+/LITERAL-, UTF-8 and modified UTF-7 mailbox names);
- `utf7`: modified UTF-7 for mailbox names (RFC 3501 section 5.1.3);
- `parser`: turns the server's bytes into frozen response events, with named limits;
- `errors`: the protocol error types.

Standard library only: no sockets, no asyncio. The I/O loop lives in `backends.imap`.
"""
