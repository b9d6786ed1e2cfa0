"""Network servers for ordinary mail clients: SMTP submission and the IMAP proxy.

Nothing lives here yet. They drive the sans-io cores in `protocols` over `net`
streams and reach accounts through `services`.
"""
