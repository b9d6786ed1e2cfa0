"""Structured JSON logs that never carry a secret.

`configure_logging` once at start, `get_logger(__name__)` in each module, and
`log_context(...)` to bind ids (request, account, connection) for a task. See
`masking` for what is hidden and `output` for the line format.
"""

from mailwire.logs.masking import mask_text, mask_value
from mailwire.logs.output import StructLogger, configure_logging, get_logger, log_context

__all__ = [
    "StructLogger",
    "configure_logging",
    "get_logger",
    "log_context",
    "mask_text",
    "mask_value",
]
