"""A corpus of real-world-shaped messages, built deterministically, with the facts to expect.

Each `CorpusMessage` is raw RFC 5322 bytes (CRLF line endings, so Dovecot
stores it as sent) plus what a reader must find in it: subject, sender, the
decoded plain and HTML text with their IMAP part numbers, and every
attachment's part number, content type, file name, content id and decoded
content. The bytes are written out by hand here (not by
`mailwire.protocols.mime.build`) so that they test the parser independently,
and they cover the shapes mail clients produce: multipart/alternative,
nested multipart/mixed, multipart/related with cid images, forwarded
messages, RFC 2231 and encoded-word file names, 7bit/8bit/quoted-printable/
base64, ISO-8859-x, Windows-125x and ISO-2022-JP text, and damage seen in
the wild: unclosed and wrong boundaries, bad base64 and quoted-printable,
missing and lying charsets, raw 8-bit headers, headers without a body, NUL
bytes, huge headers.

`storable` is False for the messages Dovecot cannot take through APPEND
(NUL bytes need the BINARY extension, RFC 3516).
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from urllib.parse import quote

CRLF = b"\r\n"


@dataclass(frozen=True)
class ExpectedAttachment:
    """An attachment as a reader must report and serve it."""

    part: str
    content_type: str
    content: bytes
    filename: str | None = None
    content_id: str | None = None
    disposition: str | None = None


@dataclass(frozen=True)
class CorpusMessage:
    """One corpus message and the facts a test checks against."""

    name: str
    raw: bytes
    subject: str | None
    from_: tuple[str | None, str] | None
    plain: str | None = None
    html: str | None = None
    plain_part: str | None = None
    html_part: str | None = None
    attachments: tuple[ExpectedAttachment, ...] = ()
    broken: bool = False
    storable: bool = True
    notes: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _join(*lines: str | bytes) -> bytes:
    return CRLF.join(line.encode("utf-8") if isinstance(line, str) else line for line in lines)


def _b64_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return CRLF.join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def _head(
    subject: str | bytes, *extra: str | bytes, sender: str = "Ann Example <ann@example.com>"
) -> bytes:
    return _join(
        f"From: {sender}",
        "To: Bob Example <bob@example.org>",
        b"Subject: " + (subject.encode() if isinstance(subject, str) else subject),
        "Date: Tue, 03 Mar 2026 10:15:00 +0100",
        "Message-ID: <corpus-" + str(abs(hash_subject(subject))) + "@example.com>",
        "MIME-Version: 1.0",
        *extra,
    )


def hash_subject(subject: str | bytes) -> int:
    """A stable number from the subject, for Message-IDs (Python's hash() is salted)."""
    data = subject.encode() if isinstance(subject, str) else subject
    value = 0
    for byte in data:
        value = (value * 131 + byte) % 1_000_000_007
    return value


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n" + bytes(range(256))
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 40
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00,"
    b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
ZIP = b"PK\x05\x06" + b"\x00" * 18
ANN = ("Ann Example", "ann@example.com")


def _qp_bytes(data: bytes) -> bytes:
    """Quoted-printable for one short line: every non-ASCII octet and "=" escaped."""
    return b"".join(bytes([b]) if 32 <= b < 127 and b != 61 else f"={b:02X}".encode() for b in data)


def plain_7bit() -> CorpusMessage:
    raw = _join(
        _head(
            "Plain hello",
            "Content-Type: text/plain; charset=us-ascii",
            "Content-Transfer-Encoding: 7bit",
        ),
        "",
        "Hello Bob,",
        "",
        "see you at ten.",
        "",
    )
    return CorpusMessage(
        "plain_7bit",
        raw,
        "Plain hello",
        ANN,
        plain="Hello Bob,\r\n\r\nsee you at ten.\r\n",
        plain_part="1",
    )


def alternative_qp_base64() -> CorpusMessage:
    html = "<html><body><p>Caf&eacute; au lait, <b>s'il vous plaît</b>.</p></body></html>"
    raw = _join(
        _head("Alternative", 'Content-Type: multipart/alternative; boundary="alt-1"'),
        "",
        "--alt-1",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "Caf=C3=A9 au lait, s'il vous pla=C3=AEt. This line is long enough that it is=",
        " wrapped with a soft break.",
        "--alt-1",
        'Content-Type: text/html; charset="UTF-8"',
        "Content-Transfer-Encoding: base64",
        "",
        _b64_lines(html.encode()),
        "--alt-1--",
        "",
    )
    plain = (
        "Café au lait, s'il vous plaît. This line is long enough that it is"
        " wrapped with a soft break."
    )
    return CorpusMessage(
        "alternative_qp_base64",
        raw,
        "Alternative",
        ANN,
        plain=plain,
        html=html,
        plain_part="1",
        html_part="2",
    )


def nested_mixed() -> CorpusMessage:
    raw = _join(
        _head("Quarterly report", 'Content-Type: multipart/mixed; boundary="mix-1"'),
        "",
        "This is a multi-part message in MIME format.",
        "--mix-1",
        'Content-Type: multipart/alternative; boundary="alt-2"',
        "",
        "--alt-2",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        "Grüße,",
        "the report is attached.",
        "--alt-2",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "<p>Gr=C3=BC=C3=9Fe,</p><p>the report is attached.</p>",
        "--alt-2--",
        "",
        "--mix-1",
        'Content-Type: application/pdf; name="report.pdf"',
        'Content-Disposition: attachment; filename="report.pdf"',
        "Content-Transfer-Encoding: base64",
        "",
        _b64_lines(PDF),
        "--mix-1",
        "Content-Type: text/csv; charset=utf-8",
        "Content-Disposition: attachment; filename=data.csv",
        "",
        "a,b",
        "1,2",
        "--mix-1--",
        "",
    )
    return CorpusMessage(
        "nested_mixed",
        raw,
        "Quarterly report",
        ANN,
        plain="Grüße,\r\nthe report is attached.",
        html="<p>Grüße,</p><p>the report is attached.</p>",
        plain_part="1.1",
        html_part="1.2",
        attachments=(
            ExpectedAttachment("2", "application/pdf", PDF, "report.pdf", disposition="attachment"),
            ExpectedAttachment(
                "3", "text/csv", b"a,b\r\n1,2", "data.csv", disposition="attachment"
            ),
        ),
    )


def related_cid() -> CorpusMessage:
    html = '<p>See the <img src="cid:logo@example.com"> logo.</p>'
    raw = _join(
        _head("Inline images", 'Content-Type: multipart/mixed; boundary="mix-2"'),
        "",
        "--mix-2",
        'Content-Type: multipart/related; type="multipart/alternative"; boundary="rel-2"',
        "",
        "--rel-2",
        'Content-Type: multipart/alternative; boundary="alt-3"',
        "",
        "--alt-3",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "See the logo.",
        "--alt-3",
        "Content-Type: text/html; charset=us-ascii",
        "",
        html,
        "--alt-3--",
        "",
        "--rel-2",
        'Content-Type: image/png; name="logo.png"',
        "Content-ID: <logo@example.com>",
        'Content-Disposition: inline; filename="logo.png"',
        "Content-Transfer-Encoding: base64",
        "",
        _b64_lines(PNG),
        "--rel-2",
        "Content-Type: image/gif",
        "Content-ID: <spacer@example.com>",
        "Content-Transfer-Encoding: base64",
        "",
        _b64_lines(GIF),
        "--rel-2--",
        "",
        "--mix-2",
        "Content-Type: application/zip; name=archive.zip",
        "Content-Disposition: attachment; filename=archive.zip",
        "Content-Transfer-Encoding: base64",
        "",
        _b64_lines(ZIP),
        "--mix-2--",
        "",
    )
    return CorpusMessage(
        "related_cid",
        raw,
        "Inline images",
        ANN,
        plain="See the logo.",
        html=html,
        plain_part="1.1.1",
        html_part="1.1.2",
        attachments=(
            ExpectedAttachment("1.2", "image/png", PNG, "logo.png", "<logo@example.com>", "inline"),
            ExpectedAttachment("1.3", "image/gif", GIF, None, "<spacer@example.com>"),
            ExpectedAttachment(
                "2", "application/zip", ZIP, "archive.zip", disposition="attachment"
            ),
        ),
    )


def rfc2231_filenames() -> CorpusMessage:
    japanese = "日本語の報告.pdf"
    encoded = quote(japanese.encode("utf-8"), safe=".")
    first, second = encoded[:27], encoded[27:]
    raw = _join(
        _head("RFC 2231 names", 'Content-Type: multipart/mixed; boundary="mix-3"'),
        "",
        "--mix-3",
        "Content-Type: text/plain",
        "",
        "Three files.",
        "--mix-3",
        "Content-Type: application/pdf",
        "Content-Disposition: attachment;",
        f" filename*0*=utf-8''{first};",
        f" filename*1*={second}",
        "Content-Transfer-Encoding: base64",
        "",
        _b64_lines(PDF),
        "--mix-3",
        "Content-Type: text/plain; charset=iso-8859-1",
        "Content-Disposition: attachment; filename*=iso-8859-1''caf%E9%20cr%E8me.txt",
        "",
        "menu",
        "--mix-3",
        "Content-Type: application/octet-stream;",
        ' name*0="very long name that continues ";',
        ' name*1="in a second piece.bin"',
        "Content-Transfer-Encoding: base64",
        "",
        _b64_lines(b"\x00\x01\x02binary"),
        "--mix-3--",
        "",
    )
    return CorpusMessage(
        "rfc2231_filenames",
        raw,
        "RFC 2231 names",
        ANN,
        plain="Three files.",
        plain_part="1",
        attachments=(
            ExpectedAttachment("2", "application/pdf", PDF, japanese, disposition="attachment"),
            ExpectedAttachment(
                "3", "text/plain", b"menu", "café crème.txt", disposition="attachment"
            ),
            ExpectedAttachment(
                "4",
                "application/octet-stream",
                b"\x00\x01\x02binary",
                "very long name that continues in a second piece.bin",
            ),
        ),
    )


def encoded_word_filenames() -> CorpusMessage:
    word = base64.b64encode("Résumé 2026.pdf".encode()).decode()
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(64)) + b"\xff\xd9"
    raw = _join(
        _head("Encoded-word names", 'Content-Type: multipart/mixed; boundary="mix-4"'),
        "",
        "--mix-4",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Encoded names.",
        "--mix-4",
        f'Content-Type: application/pdf; name="=?UTF-8?B?{word}?="',
        f'Content-Disposition: attachment; filename="=?UTF-8?B?{word}?="',
        "Content-Transfer-Encoding: base64",
        "",
        _b64_lines(PDF),
        "--mix-4",
        'Content-Type: image/jpeg; name="=?ISO-8859-1?Q?f=F6to_gro=DF.jpg?="',
        "Content-Transfer-Encoding: base64",
        "",
        _b64_lines(jpeg),
        "--mix-4--",
        "",
    )
    return CorpusMessage(
        "encoded_word_filenames",
        raw,
        "Encoded-word names",
        ANN,
        plain="Encoded names.",
        plain_part="1",
        attachments=(
            ExpectedAttachment(
                "2", "application/pdf", PDF, "Résumé 2026.pdf", disposition="attachment"
            ),
            ExpectedAttachment("3", "image/jpeg", jpeg, "föto groß.jpg"),
        ),
    )


