"""Field encryption of secrets at rest: AES-256-GCM under keys derived from the service secret.

Theory of operation
-------------------
Every credential the store keeps (IMAP/SMTP passwords, OAuth tokens, client
secrets) is encrypted on its own, as one text value::

    mw1$<key id>$<base64url, no padding, of: 12-byte nonce || ciphertext || 16-byte tag>

* `mw1` names this format: AES-256-GCM, keys from scrypt with `KDF_SALT`. A
  change to any of these gets a new prefix and a new salt, never a silent
  reinterpretation of stored data.
* The key id says which secret encrypted the value, so keys can rotate: a
  `Keyring` holds the current key (it encrypts) and the previous ones (they
  only decrypt). Re-encrypting old values under the current key is the
  caller's job; `is_current` tells which values still need it.
* The text is ASCII from `[A-Za-z0-9_$-]` only, so it needs no quoting in SQL,
  JSON, URLs or logs.
* Every value is bound to where it is stored by associated data (`aad`), see
  `Keyring.encrypt`.

Keys are derived once per secret, in `Keyring.from_secrets` (scrypt is slow on
purpose: tens of milliseconds). Build the keyring at start-up and pass it down;
do not build one per request or on the event loop's hot path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from mailwire.errors import DecryptionError

__all__ = [
    "FORMAT_PREFIX",
    "KDF_SALT",
    "MAX_CIPHERTEXT_CHARS",
    "MAX_PLAINTEXT_BYTES",
    "Keyring",
    "generate_secret",
]

#: First field of every ciphertext; names the whole scheme (cipher, KDF, salt, layout).
FORMAT_PREFIX = "mw1"

#: Fixed scrypt salt, versioned with the format. It is fixed because keys must be
#: re-derivable from the secret alone; the secret itself is what must be unguessable
#: (`generate_secret` makes 256 random bits), and scrypt's cost protects weaker
#: operator-chosen secrets against guessing.
KDF_SALT = b"mailwire/field-encryption/v1"
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1

#: Largest plaintext `encrypt` accepts, in UTF-8 bytes (1 MiB). Credentials are far
#: smaller; the limit stops a caller from storing arbitrary blobs as "secrets".
MAX_PLAINTEXT_BYTES = 1024 * 1024

SECRET_BYTES = 32
KEY_BYTES = 32  # AES-256
KEY_ID_HEX_CHARS = 16
# A random 96-bit nonce per value. NIST SP 800-38D section 8.3 allows 2**32 random
# nonces per key; a mail store holds a few thousand credentials and re-keys on rotation.
NONCE_BYTES = 12
TAG_BYTES = 16

_SEPARATOR = "$"


def _b64_chars(n_bytes: int) -> int:
    """Length of unpadded base64 for `n_bytes` bytes."""
    return (n_bytes * 4 + 2) // 3


#: Longest text `decrypt` will look at; anything longer cannot come from `encrypt`.
MAX_CIPHERTEXT_CHARS = (
    len(FORMAT_PREFIX)
    + 1
    + KEY_ID_HEX_CHARS
    + 1
    + _b64_chars(NONCE_BYTES + MAX_PLAINTEXT_BYTES + TAG_BYTES)
)

_KEY_ID = re.compile(rf"[0-9a-f]{{{KEY_ID_HEX_CHARS}}}")
_PAYLOAD = re.compile(r"[A-Za-z0-9_-]+")


def generate_secret() -> str:
    """A new service secret: 32 random bytes from `secrets`, as 64 lowercase hex chars."""
    return secrets.token_hex(SECRET_BYTES)


def _derive(secret: str) -> tuple[str, bytes]:
    """(key id, AES-256 key) for one secret.

    scrypt yields 64 bytes: the first 32 are the key; the key id is a hash of the
    other 32, so publishing key ids (in every ciphertext) reveals nothing of the key.
    """
    if not secret:
        raise ValueError("the secret must not be empty")
    kdf = Scrypt(salt=KDF_SALT, length=2 * KEY_BYTES, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    material = kdf.derive(secret.encode("utf-8"))
    key, id_material = material[:KEY_BYTES], material[KEY_BYTES:]
    key_id = hashlib.sha256(id_material).digest()[: KEY_ID_HEX_CHARS // 2].hex()
    return key_id, key


def _malformed(problem: str) -> NoReturn:
    # The input is never quoted: a plaintext stored by mistake must not reach a log.
    raise DecryptionError(f"stored secret is not a valid {FORMAT_PREFIX} ciphertext: {problem}")


def _parse(ciphertext: str) -> tuple[str, str]:
    """Split a ciphertext into (key id, base64 payload); checks the layout only."""
    if len(ciphertext) > MAX_CIPHERTEXT_CHARS:
        _malformed(f"longer than {MAX_CIPHERTEXT_CHARS} characters")
    parts = ciphertext.split(_SEPARATOR)
    if len(parts) != 3:
        _malformed(f"expected 3 fields separated by {_SEPARATOR!r}")
    prefix, key_id, payload = parts
    if prefix != FORMAT_PREFIX:
        _malformed("unknown format prefix")
    if not _KEY_ID.fullmatch(key_id):
        _malformed(f"the key id is not {KEY_ID_HEX_CHARS} lowercase hex characters")
    if not _PAYLOAD.fullmatch(payload):
        _malformed(f"the payload of key id {key_id} is not base64url")
    return key_id, payload


def _decode_payload(key_id: str, payload: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError(f"value under key id {key_id}: payload is not base64url") from None
    # base64 has spare bits in its last character: several texts decode to the same
    # bytes. Only the canonical one is accepted, so any edited character is an error.
    if _encode_payload(raw) != payload:
        raise DecryptionError(f"value under key id {key_id}: payload is not canonical base64url")
    if len(raw) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError(f"value under key id {key_id}: payload is truncated")
    return raw


def _encode_payload(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


# No `slots=True`: on Python 3.11 a frozen slotted dataclass raises a confusing
# TypeError instead of FrozenInstanceError when a new attribute is set (CPython gh-105936).
@dataclass(frozen=True, repr=False, eq=False)
class Keyring:
    """The current encryption key and the previous ones, by key id. Immutable.

    Build it with `from_secrets`; the constructor takes already-derived ciphers.
    """

    _current_key_id: str
    #: key id -> cipher, current first. A read-only view: the keyring never changes.
    _ciphers: Mapping[str, AESGCM]

    @classmethod
    def from_secrets(cls, current: str, previous: Sequence[str] = ()) -> Keyring:
        """Derive the keys: `current` encrypts, `previous` only decrypt older values.

        Raises `ValueError` if any secret is empty. Repeated secrets are derived once.
        """
        ciphers: dict[str, AESGCM] = {}
        keys: dict[str, bytes] = {}
        for secret in dict.fromkeys([current, *previous]):
            key_id, key = _derive(secret)
            if key_id in keys and keys[key_id] != key:  # 2**-64 odds; refuse, never guess
                raise ValueError(f"two different secrets share key id {key_id}")
            keys[key_id] = key
            ciphers[key_id] = AESGCM(key)
        current_key_id = next(iter(ciphers))
        return cls(current_key_id, MappingProxyType(ciphers))

    @property
    def current_key_id(self) -> str:
        """Key id of the key that encrypts: 16 lowercase hex characters."""
        return self._current_key_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id this keyring can decrypt: the current one first."""
        return tuple(self._ciphers)

    def encrypt(self, plaintext: str, *, aad: bytes) -> str:
        """Encrypt `plaintext` under the current key, bound to `aad`.

        `aad` names where the value is stored (e.g. b"secret:account:abc:imap.pass")
        and must be given again, equal, to decrypt. Without it, anyone who can write
        to the database could copy an encrypted value into another row (another
        account's password, a webhook's signing secret) and have Mailwire decrypt
        and use it there; GCM authenticates the aad, so the copy fails to decrypt.

        Raises `ValueError` if the plaintext is over `MAX_PLAINTEXT_BYTES` in UTF-8.
        """
        data = plaintext.encode("utf-8")
        if len(data) > MAX_PLAINTEXT_BYTES:
            raise ValueError(
                f"plaintext is {len(data)} bytes; the limit is {MAX_PLAINTEXT_BYTES} bytes"
            )
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[self._current_key_id].encrypt(nonce, data, aad)
        return _SEPARATOR.join(
            (FORMAT_PREFIX, self._current_key_id, _encode_payload(nonce + sealed))
        )

    def decrypt(self, ciphertext: str, *, aad: bytes) -> str:
        """The plaintext of a value made by `encrypt` with the same `aad`.

        Raises `DecryptionError` (and nothing else) if the value is malformed,
        truncated, tampered with, stored under another aad, or encrypted under a
        key id this keyring does not hold. The message names the key id, never
        the value or the key.
        """
        key_id, payload = _parse(ciphertext)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            known = ", ".join(self._ciphers)
            raise DecryptionError(
                f"value is encrypted under key id {key_id}, which is not in the keyring"
                f" (known: {known}); was a previous secret dropped?"
            )
        raw = _decode_payload(key_id, payload)
        # The library's exceptions are dropped (`from None`): they add nothing,
        # and a UnicodeDecodeError carries the decrypted bytes.
        try:
            data = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError):
            raise DecryptionError(
                f"value under key id {key_id} failed authentication:"
                " tampered with, truncated, or stored under another aad"
            ) from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionError(f"value under key id {key_id} is not UTF-8 text") from None

    def key_id_of(self, ciphertext: str) -> str:
        """The key id a value was encrypted under (parsed only, not decrypted).

        Raises `DecryptionError` if the value is not in the `mw1` layout.
        """
        key_id, _ = _parse(ciphertext)
        return key_id

    def is_current(self, ciphertext: str) -> bool:
        """Whether the value is under the current key (else it needs re-encrypting).

        Raises `DecryptionError` if the value is not in the `mw1` layout.
        """
        return self.key_id_of(ciphertext) == self._current_key_id

    def __repr__(self) -> str:
        # Key ids only: they are public (in every ciphertext) and reveal nothing.
        return f"Keyring(current_key_id={self._current_key_id!r}, key_ids={self.key_ids!r})"
