"""Admin web UI (Jinja2 templates, sessions, CSRF, two-factor login).

Nothing lives here yet. Like `api`, it calls `services` and never the store directly.
"""