def iso_8859() -> CorpusMessage:
    text = "Zażółć gęślą jaźń\r\n"
    raw = _join(
        _head(
            "=?ISO-8859-15?Q?Preis:_100_=A4_netto?=",
            "Content-Type: text/plain; charset=ISO-8859-2",
            "Content-Transfer-Encoding: 8bit",
            sender="=?ISO-8859-1?Q?Ren=E9_Dupont?= <rene@example.fr>",
        ),
        "",
        text.encode("iso-8859-2"),
    )
    return CorpusMessage(
        "iso_8859",
        raw,
        "Preis: 100 € netto",
        ("René Dupont", "rene@example.fr"),
        plain=text,
        plain_part="1",
    )


def windows_125x() -> CorpusMessage:
    subject = base64.b64encode("Привет из Москвы".encode("cp1251")).decode()
    html = "<p>\u201cQuoted\u201d \u2013 5 \u20ac</p>"
    raw = _join(
        _head(
            f"=?windows-1251?B?{subject}?=", 'Content-Type: multipart/alternative; boundary="alt-5"'
        ),
        "",
        "--alt-5",
        "Content-Type: text/plain; charset=windows-1251",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        _qp_bytes("Привет, мир!".encode("cp1251")),
        "--alt-5",
        "Content-Type: text/html; charset=windows-1252",
        "Content-Transfer-Encoding: 8bit",
        "",
        html.encode("cp1252"),
        "--alt-5--",
        "",
    )
    return CorpusMessage(
        "windows_125x",
        raw,
        "Привет из Москвы",
        ANN,
        plain="Привет, мир!",
        html=html,
        plain_part="1",
        html_part="2",
    )


