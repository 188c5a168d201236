"""Sealing one personal field of a payload, under both suites: whatever is sealed comes back, and
any change to the text, or any other case, version, field, key or suite, is `CiphertextRejected`."""

from __future__ import annotations

import base64
from datetime import date
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from complaintcore.crypto.field_cipher import (
    SEALED_PREFIX,
    _ciphertext,
    is_sealed,
    seal,
    sealed_suite_byte,
    unseal,
)
from complaintcore.crypto.suites import (
    AES_256_GCM,
    SM4_GCM,
    SUITE_NAMES,
    CipherSuite,
    CiphertextRejected,
    suite_named,
)

CASE, VERSION, PATH = "0b7e4c1a-2f7d-4a51-9d2c-6c4f0e6a1b11", 3, "/complainant/id_number"

suites = st.sampled_from(SUITE_NAMES).map(suite_named)
texts = st.text(max_size=40)  # hypothesis leaves out lone surrogates, which JSON cannot carry
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(texts, children, max_size=5),
    max_leaves=20,
)
field_values = json_values | st.lists(texts, max_size=5)  # a str, a list of str, a dict, ...


def decoded(sealed: str) -> bytes:
    text = sealed[len(SEALED_PREFIX) :]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encoded(ciphertext: bytes) -> str:
    return SEALED_PREFIX + base64.urlsafe_b64encode(ciphertext).rstrip(b"=").decode()


@given(suite=suites, value=field_values)
def test_unseal_gives_back_any_json_value(suite: CipherSuite, value: Any) -> None:
    key = suite.new_data_key()
    sealed = seal(suite, key, CASE, VERSION, PATH, value)
    assert unseal(suite, key, CASE, VERSION, PATH, sealed) == value


@given(suite=suites, value=field_values, data=st.data())
def test_any_flipped_ciphertext_byte_is_rejected(suite: CipherSuite, value: Any, data) -> None:
    key = suite.new_data_key()
    ciphertext = bytearray(decoded(seal(suite, key, CASE, VERSION, PATH, value)))
    index = data.draw(st.integers(0, len(ciphertext) - 1), label="byte")
    ciphertext[index] ^= data.draw(st.integers(1, 255), label="xor")
    with pytest.raises(CiphertextRejected, match=PATH):
        unseal(suite, key, CASE, VERSION, PATH, encoded(bytes(ciphertext)))


@given(suite=suites, value=texts, data=st.data())
def test_any_changed_character_of_the_text_is_rejected(
    suite: CipherSuite, value: str, data
) -> None:
    key = suite.new_data_key()
    sealed = seal(suite, key, CASE, VERSION, PATH, value)
    index = data.draw(st.integers(len(SEALED_PREFIX), len(sealed) - 1), label="character")
    other = data.draw(st.characters().filter(lambda c: c != sealed[index]), label="by")
    with pytest.raises(CiphertextRejected):
        unseal(suite, key, CASE, VERSION, PATH, sealed[:index] + other + sealed[index + 1 :])


@given(
    suite=suites,
    value=field_values,
    place=st.sampled_from(
        [
            ("c0ffee00-0000-4000-8000-000000000000", VERSION, PATH),
            (CASE, VERSION + 1, PATH),
            (CASE, VERSION, "/complainant/name"),
            (CASE, VERSION, "/agent/id_number"),
        ]
    ),
)
def test_another_case_version_or_field_is_rejected(
    suite: CipherSuite, value: Any, place: tuple[str, int, str]
) -> None:
    key = suite.new_data_key()
    sealed = seal(suite, key, CASE, VERSION, PATH, value)
    with pytest.raises(CiphertextRejected, match="fails authentication"):
        unseal(suite, key, *place, sealed)


@given(suite=suites, value=field_values)
def test_another_key_is_rejected(suite: CipherSuite, value: Any) -> None:
    sealed = seal(suite, suite.new_data_key(), CASE, VERSION, PATH, value)
    with pytest.raises(CiphertextRejected, match="fails authentication"):
        unseal(suite, suite.new_data_key(), CASE, VERSION, PATH, sealed)


