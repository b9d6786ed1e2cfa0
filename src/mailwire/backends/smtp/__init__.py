"""Outgoing mail over SMTP (aiosmtplib): one message to one server, errors classified."""