def iso_2022_jp() -> CorpusMessage:
    first = base64.b64encode("こんにちは".encode("iso2022_jp")).decode()
    second = base64.b64encode("世界".encode("iso2022_jp")).decode()
    text = "お世話になっております。\r\nよろしくお願いします。\r\n"
    raw = _join(
        _head(
            f"=?ISO-2022-JP?B?{first}?=\r\n =?ISO-2022-JP?B?{second}?=",
            "Content-Type: text/plain; charset=ISO-2022-JP",
            "Content-Transfer-Encoding: 7bit",
        ),
        "",
        text.encode("iso2022_jp"),
    )
    return CorpusMessage("iso_2022_jp", raw, "こんにちは世界", ANN, plain=text, plain_part="1")


def missing_charset() -> CorpusMessage:
    raw = _join(
        _head("No charset", 'Content-Type: multipart/alternative; boundary="alt-6"'),
        "",
        "--alt-6",
        "Content-Type: text/plain",
        "Content-Transfer-Encoding: 8bit",
        "",
        "Naïve café, no charset label.",
        "--alt-6",
        "Content-Type: text/html",
        "Content-Transfer-Encoding: 8bit",
        "",
        b"<p>Caf\xe9 \x93quoted\x94</p>",
        "--alt-6--",
        "",
    )
    return CorpusMessage(
        "missing_charset",
        raw,
        "No charset",
        ANN,
        plain="Naïve café, no charset label.",
        html="<p>Café “quoted”</p>",
        plain_part="1",
        html_part="2",
        broken=True,
    )


