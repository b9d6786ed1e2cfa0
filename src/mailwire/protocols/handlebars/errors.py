"""Errors of the Handlebars renderer.

A template is user input, so every refusal is an `InputError`: the API answers
it with a 400. Compiling raises only `TemplateSyntaxError` (with the line and
column of the offending tag); rendering raises only `TemplateRenderError`.
A named limit that is exceeded raises the `...LimitError` subclass of either,
whose `limit` attribute names the limit.
"""

from __future__ import annotations

from mailwire.errors import InputError


class TemplateError(InputError):
    """Root of the errors raised by `mailwire.protocols.handlebars`."""

    code = "TemplateError"


class TemplateSyntaxError(TemplateError):
    """The source is not a template this renderer accepts; `line`/`column` are 1-based."""

    code = "TemplateSyntaxError"

    def __init__(self, message: str, line: int, column: int) -> None:
        self.problem = message
        self.line = line
        self.column = column
        super().__init__(f"line {line}, column {column}: {message}", key="template")


class TemplateSourceLimitError(TemplateSyntaxError):
    """The source exceeds a compile-time limit (size or nesting depth)."""

    code = "TemplateLimitExceeded"

    def __init__(self, limit: str, message: str, line: int, column: int) -> None:
        self.limit = limit
        super().__init__(message, line, column)


class TemplateRenderError(TemplateError):
    """Rendering failed: a helper raised, or a value cannot be rendered."""

    code = "TemplateRenderError"


class TemplateRenderLimitError(TemplateRenderError):
    """Rendering exceeded a limit (output size or work done); `limit` names it."""

    code = "TemplateLimitExceeded"

    def __init__(self, limit: str, message: str) -> None:
        self.limit = limit
        super().__init__(message, key="template")