def test_the_other_suite_is_rejected() -> None:
    aes, sm4 = suite_named(AES_256_GCM), suite_named(SM4_GCM)
    sealed = seal(sm4, sm4.new_data_key(), CASE, VERSION, PATH, "张三")
    assert sealed_suite_byte(sealed) == sm4.suite_byte
    with pytest.raises(CiphertextRejected, match="names suite sm4-gcm, not aes-256-gcm"):
        unseal(aes, aes.new_data_key(), CASE, VERSION, PATH, sealed)


def test_sealed_text_is_json_safe_ascii_that_hides_the_value() -> None:
    suite = suite_named(AES_256_GCM)
    sealed = seal(suite, suite.new_data_key(), CASE, VERSION, PATH, "110105194912310021")
    assert sealed.startswith("enc:v1:")
    assert sealed.isascii() and "=" not in sealed
    assert orjson.loads(orjson.dumps({"id_number": sealed})) == {"id_number": sealed}
    assert "110105194912310021" not in sealed


def test_is_sealed_tells_sealed_text_from_plain_values() -> None:
    suite = suite_named(SM4_GCM)
    sealed = seal(suite, suite.new_data_key(), CASE, VERSION, PATH, "李四")
    assert is_sealed(sealed)
    assert is_sealed("enc:v2:AAAA")  # a later format is still ciphertext, never shown as text
    for plain in ("李四", "enc", "encrypted", "enc:vx:AAAA", None, 3, ["enc:v1:AAAA"]):
        assert not is_sealed(plain)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("李四", "no 'enc:v1:' prefix"),
        ("enc:v2:AAAA", "format 'enc:v2:' is not known"),
        ("enc:v1:AA+A", "not unpadded base64url"),
        ("enc:v1:AAAA=", "not unpadded base64url"),
        ("enc:v1:AA/A", "not unpadded base64url"),
        ("enc:v1:AA A", "not unpadded base64url"),
        ("enc:v1:AA\nA", "not unpadded base64url"),
        ("enc:v1:AAé", "not unpadded base64url"),
        ("enc:v1:A", "not unpadded base64url"),
        ("enc:v1:AA=A", "not unpadded base64url"),
        ("enc:v1:AB", "not canonical base64url"),
        ("enc:v1:AAB", "not canonical base64url"),
        ("enc:v1:", "empty"),
        ("enc:v1:AQ", "too short"),
    ],
)
def test_text_that_is_not_a_sealed_value_is_rejected(text: str, reason: str) -> None:
    suite = suite_named(AES_256_GCM)
    with pytest.raises(CiphertextRejected, match=reason):
        unseal(suite, suite.new_data_key(), CASE, VERSION, PATH, text)


@pytest.mark.parametrize("value", [{1, 2}, date(2026, 1, 1), b"bytes", 2**64])
def test_only_json_values_are_sealed(value: object) -> None:
    suite = suite_named(AES_256_GCM)
    with pytest.raises(TypeError, match=PATH):
        seal(suite, suite.new_data_key(), CASE, VERSION, PATH, value)


_URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@given(ciphertext=st.binary(min_size=1, max_size=80), data=st.data())
def test_one_text_per_ciphertext_and_none_other(ciphertext: bytes, data) -> None:
    """The text `encoded` makes reads back as its bytes (checked against the standard library);
    any other last character standing for the same bytes (unused low bits set) is refused."""
    text = encoded(ciphertext)
    assert _ciphertext(text) == ciphertext == decoded(text)  # the bytes `unseal` opens
    unused_bits = {1: 4, 2: 2}.get(len(ciphertext) % 3)
    if unused_bits is None:
        return  # a whole number of groups: every character carries data
    value = _URLSAFE.index(text[-1])
    low = data.draw(st.integers(1, 2**unused_bits - 1), label="unused bits set")
    other = text[:-1] + _URLSAFE[value | low]
    with pytest.raises(CiphertextRejected, match="not canonical base64url"):
        _ciphertext(other)
