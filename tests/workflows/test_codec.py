"""The payload codec: exactly the payloads carrying secrets are encrypted, keys rotate by id,
and payloads it did not encrypt (every history recorded before it) pass through."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload

from activities.messages import DispatchInput
from domain.inputs import SensitiveValues
from settings import Settings, settings_problem
from workflows.codec import (
    ENCODING,
    KEY_ID,
    CodecKeysInvalid,
    CodecUnavailable,
    SensitivePayloadCodec,
    new_key_entry,
    parse_keyring,
)
from workflows.converter import DATA_CONVERTER, data_converter
from workflows.messages import StageRunInput, TargetRunInput

SECRET = "s3cr3t-value-for-the-codec"
KID1, KID2 = new_key_entry("kid1"), new_key_entry("kid2")


def _target(sensitive: SensitiveValues | None) -> TargetRunInput:
    return TargetRunInput("t", "s", "e", 60, "stage-wf", sensitive=sensitive)


async def test_only_payloads_carrying_secrets_are_encrypted():
    converter = data_converter(parse_keyring(KID1))
    secret = SensitiveValues({"token": SECRET})
    payloads = await converter.encode([
        _target(secret), _target(None), DispatchInput("t", 0, 1.0, secret),
        StageRunInput("s", "p", "e", 60, sensitive=SensitiveValues()), "plain"])
    encrypted = [p.metadata.get("encoding") == ENCODING for p in payloads]
    assert encrypted == [True, False, True, False, False]
    for payload in payloads:
        assert SECRET.encode() not in payload.SerializeToString()
    assert payloads[0].metadata[KEY_ID] == b"kid1"
    back = await converter.decode(payloads[:3], [TargetRunInput, TargetRunInput, DispatchInput])
    assert back[0].sensitive.values == {"token": SECRET} and back[1].sensitive is None
    assert back[2].sensitive.values == {"token": SECRET}


async def test_without_a_key_a_secret_is_refused_never_sent_in_clear():
    with pytest.raises(CodecUnavailable, match="FLEETPIPE_CODEC_KEYS"):
        await DATA_CONVERTER.encode([_target(SensitiveValues({"token": SECRET}))])
    [plain] = await DATA_CONVERTER.encode([_target(None)])  # no secret: as before
    assert plain.metadata["encoding"] == b"json/plain"


async def test_keys_rotate_by_id_old_payloads_still_decode():
    old = SensitivePayloadCodec(parse_keyring(KID1))
    marked = Payload(metadata={"encoding": b"json/plain", "fleetpipe-sensitive": b"1"},
                     data=SECRET.encode())
    [sealed] = await old.encode([marked])
    rotated = SensitivePayloadCodec(parse_keyring(f"{KID2},{KID1}"))
    assert await rotated.decode([sealed]) == [marked]
    [resealed] = await rotated.encode([marked])
    assert resealed.metadata[KEY_ID] == b"kid2"
    with pytest.raises(CodecUnavailable, match="'kid1'"):  # the old key dropped too soon
        await SensitivePayloadCodec(parse_keyring(KID2)).decode([sealed])
    other_kid1 = SensitivePayloadCodec(parse_keyring(new_key_entry("kid1")))
    with pytest.raises(CodecUnavailable, match="does not decrypt"):
        await other_kid1.decode([sealed])


async def test_payloads_it_did_not_encrypt_pass_through_both_ways():
    codec = SensitivePayloadCodec(parse_keyring(KID1))
    plain = [Payload(metadata={"encoding": b"json/plain"}, data=b'{"a":1}'),
             Payload(metadata={"encoding": b"binary/null"}),
             Payload(metadata={"encoding": ENCODING}, data=b"someone else's")]  # no key id
    assert await codec.decode(plain) == plain
    assert await codec.encode(plain) == plain


@pytest.mark.parametrize("text,fault", [
    ("kid1", "not `kid:base64key`"),
    ("kid 1:AAAA", "not `kid:base64key`"),
    ("kid1:not base64!", "not base64"),
    ("kid1:AAAA", "is 3 bytes"),
])
def test_unreadable_keys_are_refused_without_quoting_them(text, fault):
    with pytest.raises(CodecKeysInvalid, match=fault) as refused:
        parse_keyring(text)
    assert "AAAA" not in str(refused.value)


def test_a_key_id_given_twice_is_refused():
    with pytest.raises(CodecKeysInvalid, match="twice"):
        parse_keyring(f"{KID1},{KID1}")


def test_a_bad_key_setting_names_the_variable_never_the_key(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FLEETPIPE_CODEC_KEYS", "kid1:c2VjcmV0LWtleQ==")
    with pytest.raises(ValidationError) as refused:
        Settings()
    line = settings_problem(refused.value)
    assert "FLEETPIPE_CODEC_KEYS" in line and "is 10 bytes" in line
    assert "c2VjcmV0LWtleQ" not in line
