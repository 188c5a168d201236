"""The blind index: a keyed hash of a normalised identity document, so staff can find a
complainant's other cases (Art. 18, repeat complainants) while no table holds the number.

Why keyed: identity numbers are few and structured (an 18-character resident number is an area
code, a birth date, a sequence and a check digit), so a plain hash is reversed by trying them
all. Under an HMAC key derived from the master key (HKDF, `keys.FileKeyProvider.derive_key`), a
reader of the database alone cannot compute or test an index.

**Normalisation** (`normalised_identity`): the same document typed differently gives the same
index: NFKC first (full-width digits and letters, as Chinese input methods type them, become
ASCII; the ideographic space becomes a space), then every space, dash (Unicode category Pd, so
`-`, `‐`, `－` and the like) and invisible format character (category Cf, e.g. a zero-width space)
is removed, and the rest is upper-cased (`x` as the check character of a resident number is `X`).
The document type is part of what is hashed, so a passport and a resident number with the same
characters never match.

**Suites**: HMAC-SHA256 under `aes-256-gcm`, HMAC-SM3 under `sm4-gcm`; the index is 64 hex digits.

**Rotation**: the index key is derived from the master key, so a new master key gives new
indexes; `keys rotate` must recompute the index column (from the decrypted identity fields, as a
projection rebuild does) along with re-wrapping the data keys.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hmac

from complaintcore.crypto.keys import KeyDeriver
from complaintcore.crypto.suites import CipherSuite

__all__ = ["INDEX_KEY_PURPOSE", "IndexKey", "blind_index", "normalised_identity"]

INDEX_KEY_PURPOSE = "blind-index"
_INDEX_KEY_BYTES = 32
_REMOVED_CATEGORIES = frozenset({"Pd", "Cf"})
_ID_TYPE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True)
class IndexKey:
    """The HMAC key of the blind index, and the suite whose hash it uses."""

    secret: bytes = field(repr=False)
    suite: CipherSuite

    @classmethod
    def derive(cls, deriver: KeyDeriver, suite: CipherSuite) -> IndexKey:
        """The deployment's index key, derived from the master key `deriver` holds."""
        return cls(deriver.derive_key(INDEX_KEY_PURPOSE, _INDEX_KEY_BYTES), suite)


def normalised_identity(id_type: str, id_number: str) -> str:
    """`<id type>:<number>` in the one spelling every equivalent input shares.

    `id_type` is a code such as `resident_id` (an `IdType`), lower-cased; `ValueError` if it is
    not a code or the number is empty once normalised.
    """
    kind = str(id_type).strip().lower()
    if not kind or not set(kind) <= _ID_TYPE_CHARACTERS:
        raise ValueError(f"id_type must be a code such as 'resident_id', not {id_type!r}")
    number = "".join(
        character
        for character in unicodedata.normalize("NFKC", id_number)
        if not character.isspace() and unicodedata.category(character) not in _REMOVED_CATEGORIES
    ).upper()
    if not number:
        raise ValueError("an identity number is empty once spaces and dashes are removed")
    return f"{kind}:{number}"


def blind_index(index_key: IndexKey, id_type: str, id_number: str) -> str:
    """The blind index of an identity document: the HMAC of its normalised form, in hex."""
    mac = hmac.HMAC(index_key.secret, index_key.suite.hash_algorithm())
    mac.update(normalised_identity(id_type, id_number).encode())
    return mac.finalize().hex()
