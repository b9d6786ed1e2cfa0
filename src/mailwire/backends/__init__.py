"""Mail providers behind one interface: IMAP/SMTP, Gmail API, Microsoft Graph.

`backends.imap` holds the asyncio IMAP client connection, driving the sans-io
core in `protocols.imap` over `net` (TLS contexts). Gmail and Graph come later.
Backends speak to mail servers and never touch the store.
"""
