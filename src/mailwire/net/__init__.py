"""Network plumbing: listening sockets (`listeners`) and client TLS contexts (`tls`).

It knows sockets and TLS, not protocols; asyncio stream helpers and task
spawning will join it.
"""
