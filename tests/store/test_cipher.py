"""Tests for `mailwire.store.cipher`: field encryption with rotating keys.

scrypt is slow on purpose, so keyrings are built once per module.
"""

from __future__ import annotations

import base64
import hashlib
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwire.errors import DecryptionError
from mailwire.store.cipher import (
    KDF_SALT,
    MAX_CIPHERTEXT_CHARS,
    MAX_PLAINTEXT_BYTES,
    Keyring,
    generate_secret,
)

OLD_SECRET = "1f" * 32
NEW_SECRET = "a7" * 32
OTHER_SECRET = "operator chose this passphrase"
AAD = b"secret:account:abc:imap.pass"
PLAINTEXT = "hunter2"

# Known answer, computed once with this format: pins the derivation, salt and layout,
# because a change to any of them makes every stored credential undecryptable.
KAT_SECRET = "00" * 32
KAT_KEY_ID = "b474f8691e0cec0a"
KAT_AAD = b"secret:account:kat:imap.pass"
KAT_PLAINTEXT = "hello, wörld"
KAT_CIPHERTEXT = "mw1$b474f8691e0cec0a$pQSoYUVTafDKUuBVQSGtfCYkUsPz2OC_4cb1ylB-kBdWNqOhNSemuIE"

CIPHERTEXT_SHAPE = re.compile(r"mw1\$[0-9a-f]{16}\$[A-Za-z0-9_-]+")
B64URL = string.ascii_letters + string.digits + "-_"


@pytest.fixture(scope="module")
def old() -> Keyring:
    return Keyring.from_secrets(OLD_SECRET)


@pytest.fixture(scope="module")
def rotated() -> Keyring:
    return Keyring.from_secrets(NEW_SECRET, [OLD_SECRET])


@pytest.fixture(scope="module")
def other() -> Keyring:
    return Keyring.from_secrets(OTHER_SECRET)


@pytest.fixture(scope="module")
def kat() -> Keyring:
    return Keyring.from_secrets(KAT_SECRET)


def _payload(ciphertext: str) -> bytes:
    encoded = ciphertext.rsplit("$", 1)[1]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


def _with_payload(ciphertext: str, raw: bytes) -> str:
    head = ciphertext.rsplit("$", 1)[0]
    return f"{head}${base64.urlsafe_b64encode(raw).rstrip(b'=').decode('ascii')}"


# ------------------------------------------------------------------ secrets and key ids


def test_generate_secret_is_64_lowercase_hex_and_random() -> None:
    first, second = generate_secret(), generate_secret()
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert first != second


def test_known_answer(kat: Keyring) -> None:
    assert kat.current_key_id == KAT_KEY_ID
    assert kat.decrypt(KAT_CIPHERTEXT, aad=KAT_AAD) == KAT_PLAINTEXT


def test_key_id_is_a_hash_of_the_second_half_of_the_scrypt_output(kat: Keyring) -> None:
    material = hashlib.scrypt(KAT_SECRET.encode(), salt=KDF_SALT, n=2**14, r=8, p=1, dklen=64)
    assert kat.current_key_id == hashlib.sha256(material[32:]).hexdigest()[:16]
    assert material[:32].hex()[:16] != kat.current_key_id


def test_key_id_is_stable_for_a_secret_and_differs_between_secrets(
    old: Keyring, rotated: Keyring, other: Keyring
) -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", old.current_key_id)
    # `rotated` derived OLD_SECRET separately, as a previous secret: same id.
    assert rotated.key_ids[1] == old.current_key_id
    assert len({old.current_key_id, rotated.current_key_id, other.current_key_id}) == 3


def test_key_ids_list_current_first_without_duplicates(old: Keyring, rotated: Keyring) -> None:
    repeated = Keyring.from_secrets(NEW_SECRET, [OLD_SECRET, NEW_SECRET, OLD_SECRET])
    assert repeated.key_ids == (rotated.current_key_id, old.current_key_id)
    assert repeated.current_key_id == rotated.current_key_id


@pytest.mark.parametrize(("current", "previous"), [("", ()), (NEW_SECRET, [""])])
def test_empty_secret_is_refused(current: str, previous: list[str]) -> None:
    with pytest.raises(ValueError, match="empty"):
        Keyring.from_secrets(current, previous)


def test_repr_and_str_show_key_ids_only(rotated: Keyring) -> None:
    material = hashlib.scrypt(NEW_SECRET.encode(), salt=KDF_SALT, n=2**14, r=8, p=1, dklen=64)
    key = material[:32]
    for text in (repr(rotated), str(rotated)):
        assert rotated.current_key_id in text
        assert rotated.key_ids[1] in text
        for leak in (NEW_SECRET, OLD_SECRET, key.hex(), base64.b64encode(key).decode(), str(key)):
            assert leak not in text


