"""Mail providers behind one interface: IMAP/SMTP, Gmail API, Microsoft Graph.

Nothing lives here yet. Backends speak to mail servers through `net` and the
sans-io cores in `protocols`; they never touch the store.
"""
