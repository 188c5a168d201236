"""Sealing personal fields of a payload, one by one (format v1) and an event's together (v2), under
both suites: whatever is sealed comes back, and any change to the text, or any other case, version,
field (or fields, or their order), key or suite, is `CiphertextRejected`."""

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
    SEALED_WITH_FIRST,
    TOGETHER_PREFIX,
    CaseFieldCipher,
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
    associated_data_together,
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


# --- sealed together (format v2) ----------------------------------------------------------------

PATHS = ("/claims", "/complainant/id_number", "/complainant/name", "/respondent_staff/0/name")
together_values = st.lists(field_values, min_size=len(PATHS), max_size=len(PATHS))


def case_cipher(suite: CipherSuite, key: bytes, case_id: str = CASE) -> CaseFieldCipher:
    return CaseFieldCipher(suite.bound(key), case_id)


def together_ciphertext(sealed: str) -> bytes:
    assert sealed.startswith(TOGETHER_PREFIX)
    text = sealed[len(TOGETHER_PREFIX) :]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@given(suite=suites, values=together_values)
def test_values_sealed_together_come_back_in_their_order(suite: CipherSuite, values: list) -> None:
    cipher = case_cipher(suite, suite.new_data_key())
    sealed = cipher.seal_together(VERSION, PATHS, values)
    assert sealed.startswith(TOGETHER_PREFIX) and sealed != SEALED_WITH_FIRST
    assert sealed.isascii() and "=" not in sealed
    assert sealed_suite_byte(sealed) == suite.suite_byte
    assert cipher.unseal_together(VERSION, PATHS, sealed) == values


@given(suite=suites, values=together_values, data=st.data())
def test_any_flipped_byte_of_values_sealed_together_is_rejected(
    suite: CipherSuite, values: list, data
) -> None:
    cipher = case_cipher(suite, suite.new_data_key())
    ciphertext = bytearray(together_ciphertext(cipher.seal_together(VERSION, PATHS, values)))
    index = data.draw(st.integers(0, len(ciphertext) - 1), label="byte")
    ciphertext[index] ^= data.draw(st.integers(1, 255), label="xor")
    altered = TOGETHER_PREFIX + base64.urlsafe_b64encode(bytes(ciphertext)).rstrip(b"=").decode()
    with pytest.raises(CiphertextRejected, match=f"version {VERSION}, sealed together"):
        cipher.unseal_together(VERSION, PATHS, altered)


@given(
    suite=suites,
    values=together_values,
    place=st.sampled_from(
        [
            ("another case", VERSION, PATHS),
            (CASE, VERSION + 1, PATHS),
            (CASE, VERSION, PATHS[1:]),  # a field dropped
            (CASE, VERSION, (*PATHS, "/facts")),  # a field added
            (CASE, VERSION, (PATHS[1], PATHS[0], *PATHS[2:])),  # two fields' values swapped
            (CASE, VERSION, ("/facts", *PATHS[1:])),  # another field
        ]
    ),
)
def test_values_sealed_together_open_only_at_their_case_version_and_fields(
    suite: CipherSuite, values: list, place: tuple[str, int, tuple[str, ...]]
) -> None:
    key = suite.new_data_key()
    sealed = case_cipher(suite, key).seal_together(VERSION, PATHS, values)
    case_id, version, paths = place
    with pytest.raises(CiphertextRejected, match="fails authentication"):
        case_cipher(suite, key, case_id).unseal_together(version, paths, sealed)


def test_one_format_never_opens_as_the_other() -> None:
    suite = suite_named(AES_256_GCM)
    cipher = case_cipher(suite, suite.new_data_key())
    alone = cipher.seal(VERSION, PATHS[0], "张三")
    together = cipher.seal_together(VERSION, PATHS[:1], ["张三"])
    with pytest.raises(CiphertextRejected, match="format 'enc:v1:' is not known"):
        cipher.unseal_together(VERSION, PATHS[:1], alone)
    with pytest.raises(CiphertextRejected, match="format 'enc:v2:' is not known"):
        cipher.unseal(VERSION, PATHS[0], together)
    # the same bytes under the other prefix: each format's associated data has a label of its own
    swapped = SEALED_PREFIX + together[len(TOGETHER_PREFIX) :]
    with pytest.raises(CiphertextRejected, match="fails authentication"):
        cipher.unseal(VERSION, PATHS[0], swapped)
    with pytest.raises(CiphertextRejected, match="empty"):
        cipher.unseal_together(VERSION, PATHS, SEALED_WITH_FIRST)


def test_sealing_together_takes_one_path_per_value() -> None:
    suite = suite_named(AES_256_GCM)
    cipher = case_cipher(suite, suite.new_data_key())
    with pytest.raises(ValueError, match="one path per value"):
        cipher.seal_together(VERSION, PATHS, ["only one"])
    with pytest.raises(ValueError, match="one value at least"):
        cipher.seal_together(VERSION, (), [])
    with pytest.raises(TypeError, match="/claims"):
        cipher.seal_together(VERSION, PATHS[:1], [{1, 2}])


def test_an_authentic_text_that_is_not_one_value_per_field_is_rejected() -> None:
    """Only a key holder could write one; still never read as if it were the fields' values."""
    suite = suite_named(AES_256_GCM)
    key = suite.new_data_key()
    associated = associated_data_together(CASE, VERSION, PATHS)
    for plaintext in (b'{"/claims": "x"}', b'["one", "too few"]'):
        text = (
            TOGETHER_PREFIX
            + base64.urlsafe_b64encode(suite.bound(key).encrypt(plaintext, associated))
            .rstrip(b"=")
            .decode()
        )
        with pytest.raises(CiphertextRejected, match="not the values of these fields"):
            case_cipher(suite, key).unseal_together(VERSION, PATHS, text)
