"""The published test vectors of the algorithms under both suites, checked through `cryptography`
directly (so a wrong answer points at the library and OpenSSL, not at our code) and through the
suites (so the suites call them the way the standards mean).

- SM4: GB/T 32907-2016 appendix A, example 1 (one block, ECB, only to check the block cipher).
- SM3: GB/T 32905-2016 appendix A, examples 1 ("abc") and 2 ("abcd" * 16).
- SM4-GCM: RFC 8998 appendix A.1.
- AES-256-GCM: test cases 14 and 16 of the GCM specification (McGrew and Viega), which are also
  in NIST's gcmEncryptExtIV256 vectors.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from complaintcore.crypto.suites import AES_256_GCM, SM4_GCM, SUITE_NAMES, suite_named

SM3_ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
SM3_ABCD_16 = "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"

GCM_TEST_CASE_16 = {
    "key": "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
    "nonce": "cafebabefacedbaddecaf888",
    "aad": "feedfacedeadbeeffeedfacedeadbeefabaddad2",
    "plaintext": "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
    "ciphertext": "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
    "tag": "76fc6ece0f4e1768cddf8853bb2d551b",
}

RFC_8998_A1 = {
    "key": "0123456789abcdeffedcba9876543210",
    "nonce": "00001234567800000000abcd",
    "aad": "feedfacedeadbeeffeedfacedeadbeefabaddad2",
    "plaintext": "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd"
    "eeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa",
    "ciphertext": "17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735"
    "d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d",
    "tag": "83de3541e4c2b58177e065a9bf7b62ec",
}


def vector(case: dict[str, str]) -> dict[str, bytes]:
    return {name: bytes.fromhex(value) for name, value in case.items()}


def sm3(data: bytes) -> str:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize().hex()


def test_sm4_block_cipher_gives_the_gb_t_32907_example() -> None:
    key = plaintext = bytes.fromhex("0123456789abcdeffedcba9876543210")
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    assert ciphertext.hex() == "681edf34d206965e86b3e94f536e4246"
    decryptor = Cipher(algorithms.SM4(key), modes.ECB()).decryptor()
    assert decryptor.update(ciphertext) + decryptor.finalize() == plaintext


@pytest.mark.parametrize(
    ("message", "expected"),
    [(b"abc", SM3_ABC), (b"abcd" * 16, SM3_ABCD_16)],
    ids=["abc", "abcd*16"],
)
def test_sm3_gives_the_gb_t_32905_examples(message: bytes, expected: str) -> None:
    assert sm3(message) == expected
    assert suite_named(SM4_GCM).chain_hash(message) == expected


def test_sm4_gcm_gives_the_rfc_8998_example() -> None:
    v = vector(RFC_8998_A1)
    encryptor = Cipher(algorithms.SM4(v["key"]), modes.GCM(v["nonce"])).encryptor()
    encryptor.authenticate_additional_data(v["aad"])
    assert encryptor.update(v["plaintext"]) + encryptor.finalize() == v["ciphertext"]
    assert encryptor.tag == v["tag"]
    decryptor = Cipher(algorithms.SM4(v["key"]), modes.GCM(v["nonce"], v["tag"])).decryptor()
    decryptor.authenticate_additional_data(v["aad"])
    assert decryptor.update(v["ciphertext"]) + decryptor.finalize() == v["plaintext"]


def test_aes_256_gcm_gives_the_gcm_specification_test_case_14() -> None:
    sealed = AESGCM(bytes(32)).encrypt(bytes(12), bytes(16), None)
    assert sealed.hex() == "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919"


def test_aes_256_gcm_gives_the_gcm_specification_test_case_16() -> None:
    v = vector(GCM_TEST_CASE_16)
    aead = AESGCM(v["key"])
    assert aead.encrypt(v["nonce"], v["plaintext"], v["aad"]) == v["ciphertext"] + v["tag"]
    assert aead.decrypt(v["nonce"], v["ciphertext"] + v["tag"], v["aad"]) == v["plaintext"]


def test_sha_256_chain_hash_gives_the_fips_180_example() -> None:
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert suite_named(AES_256_GCM).chain_hash(b"abc") == expected


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_each_suite_passes_its_own_known_answer_test(name: str) -> None:
    suite_named(name).self_test()
