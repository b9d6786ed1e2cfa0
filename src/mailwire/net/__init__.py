"""Network plumbing: asyncio streams, TLS contexts, listeners, task spawning.

Nothing lives here yet. It knows sockets, not protocols.
"""