def no_mime_headers() -> CorpusMessage:
    raw = _join(
        "From: Ann Example <ann@example.com>",
        "To: bob@example.org",
        "Subject: Old school",
        "",
        "Plain old 8-bit mail: smörgåsbord.",
        "",
    )
    return CorpusMessage(
        "no_mime_headers",
        raw,
        "Old school",
        ANN,
        plain="Plain old 8-bit mail: smörgåsbord.\r\n",
        plain_part="1",
    )


def lying_charset() -> CorpusMessage:
    raw = _join(
        _head(
            "Lying label",
            "Content-Type: text/plain; charset=us-ascii",
            "Content-Transfer-Encoding: 8bit",
        ),
        "",
        "Déjà vu — it says ASCII.",
        "",
    )
    return CorpusMessage(
        "lying_charset",
        raw,
        "Lying label",
        ANN,
        plain="Déjà vu — it says ASCII.\r\n",
        plain_part="1",
        broken=True,
    )


def unknown_charset() -> CorpusMessage:
    raw = _join(
        _head(
            "Unknown label",
            'Content-Type: text/plain; charset="x-mac-klingon"',
            "Content-Transfer-Encoding: 8bit",
        ),
        "",
        "Qapla\u2019 \u2603",
        "",
    )
    return CorpusMessage(
        "unknown_charset",
        raw,
        "Unknown label",
        ANN,
        plain="Qapla\u2019 \u2603\r\n",
        plain_part="1",
        broken=True,
    )


def unclosed_boundary() -> CorpusMessage:
    raw = _join(
        _head("Cut short", 'Content-Type: multipart/mixed; boundary="mix-7"'),
        "",
        "--mix-7",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Before the attachment.",
        "--mix-7",
        'Content-Type: application/pdf; name="notes.pdf"',
        'Content-Disposition: attachment; filename="notes.pdf"',
        "Content-Transfer-Encoding: base64",
        "",
        _b64_lines(PDF),
        "",
    )
    return CorpusMessage(
        "unclosed_boundary",
        raw,
        "Cut short",
        ANN,
        plain="Before the attachment.",
        plain_part="1",
        broken=True,
        attachments=(
            ExpectedAttachment("2", "application/pdf", PDF, "notes.pdf", disposition="attachment"),
        ),
    )


