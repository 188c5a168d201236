"""The cipher suites: the ciphertext layout, refusals, the chain hash of each suite, and the
associated data that binds a ciphertext to its case, version and field."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from complaintcore.crypto.suites import (
    AES_256_GCM,
    NONCE_BYTES,
    SM4_GCM,
    SUITE_NAMES,
    TAG_BYTES,
    CipherSuite,
    CiphertextRejected,
    SuiteUnavailable,
    UnknownSuite,
    associated_data,
    suite_named,
    suite_of_ciphertext,
)

suites = st.sampled_from(SUITE_NAMES).map(suite_named)
AD = associated_data("case-1", 1, "/complainant/name")


@pytest.fixture(params=SUITE_NAMES)
def suite(request: pytest.FixtureRequest) -> CipherSuite:
    return suite_named(request.param)


def test_keys_have_each_suites_length() -> None:
    assert len(suite_named(AES_256_GCM).new_data_key()) == 32
    assert len(suite_named(SM4_GCM).new_data_key()) == 16


def test_a_ciphertext_is_suite_byte_nonce_body_and_tag(suite: CipherSuite) -> None:
    key = suite.new_data_key()
    ciphertext = suite.encrypt(key, b"hello", AD)
    assert ciphertext[0] == suite.suite_byte
    assert len(ciphertext) == 1 + NONCE_BYTES + len(b"hello") + TAG_BYTES
    assert suite_of_ciphertext(ciphertext) is suite
    assert suite.decrypt(key, ciphertext, AD) == b"hello"


def test_every_encryption_takes_a_fresh_nonce(suite: CipherSuite) -> None:
    key = suite.new_data_key()
    nonces = {suite.encrypt(key, b"same", AD)[1 : 1 + NONCE_BYTES] for _ in range(50)}
    assert len(nonces) == 50


@given(suite=suites, plaintext=st.binary(max_size=300), associated=st.binary(max_size=100))
def test_decrypt_gives_back_what_encrypt_sealed(
    suite: CipherSuite, plaintext: bytes, associated: bytes
) -> None:
    key = suite.new_data_key()
    assert suite.decrypt(key, suite.encrypt(key, plaintext, associated), associated) == plaintext


@given(suite=suites, plaintext=st.binary(max_size=64), data=st.data())
def test_any_flipped_bit_is_rejected(suite: CipherSuite, plaintext: bytes, data) -> None:
    key = suite.new_data_key()
    ciphertext = bytearray(suite.encrypt(key, plaintext, AD))
    index = data.draw(st.integers(0, len(ciphertext) - 1), label="byte")
    ciphertext[index] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    with pytest.raises(CiphertextRejected):
        suite.decrypt(key, bytes(ciphertext), AD)


def test_another_key_or_associated_data_is_rejected(suite: CipherSuite) -> None:
    key = suite.new_data_key()
    ciphertext = suite.encrypt(key, b"hello", AD)
    with pytest.raises(CiphertextRejected, match="fails authentication"):
        suite.decrypt(suite.new_data_key(), ciphertext, AD)
    with pytest.raises(CiphertextRejected, match="fails authentication"):
        suite.decrypt(key, ciphertext, associated_data("case-1", 2, "/complainant/name"))


def test_a_suite_refuses_the_other_suites_ciphertext() -> None:
    aes, sm4 = suite_named(AES_256_GCM), suite_named(SM4_GCM)
    ciphertext = sm4.encrypt(sm4.new_data_key(), b"hello", AD)
    with pytest.raises(CiphertextRejected, match="names suite sm4-gcm, not aes-256-gcm"):
        aes.decrypt(aes.new_data_key(), ciphertext, AD)


def test_a_truncated_or_unknown_ciphertext_is_rejected(suite: CipherSuite) -> None:
    key = suite.new_data_key()
    ciphertext = suite.encrypt(key, b"", AD)
    with pytest.raises(CiphertextRejected, match="too short"):
        suite.decrypt(key, ciphertext[:-1], AD)
    with pytest.raises(CiphertextRejected, match="byte 9, which is not known"):
        suite_of_ciphertext(b"\x09" + ciphertext[1:])
    with pytest.raises(CiphertextRejected):
        suite_of_ciphertext(b"")


def test_a_key_of_the_wrong_length_is_a_programming_error() -> None:
    sm4 = suite_named(SM4_GCM)
    with pytest.raises(ValueError, match="sm4-gcm takes 16-byte keys, not 32 bytes"):
        sm4.encrypt(bytes(32), b"x", AD)


def test_ciphertext_rejected_is_a_value_error() -> None:
    assert issubclass(CiphertextRejected, ValueError)


def test_the_chain_hashes_differ_between_suites() -> None:
    aes, sm4 = suite_named(AES_256_GCM), suite_named(SM4_GCM)
    assert aes.chain_hash(b"event") == hashlib.sha256(b"event").hexdigest()
    assert sm4.chain_hash(b"event") != aes.chain_hash(b"event")
    assert len(sm4.chain_hash(b"event")) == len(aes.chain_hash(b"event")) == 64


def test_an_unknown_suite_name_is_refused_with_the_choices() -> None:
    with pytest.raises(UnknownSuite, match="choose one of aes-256-gcm, sm4-gcm"):
        suite_named("aes-128-cbc")


def test_a_suite_this_openssl_cannot_run_is_refused_by_its_self_test() -> None:
    def unsupported(*_: bytes) -> bytes:
        raise UnsupportedAlgorithm("sm4 is not supported by this backend")

    crippled = dataclasses.replace(suite_named(SM4_GCM), _bind=unsupported)
    with pytest.raises(
        SuiteUnavailable, match=r"sm4-gcm is not available here: .* \(cryptography \d+\."
    ):
        crippled.self_test()


def test_a_suite_giving_a_wrong_answer_is_refused_by_its_self_test() -> None:
    class LastByteWrong:
        def __init__(self, key: bytes) -> None:
            self._right = AESGCM(key)

        def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes:
            return self._right.encrypt(nonce, data, associated_data)[:-1] + b"\x00"

        def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes:
            return self._right.decrypt(nonce, data, associated_data)

    wrong = dataclasses.replace(suite_named(AES_256_GCM), _bind=LastByteWrong)
    with pytest.raises(SuiteUnavailable, match="fails its known-answer test"):
        wrong.self_test()


places = st.tuples(
    st.text(min_size=1, max_size=20), st.integers(1, 2**63 - 1), st.text(max_size=20)
)


@given(first=places, second=places)
def test_associated_data_is_one_to_one(
    first: tuple[str, int, str], second: tuple[str, int, str]
) -> None:
    assert (associated_data(*first) == associated_data(*second)) == (first == second)


def test_associated_data_separates_case_and_path() -> None:
    assert associated_data("ab", 1, "c") != associated_data("a", 1, "bc")


@pytest.mark.parametrize("version", [0, -1, 2**63, True, 1.0])
def test_associated_data_refuses_a_version_out_of_range(version: object) -> None:
    with pytest.raises(ValueError, match="version"):
        associated_data("case-1", version, "/x")  # type: ignore[arg-type]


def test_associated_data_refuses_an_empty_case_id() -> None:
    with pytest.raises(ValueError, match="case_id"):
        associated_data("", 1, "/x")
