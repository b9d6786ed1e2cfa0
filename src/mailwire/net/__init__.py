"""Network plumbing: listening sockets (`listeners`), client TLS contexts (`tls`),
and the egress guard (`egress`) every outbound request made on a user's behalf
passes: scheme and address checks, DNS resolved once, the connection pinned.

It knows sockets, TLS and HTTP clients, not Mailwire's protocols.
"""