def test_keyring_is_immutable(rotated: Keyring) -> None:
    with pytest.raises(AttributeError):
        rotated._current_key_id = "0" * 16  # type: ignore[misc]
    with pytest.raises(AttributeError):
        rotated.current_key_id = "0" * 16  # type: ignore[misc]
    with pytest.raises(AttributeError):
        rotated.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        rotated._ciphers["0" * 16] = rotated._ciphers[rotated.current_key_id]  # type: ignore[index]


# ------------------------------------------------------------------ encrypt / decrypt


@pytest.mark.parametrize(
    "plaintext",
    [PLAINTEXT, "", "пароль 密码 🔑", "a$b\"c'd\\e\n\x00", "x" * 10_000],
    ids=["ascii", "empty", "unicode", "specials", "long"],
)
def test_round_trip(old: Keyring, plaintext: str) -> None:
    ciphertext = old.encrypt(plaintext, aad=AAD)
    assert CIPHERTEXT_SHAPE.fullmatch(ciphertext)
    assert ciphertext.isascii()
    assert old.decrypt(ciphertext, aad=AAD) == plaintext


def test_ciphertext_does_not_contain_the_plaintext(old: Keyring) -> None:
    ciphertext = old.encrypt("correct horse battery staple", aad=AAD)
    assert "horse" not in ciphertext
    assert b"horse" not in _payload(ciphertext)


def test_nonces_differ_between_encryptions_of_the_same_text(old: Keyring) -> None:
    first, second = (old.encrypt(PLAINTEXT, aad=AAD) for _ in range(2))
    assert first != second
    assert _payload(first)[:12] != _payload(second)[:12]


@pytest.mark.parametrize(
    "other_aad", [b"secret:account:abd:imap.pass", b"secret:account:abc:smtp.pass", b""]
)
def test_other_aad_fails(old: Keyring, other_aad: bytes) -> None:
    ciphertext = old.encrypt(PLAINTEXT, aad=AAD)
    with pytest.raises(DecryptionError, match=old.current_key_id) as caught:
        old.decrypt(ciphertext, aad=other_aad)
    assert PLAINTEXT not in str(caught.value)