def wrong_boundary() -> CorpusMessage:
    body = (
        "This is a multi-part message in MIME format.\r\n--actual\r\n"
        "Content-Type: text/plain\r\n\r\nLost in the wrong boundary.\r\n--actual--\r\n"
    )
    raw = _join(
        _head("Wrong boundary", 'Content-Type: multipart/mixed; boundary="declared"'),
        "",
        body.encode(),
    )
    return CorpusMessage(
        "wrong_boundary",
        raw,
        "Wrong boundary",
        ANN,
        plain=body,
        plain_part="1",
        broken=True,
        notes="the declared boundary never occurs: the body is read as text",
    )


def bad_base64() -> CorpusMessage:
    raw = _join(
        _head("Bad base64", 'Content-Type: multipart/mixed; boundary="mix-8"'),
        "",
        "--mix-8",
        "Content-Type: text/plain",
        "",
        "See attached.",
        "--mix-8",
        "Content-Type: application/octet-stream; name=blob.bin",
        "Content-Transfer-Encoding: base64",
        "",
        "SGVs*bG8s",
        "IHdv!cmxk",
        "IQ",
        "--mix-8",
        "Content-Type: application/octet-stream; name=trailing.bin",
        "Content-Transfer-Encoding: BASE64",
        "",
        "QUJD",
        "R",
        "--mix-8",
        "Content-Type: application/octet-stream; name=concatenated.bin",
        "Content-Transfer-Encoding: base64",
        "",
        "QQ==Qg==",
        "--mix-8--",
        "",
    )
    return CorpusMessage(
        "bad_base64",
        raw,
        "Bad base64",
        ANN,
        plain="See attached.",
        plain_part="1",
        broken=True,
        attachments=(
            ExpectedAttachment("2", "application/octet-stream", b"Hello, world!", "blob.bin"),
            ExpectedAttachment("3", "application/octet-stream", b"ABC", "trailing.bin"),
            ExpectedAttachment("4", "application/octet-stream", b"AB", "concatenated.bin"),
        ),
        notes="junk characters skipped, missing padding tolerated, a lone last character "
        "dropped, '=' ends a quantum",
    )


def bad_qp() -> CorpusMessage:
    raw = _join(
        _head(
            "Bad quoted-printable",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: Quoted-Printable",
        ),
        "",
        "Good =C3=A9, lowercase =c3=a9, broken =ZZ and =4 end.   ",
        "Soft=",
        "break. Equals at the end=",
        "",
    )
    return CorpusMessage(
        "bad_qp",
        raw,
        "Bad quoted-printable",
        ANN,
        plain_part="1",
        broken=True,
        plain="Good é, lowercase é, broken =ZZ and =4 end.\r\nSoftbreak. Equals at the end",
    )


def headers_only() -> CorpusMessage:
    raw = _join(_head("Headers only", "Content-Type: text/plain"), "")
    return CorpusMessage(
        "headers_only", raw, "Headers only", ANN, plain="", plain_part="1", broken=True
    )


def eight_bit_headers() -> CorpusMessage:
    raw = _join(
        _head(
            "Grüße aus Köln".encode(),
            b"X-Legacy: caf\xe9",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
            sender='"Jörg Müller" <joerg@example.de>',
        ),
        "",
        "Hallo",
        "",
    )
    return CorpusMessage(
        "eight_bit_headers",
        raw,
        "Grüße aus Köln",
        ("Jörg Müller", "joerg@example.de"),
        plain="Hallo\r\n",
        plain_part="1",
        extra={"x-legacy": "café"},
    )


def nul_bytes() -> CorpusMessage:
    raw = _join(
        _head(
            "NUL bytes",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
        ),
        "",
        b"before\x00after",
        "",
    )
    return CorpusMessage(
        "nul_bytes",
        raw,
        "NUL bytes",
        ANN,
        plain="before\x00after\r\n",
        plain_part="1",
        broken=True,
        storable=False,
    )


