"""Mailwire: a self-hosted email integration platform.

One REST API and one stream of webhooks for many mailboxes (IMAP/SMTP, Gmail API,
Microsoft Graph). The package is layered; see each subpackage's docstring for
its job and what it may import (ARCHITECTURE.md holds the whole picture).
"""

__version__ = "0.1.0"
