"""The payload codec: AES-256-GCM over exactly the payloads that carry a run's sensitive inputs.

The payload converter marks such a payload (metadata SENSITIVE_MARK, workflows/converter.py);
this codec encrypts the whole marked payload, metadata included, into one whose encoding is
`binary/encrypted` and whose `encryption-key-id` names the key. Every other payload passes
through as it is, both ways: runs without secrets, and every history recorded before this
codec, read exactly as before.

Keys come from FLEETPIPE_CODEC_KEYS, `kid:base64key,kid2:base64key` (32-byte keys): the first
encrypts, every one decrypts, so keys rotate by putting a new one first and dropping an old
one only once no open run (nor any history still wanted) was encrypted with it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

SENSITIVE_MARK = "fleetpipe-sensitive"  # set by the converter on payloads holding secrets
ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
KEY_BYTES = 32
_NONCE_BYTES = 12
_KID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class CodecKeysInvalid(ValueError):
    """FLEETPIPE_CODEC_KEYS cannot be read; the message says what is wrong (never a key)."""


class CodecUnavailable(RuntimeError):
    """A payload needs a key this process does not have (none configured, or an unknown id)."""


@dataclass(frozen=True)
class KeyRing:
    """Key ids to 32-byte keys, in order: the first one encrypts."""

    keys: tuple[tuple[str, bytes], ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.keys)

    @property
    def current(self) -> tuple[str, bytes]:
        if not self.keys:
            raise CodecUnavailable("no payload codec key is configured: set "
                                   "FLEETPIPE_CODEC_KEYS (kid:base64key) on every process")
        return self.keys[0]

    def key(self, kid: str) -> bytes:
        for known, key in self.keys:
            if known == kid:
                return key
        raise CodecUnavailable(f"payload encrypted with key id {kid!r}, which "
                               "FLEETPIPE_CODEC_KEYS does not hold")

    def __repr__(self) -> str:
        return f"KeyRing(ids={[kid for kid, _ in self.keys]})"


def parse_keyring(text: str) -> KeyRing:
    """`kid:base64key,...` to a KeyRing; CodecKeysInvalid naming the faulty entry's id."""
    keys: list[tuple[str, bytes]] = []
    for number, entry in enumerate(part.strip() for part in text.split(",")):
        if not entry:
            continue
        kid, colon, encoded = entry.partition(":")
        kid = kid.strip()
        if not colon or not _KID.fullmatch(kid):
            raise CodecKeysInvalid(f"entry {number + 1} is not `kid:base64key` with a key id "
                                   "of letters, digits, . _ or - (at most 64)")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise CodecKeysInvalid(f"key {kid!r} is not base64") from None
        if len(key) != KEY_BYTES:
            raise CodecKeysInvalid(f"key {kid!r} is {len(key)} bytes; AES-256 takes "
                                   f"{KEY_BYTES} (make one: fleetpipe codec-key)")
        if any(known == kid for known, _ in keys):
            raise CodecKeysInvalid(f"key id {kid!r} appears twice")
        keys.append((kid, key))
    return KeyRing(tuple(keys))


def new_key_entry(kid: str) -> str:
    """A fresh `kid:base64key` entry (32 random bytes)."""
    if not _KID.fullmatch(kid):
        raise CodecKeysInvalid(f"{kid!r} is not a key id (letters, digits, . _ or -)")
    return f"{kid}:{base64.b64encode(os.urandom(KEY_BYTES)).decode()}"


def _marked(metadata: Mapping[str, bytes]) -> bool:
    return SENSITIVE_MARK in metadata


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING and KEY_ID in payload.metadata


class SensitivePayloadCodec(PayloadCodec):
    """Encrypts the marked payloads with the ring's first key; decrypts with the key its id
    names; passes every other payload through."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    @property
    def ring(self) -> KeyRing:
        return self._ring

    def encrypt(self, payload: Payload) -> Payload:
        kid, key = self._ring.current  # raises: a secret is never sent in clear
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, payload.SerializeToString(), kid.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: kid.encode()},
                       data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        kid = payload.metadata[KEY_ID].decode("utf-8", errors="replace")
        key = self._ring.key(kid)
        nonce, sealed = payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:]
        try:
            if len(nonce) != _NONCE_BYTES:
                raise InvalidTag
            clear = AESGCM(key).decrypt(nonce, sealed, kid.encode())
        except InvalidTag:
            raise CodecUnavailable(f"payload does not decrypt with key {kid!r} (another key "
                                   "under the same id, or a damaged payload)") from None
        return Payload.FromString(clear)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) if _marked(p.metadata) else p for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) if is_encrypted(p) else p for p in payloads]
