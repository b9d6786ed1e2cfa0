"""Incremental transfer decoding: chunked equals whole, and both equal the encoders' inverse."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwire.protocols.mime.decode import TransferDecoder, decode_transfer

ENCODINGS = ["base64", "quoted-printable", "7bit", "8bit", "binary", "x-unknown"]


def chunked(data: bytes, encoding: str, cuts: list[int]) -> bytes:
    decoder = TransferDecoder(encoding)
    out = []
    previous = 0
    for cut in sorted({min(c, len(data)) for c in cuts}):
        out.append(decoder.feed(data[previous:cut]))
        previous = cut
    out.append(decoder.feed(data[previous:]))
    out.append(decoder.finish())
    return b"".join(out)


#: Bytes that matter to the decoders (escapes, pads, blanks, line ends) plus a few others.
tricky = st.lists(
    st.sampled_from(
        [
            b"=",
            b"A",
            b"f",
            b"0",
            b"Z",
            b"=\r\n",
            b"\r\n",
            b"\n",
            b"\r",
            b" ",
            b"\t",
            b"==",
            b"+/",
            b"\xc3",
            b"-",
            b"QQ",
            b"=4",
            b"=C3=A9",
        ]
    ),
    max_size=60,
).map(b"".join)


@given(
    data=st.one_of(tricky, st.binary(max_size=300)),
    encoding=st.sampled_from(ENCODINGS),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=12),
)
def test_any_split_decodes_like_the_whole(data: bytes, encoding: str, cuts: list[int]) -> None:
    assert chunked(data, encoding, cuts) == decode_transfer(data, encoding)


@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 3000), max_size=8))
def test_base64_inverts_the_encoder_in_any_chunks(data: bytes, cuts: list[int]) -> None:
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    assert chunked(encoded, "base64", cuts) == data


@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 3000), max_size=8))
def test_quoted_printable_inverts_the_binary_encoder(data: bytes, cuts: list[int]) -> None:
    encoded = binascii.b2a_qp(data, istext=False)
    assert chunked(encoded, "quoted-printable", cuts) == data


@given(text=st.text(max_size=500).map(lambda t: t.replace("\r", "")))
def test_quoted_printable_inverts_the_text_encoder(text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    encoded = binascii.b2a_qp(data, istext=True)
    assert decode_transfer(encoded, "quoted-printable") == data


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"caf=", b"C3=A9"], "café"),
        ([b"caf=C", b"3=A9"], "café"),
        ([b"soft=", b"\r\n", b"break"], "softbreak"),
        ([b"soft=\r", b"\nbreak"], "softbreak"),
        ([b"pad   ", b"\r\nnext"], "pad\r\nnext"),
        ([b"pad   ", b"x"], "pad   x"),
        ([b"lower =c3=a9"], "lower é"),
        ([b"bad =ZZ =4"], "bad =ZZ =4"),
        ([b"end="], "end"),
    ],
)
def test_quoted_printable_cases(chunks: list[bytes], expected: str) -> None:
    decoder = TransferDecoder("Quoted-Printable")
    out = b"".join(decoder.feed(chunk) for chunk in chunks) + decoder.finish()
    assert out.decode("utf-8") == expected


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"SGVs", b"bG8="], b"Hello"),
        ([b"SG", b"Vsb", b"G8"], b"Hello"),
        ([b"SGVs*bG8s\r\nIHdv!cmxkIQ"], b"Hello, world!"),
        ([b"QUJD", b"R"], b"ABC"),
        ([b"QQ=", b"=Qg=="], b"AB"),
        ([b""], b""),
    ],
)
def test_base64_cases(chunks: list[bytes], expected: bytes) -> None:
    decoder = TransferDecoder("BASE64")
    assert b"".join(decoder.feed(chunk) for chunk in chunks) + decoder.finish() == expected


def test_held_back_bytes_stay_few() -> None:
    decoder = TransferDecoder("quoted-printable")
    emitted = decoder.feed(b"x" * 65536 + b"=4")
    assert emitted == b"x" * 65536
    assert decoder.finish() == b"=4"


def test_identity_encodings_pass_bytes_through() -> None:
    for encoding in ("7bit", "8bit", "binary", None, "x-uuencode"):
        decoder = TransferDecoder(encoding)
        assert decoder.feed(b"a=\r\nb\x00") == b"a=\r\nb\x00"
        assert decoder.finish() == b""