def test_plaintext_limit(old: Keyring) -> None:
    at_limit = "x" * MAX_PLAINTEXT_BYTES
    ciphertext = old.encrypt(at_limit, aad=AAD)
    assert len(ciphertext) <= MAX_CIPHERTEXT_CHARS
    assert old.decrypt(ciphertext, aad=AAD) == at_limit
    with pytest.raises(ValueError, match="limit"):
        old.encrypt(at_limit + "x", aad=AAD)
    with pytest.raises(ValueError, match="limit"):  # counted in UTF-8 bytes, not characters
        old.encrypt("é" * (MAX_PLAINTEXT_BYTES // 2 + 1), aad=AAD)


def test_oversized_ciphertext_is_refused(old: Keyring) -> None:
    huge = f"mw1${old.current_key_id}${'A' * MAX_CIPHERTEXT_CHARS}"
    with pytest.raises(DecryptionError, match="longer than"):
        old.decrypt(huge, aad=AAD)


# ------------------------------------------------------------------ tampering and garbage


def test_flipping_any_bit_pattern_of_any_payload_byte_fails(old: Keyring) -> None:
    ciphertext = old.encrypt(PLAINTEXT, aad=AAD)
    raw = _payload(ciphertext)
    for position in range(len(raw)):
        for mask in (0x01, 0x80, 0xFF):
            tampered = bytearray(raw)
            tampered[position] ^= mask
            with pytest.raises(DecryptionError):
                old.decrypt(_with_payload(ciphertext, bytes(tampered)), aad=AAD)


@pytest.mark.parametrize("plaintext", ["", "a", "ab", "abc"])  # every length mod 3
def test_changing_any_character_fails(old: Keyring, plaintext: str) -> None:
    # Also covers base64's spare bits: "A" and "B" can decode to the same last byte.
    ciphertext = old.encrypt(plaintext, aad=AAD)
    for position, original in enumerate(ciphertext):
        for replacement in {"A", "B", "a", "0", "-", "$", "=", " "} - {original}:
            tampered = ciphertext[:position] + replacement + ciphertext[position + 1 :]
            with pytest.raises(DecryptionError):
                old.decrypt(tampered, aad=AAD)


def test_truncation_at_any_length_fails(old: Keyring) -> None:
    ciphertext = old.encrypt(PLAINTEXT, aad=AAD)
    for length in range(len(ciphertext)):
        with pytest.raises(DecryptionError):
            old.decrypt(ciphertext[:length], aad=AAD)


def test_appending_fails(old: Keyring) -> None:
    ciphertext = old.encrypt(PLAINTEXT, aad=AAD)
    for suffix in ("A", "AA", "AAAA", "=", "$", "\n"):
        with pytest.raises(DecryptionError):
            old.decrypt(ciphertext + suffix, aad=AAD)


@pytest.mark.parametrize(
    ("garbage", "message"),
    [
        ("", "3 fields"),
        (PLAINTEXT, "3 fields"),
        ("mw1$$", "key id"),
        ("mw2$0123456789abcdef$AAAA", "prefix"),
        ("MW1$0123456789abcdef$AAAA", "prefix"),
        ("mw1$0123456789ABCDEF$AAAA", "key id"),
        ("mw1$0123456789abcde$AAAA", "key id"),
        ("mw1$0123456789abcdef$", "base64url"),
        ("mw1$0123456789abcdef$AA==", "base64url"),
        ("mw1$0123456789abcdef$AA+/", "base64url"),
        ("mw1$0123456789abcdef$AAAA$AAAA", "3 fields"),
        ("mw1$0123456789abcdéf$AAAA", "key id"),
    ],
)
def test_malformed_values_raise_decryption_error(old: Keyring, garbage: str, message: str) -> None:
    with pytest.raises(DecryptionError, match=message) as caught:
        old.decrypt(garbage, aad=AAD)
    if garbage:
        assert garbage not in str(caught.value)  # a plaintext stored by mistake stays out
    with pytest.raises(DecryptionError):
        old.key_id_of(garbage)


def test_short_payload_under_a_known_key_is_truncated(old: Keyring) -> None:
    short = _with_payload(f"mw1${old.current_key_id}$AAAA", bytes(27))
    with pytest.raises(DecryptionError, match="payload is truncated"):
        old.decrypt(short, aad=AAD)


def test_unknown_key_id_names_it(old: Keyring, other: Keyring) -> None:
    ciphertext = other.encrypt(PLAINTEXT, aad=AAD)
    with pytest.raises(DecryptionError, match=other.current_key_id) as caught:
        old.decrypt(ciphertext, aad=AAD)
    assert "not in the keyring" in str(caught.value)
    assert PLAINTEXT not in str(caught.value)


# ------------------------------------------------------------------ rotation


def test_previous_key_decrypts_after_rotation(old: Keyring, rotated: Keyring) -> None:
    before = old.encrypt(PLAINTEXT, aad=AAD)
    after = rotated.encrypt(PLAINTEXT, aad=AAD)

    assert rotated.decrypt(before, aad=AAD) == PLAINTEXT
    assert rotated.decrypt(after, aad=AAD) == PLAINTEXT
    assert rotated.key_id_of(before) == old.current_key_id
    assert rotated.key_id_of(after) == rotated.current_key_id
    assert not rotated.is_current(before)
    assert rotated.is_current(after)
    assert old.is_current(before)
    with pytest.raises(DecryptionError, match=rotated.current_key_id):
        old.decrypt(after, aad=AAD)  # the old keyring cannot read the new key's values


def test_is_current_rejects_malformed_values(rotated: Keyring) -> None:
    with pytest.raises(DecryptionError):
        rotated.is_current("not a ciphertext")


# ------------------------------------------------------------------ properties


@settings(max_examples=200)
@given(plaintext=st.text(), aad=st.binary(max_size=200))
def test_round_trip_property(rotated: Keyring, plaintext: str, aad: bytes) -> None:
    ciphertext = rotated.encrypt(plaintext, aad=aad)
    assert CIPHERTEXT_SHAPE.fullmatch(ciphertext)
    assert rotated.decrypt(ciphertext, aad=aad) == plaintext


@st.composite
def _near_ciphertexts(draw: st.DrawFn) -> str:
    """Strings in the mw1 layout, with a known or random key id, so decoding is reached."""
    key_id = draw(st.sampled_from(["b474f8691e0cec0a", "ffffffffffffffff"]) | st.text(max_size=20))
    payload = draw(st.text(alphabet=B64URL, max_size=120) | st.text(max_size=40))
    return f"mw1${key_id}${payload}"


@settings(max_examples=500)
@given(garbage=st.text() | _near_ciphertexts())
def test_garbage_raises_only_decryption_error(kat: Keyring, garbage: str) -> None:
    with pytest.raises(DecryptionError):
        kat.decrypt(garbage, aad=AAD)


@settings(max_examples=300)
@given(raw=st.binary(max_size=100))
def test_random_payload_under_a_known_key_raises_only_decryption_error(
    kat: Keyring, raw: bytes
) -> None:
    with pytest.raises(DecryptionError):
        kat.decrypt(_with_payload(f"mw1${kat.current_key_id}$A", raw), aad=AAD)
