"""The blind index of an identity document: one index for every spelling of the same document,
another for another key, suite or document type, and never the number itself."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from hypothesis import given
from hypothesis import strategies as st

from complaintcore.crypto.blind_index import (
    IndexKey,
    blind_index,
    normalised_identity,
    normalised_number,
)
from complaintcore.crypto.suites import AES_256_GCM, SM4_GCM, suite_named

NUMBER = "11010519491231002X"
SPELLINGS = [
    "11010519491231002X",
    "11010519491231002x",
    " 110105 19491231 002X ",
    "110105-19491231-002x",
    "１１０１０５１９４９１２３１００２Ｘ",  # full-width, as Chinese input methods type it
    "110105　19491231　002X",  # ideographic spaces
    "110105－19491231‐002X",  # full-width hyphen-minus, Unicode hyphen
    "1101051949\u200b1231002X",  # zero-width space
    "\t110105\n19491231002X",
]

AES_KEY = IndexKey(b"k" * 32, suite_named(AES_256_GCM))
OTHER_KEY = IndexKey(b"j" * 32, suite_named(AES_256_GCM))
SM4_KEY = IndexKey(b"k" * 32, suite_named(SM4_GCM))


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_normalises_alike(spelling: str) -> None:
    assert normalised_identity("resident_id", spelling) == f"resident_id:{NUMBER}"
    assert blind_index(AES_KEY, "resident_id", spelling) == blind_index(
        AES_KEY, "resident_id", NUMBER
    )


def test_the_document_type_is_part_of_the_index() -> None:
    assert normalised_identity(" Passport ", "e1234567") == "passport:E1234567"
    assert blind_index(AES_KEY, "passport", NUMBER) != blind_index(AES_KEY, "resident_id", NUMBER)


def test_other_keys_and_suites_give_other_indexes() -> None:
    indexes = {
        key: blind_index(key, "resident_id", NUMBER) for key in (AES_KEY, OTHER_KEY, SM4_KEY)
    }
    assert len(set(indexes.values())) == 3


def test_the_index_is_hmac_sha256_or_hmac_sm3_of_the_normalised_form() -> None:
    for key, algorithm in ((AES_KEY, hashes.SHA256()), (SM4_KEY, hashes.SM3())):
        mac = hmac.HMAC(key.secret, algorithm)
        mac.update(f"resident_id:{NUMBER}".encode())
        assert blind_index(key, "resident_id", "110105 19491231 002x") == mac.finalize().hex()


resident_numbers = st.builds(
    lambda body, check: body + check,
    st.text("0123456789", min_size=17, max_size=17),
    st.sampled_from("0123456789Xx"),
)


@given(number=resident_numbers)
def test_the_index_never_contains_the_number(number: str) -> None:
    for key in (AES_KEY, SM4_KEY):
        index = blind_index(key, "resident_id", number)
        assert len(index) == 64 and set(index) <= set("0123456789abcdef")
        assert number.upper() not in index.upper()
        assert number[:8] not in index and number[-8:].upper() not in index.upper()


def test_the_key_is_never_shown() -> None:
    assert "k" * 32 not in repr(AES_KEY) and (b"k" * 32).hex() not in repr(AES_KEY)


@pytest.mark.parametrize("spelling", ["", " ", " - －　", "\u200b", "‐—"])
def test_a_number_of_spaces_and_dashes_only_normalises_to_nothing(spelling: str) -> None:
    assert normalised_number(spelling) == ""


@pytest.mark.parametrize(
    ("id_type", "id_number"),
    [("resident_id", ""), ("resident_id", " - －　"), ("", NUMBER), ("resident id", NUMBER)],
)
def test_an_empty_number_or_a_type_that_is_not_a_code_is_refused(
    id_type: str, id_number: str
) -> None:
    with pytest.raises(ValueError):
        normalised_identity(id_type, id_number)