def huge_headers() -> CorpusMessage:
    received = [
        f"Received: from relay{i}.example.net (relay{i}.example.net [192.0.2.{i % 250}]) "
        f"by mx.example.org with ESMTPS id {i:08x}; Tue, 03 Mar 2026 10:15:00 +0100"
        for i in range(300)
    ]
    recipients = [f"user{i}@example.org" for i in range(500)]
    to = "To: " + ",\r\n ".join(recipients)
    raw = _join(
        *received,
        "From: Ann Example <ann@example.com>",
        to,
        "Subject: A subject folded",
        " over three",
        " lines",
        "X-Long: " + "x" * 20_000,
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "Big headers, small body.",
        "",
    )
    return CorpusMessage(
        "huge_headers",
        raw,
        "A subject folded over three lines",
        ANN,
        plain="Big headers, small body.\r\n",
        plain_part="1",
        extra={"to_count": "500", "received_count": "300", "x_long_length": "20000"},
    )


FORWARDED = _join(
    "From: Carol <carol@example.net>",
    "To: Ann Example <ann@example.com>",
    "Subject: The original",
    "MIME-Version: 1.0",
    'Content-Type: multipart/alternative; boundary="fwd-alt"',
    "",
    "--fwd-alt",
    "Content-Type: text/plain",
    "",
    "Original text.",
    "--fwd-alt",
    "Content-Type: text/html",
    "",
    "<p>Original text.</p>",
    "--fwd-alt--",
)


def forwarded_rfc822() -> CorpusMessage:
    raw = _join(
        _head("Fwd: The original", 'Content-Type: multipart/mixed; boundary="mix-9"'),
        "",
        "--mix-9",
        "Content-Type: text/plain",
        "",
        "Forwarding the thread below.",
        "--mix-9",
        "Content-Type: message/rfc822",
        "Content-Disposition: inline",
        "",
        FORWARDED,
        "--mix-9--",
        "",
    )
    return CorpusMessage(
        "forwarded_rfc822",
        raw,
        "Fwd: The original",
        ANN,
        plain="Forwarding the thread below.",
        plain_part="1",
        attachments=(ExpectedAttachment("2", "message/rfc822", FORWARDED, disposition="inline"),),
    )


def attachment_only() -> CorpusMessage:
    raw = _join(
        _head(
            "Just a scan",
            'Content-Type: application/pdf; name="scan.pdf"',
            'Content-Disposition: attachment; filename="scan.pdf"',
            "Content-Transfer-Encoding: base64",
        ),
        "",
        _b64_lines(PDF),
        "",
    )
    return CorpusMessage(
        "attachment_only",
        raw,
        "Just a scan",
        ANN,
        attachments=(
            ExpectedAttachment("1", "application/pdf", PDF, "scan.pdf", disposition="attachment"),
        ),
    )


DIGESTED = (
    _join("From: a@example.com", "Subject: first", "", "First digest entry."),
    _join("From: b@example.com", "Subject: second", "", "Second digest entry."),
)


def digest() -> CorpusMessage:
    raw = _join(
        _head("Digest", 'Content-Type: multipart/digest; boundary="dig-1"'),
        "",
        "--dig-1",
        "",
        DIGESTED[0],
        "--dig-1",
        "",
        DIGESTED[1],
        "--dig-1--",
        "",
    )
    return CorpusMessage(
        "digest",
        raw,
        "Digest",
        ANN,
        attachments=(
            ExpectedAttachment("1", "message/rfc822", DIGESTED[0]),
            ExpectedAttachment("2", "message/rfc822", DIGESTED[1]),
        ),
        notes="parts without Content-Type default to message/rfc822 (RFC 2046 section 5.1.5)",
    )


BUILDERS = (
    plain_7bit,
    alternative_qp_base64,
    nested_mixed,
    related_cid,
    rfc2231_filenames,
    encoded_word_filenames,
    iso_8859,
    windows_125x,
    iso_2022_jp,
    missing_charset,
    no_mime_headers,
    lying_charset,
    unknown_charset,
    unclosed_boundary,
    wrong_boundary,
    bad_base64,
    bad_qp,
    headers_only,
    eight_bit_headers,
    nul_bytes,
    huge_headers,
    forwarded_rfc822,
    attachment_only,
    digest,
)


@functools.cache
def corpus() -> tuple[CorpusMessage, ...]:
    """Every corpus message, in a fixed order (the same bytes on every call and run)."""
    return tuple(build() for build in BUILDERS)


def message(name: str) -> CorpusMessage:
    """The corpus message called `name` (KeyError if there is none)."""
    found = {item.name: item for item in corpus()}
    return found[name]
