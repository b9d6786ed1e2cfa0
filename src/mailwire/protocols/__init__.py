"""Sans-io protocol cores (IMAP client and server roles, SMTP, MIME helpers).

Bytes in, events out, bytes to send back; no sockets, no asyncio, standard library
only. Nothing lives here yet.
"""
