"""Bodies of the template routes (`/v1/templates...`), as in the reference.

Content strings are trimmed like the reference trims them (subject, text,
html), except `previewText`, which the reference keeps as sent. A missing or
null (or empty) `account` makes a global template. Fields absent from a stored
template are left out of the answers, as the reference leaves them out.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from mailwire.api.models.common import RequestModel, ResponseModel, iso_time
from mailwire.domain.accounts import MAX_ACCOUNT_ID_LENGTH
from mailwire.domain.templates import (
    MAX_BODY_LENGTH,
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PREVIEW_TEXT_LENGTH,
    MAX_SUBJECT_LENGTH,
    MessageTemplate,
    TemplateContent,
    TemplateFormat,
)

#: Body limit of the create and update routes: the content fields at their longest,
#: at up to 4 bytes of UTF-8 per character, plus room for the rest.
TEMPLATE_BODY_LIMIT = (
    4 * (2 * MAX_BODY_LENGTH + MAX_SUBJECT_LENGTH + MAX_PREVIEW_TEXT_LENGTH) + 64 * 1024
)

Untrimmed = Annotated[str, StringConstraints(strip_whitespace=False)]


class ContentIn(RequestModel):
    subject: str | None = Field(None, max_length=MAX_SUBJECT_LENGTH, description="Subject line")
    text: str | None = Field(None, max_length=MAX_BODY_LENGTH, description="Plain text body")
    html: str | None = Field(None, max_length=MAX_BODY_LENGTH, description="HTML body")
    previewText: Untrimmed | None = Field(
        None,
        max_length=MAX_PREVIEW_TEXT_LENGTH,
        description="Preview text that email clients show after the subject",
    )

    def to_content(self) -> TemplateContent:
        return TemplateContent(
            subject=self.subject,
            text=self.text,
            html=self.html,
            preview_text=self.previewText,
        )


class CreateTemplate(RequestModel):
    account: str | None = Field(
        None,
        max_length=MAX_ACCOUNT_ID_LENGTH,
        description="The account the template belongs to; null for a global template",
    )
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION_LENGTH)
    format: TemplateFormat = Field(
        TemplateFormat.HTML, description='Markup of the html field ("html" or "markdown")'
    )
    content: ContentIn

    def to_fields(self) -> dict[str, Any]:
        return {
            "account": self.account or None,
            "name": self.name,
            "description": self.description or None,
            "format": self.format,
            "content": self.content.to_content(),
        }


class UpdateTemplate(RequestModel):
    name: str | None = Field(None, min_length=1, max_length=MAX_NAME_LENGTH)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION_LENGTH)
    format: TemplateFormat | None = None
    content: ContentIn | None = Field(
        None, description="Replaces the stored content whole: fields left out are removed"
    )

    def to_fields(self) -> dict[str, Any]:
        """The fields the client sent (null name, format or content: unchanged)."""
        given = self.model_fields_set
        fields: dict[str, Any] = {}
        if self.name is not None:
            fields["name"] = self.name
        if "description" in given:
            fields["description"] = self.description or None
        if self.format is not None:
            fields["format"] = self.format
        if self.content is not None:
            fields["content"] = self.content.to_content()
        return fields


class ContentOut(ResponseModel):
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    previewText: str | None = None


class TemplateSummary(ResponseModel):
    id: str
    name: str
    description: str | None = None
    format: TemplateFormat
    created: str
    updated: str

    @classmethod
    def of(cls, template: MessageTemplate) -> TemplateSummary:
        return cls(**_common(template))


class TemplateDetails(ResponseModel):
    account: str | None
    id: str
    name: str
    description: str | None = None
    format: TemplateFormat
    created: str
    updated: str
    content: ContentOut

    @classmethod
    def of(cls, template: MessageTemplate) -> TemplateDetails:
        return cls(
            account=template.account,
            **_common(template),
            content=ContentOut(**template.content.to_doc()),
        )


class TemplatesResponse(ResponseModel):
    account: str | None
    total: int
    page: int
    pages: int
    templates: list[TemplateSummary]


class _Addressed(ResponseModel):
    """The template a change was made to: its owner (null: global) and id."""

    account: str | None
    id: str


class CreateTemplateResponse(_Addressed):
    created: bool


class UpdateTemplateResponse(_Addressed):
    updated: bool


class DeleteTemplateResponse(_Addressed):
    deleted: bool


class FlushTemplatesResponse(ResponseModel):
    flushed: bool
    account: str


def _common(template: MessageTemplate) -> dict[str, Any]:
    """Summary fields; `description` only when the template has one (it stays unset,
    so routes that answer with `exclude_unset` leave it out)."""
    fields: dict[str, Any] = {
        "id": template.id,
        "name": template.name,
        "format": template.format,
        "created": iso_time(template.created_at),
        "updated": iso_time(template.updated_at),
    }
    if template.description is not None:
        fields["description"] = template.description
    return fields
