"""The blind index: a keyed hash of a normalised identity document, so staff can find a
complainant's other cases (Art. 18, repeat complainants) while no table holds the number.

Why keyed: identity numbers are few and structured (an 18-character resident number is an area
code, a birth date, a sequence and a check digit), so a plain hash is reversed by trying them
all. Under a secret HMAC key, a reader of the database alone cannot compute or test an index.

**The key** is one per deployment, made at random on first use and kept wrapped under the master
key in `service_keys` (`events.service_keys.service_key`), like a case's data key: the process
that writes or searches the index unwraps it once and builds an `IndexKey` of the secret and the
suite the key was recorded with. It is not derived from the master key, so a rotation of the
master key re-wraps it and every index stays valid; nothing needs recomputing.

**Normalisation** (`normalised_identity`): the same document typed differently gives the same
index: NFKC first (full-width digits and letters, as Chinese input methods type them, become
ASCII; the ideographic space becomes a space), then every space, dash (Unicode category Pd, so
`-`, `‐`, `－` and the like) and invisible format character (category Cf, e.g. a zero-width space)
is removed, and the rest is upper-cased (`x` as the check character of a resident number is `X`).
The document type is part of what is hashed, so a passport and a resident number with the same
characters never match. A number of nothing but spaces and dashes identifies no one
(`normalised_number` is empty): it has no index.

**Suites**: HMAC-SHA256 under `aes-256-gcm`, HMAC-SM3 under `sm4-gcm` (the suite recorded with
the key, not the deployment's current setting, so indexes keep their hash); 64 hex digits.
"""

from __future__ import annotations

import unicodedata

from complaintcore.crypto.keyed_hash import KeyedHash

__all__ = ["IndexKey", "blind_index", "normalised_identity", "normalised_number"]

_REMOVED_CATEGORIES = frozenset({"Pd", "Cf"})
_ID_TYPE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


IndexKey = KeyedHash
"""The blind index's key: the deployment's `service_keys` row of purpose `blind-index`."""


def normalised_identity(id_type: str, id_number: str) -> str:
    """`<id type>:<number>` in the one spelling every equivalent input shares.

    `id_type` is a code such as `resident_id` (an `IdType`), lower-cased; `ValueError` if it is
    not a code or the number is empty once normalised.
    """
    kind = str(id_type).strip().lower()
    if not kind or not set(kind) <= _ID_TYPE_CHARACTERS:
        raise ValueError(f"id_type must be a code such as 'resident_id', not {id_type!r}")
    number = normalised_number(id_number)
    if not number:
        raise ValueError("an identity number is empty once spaces and dashes are removed")
    return f"{kind}:{number}"


def normalised_number(id_number: str) -> str:
    """The number as every equivalent spelling of it reads once normalised (see the module);
    "" when nothing but spaces, dashes and invisible characters was typed."""
    if id_number.isascii() and id_number.isalnum():  # as most are typed: NFKC leaves it be
        return id_number.upper()
    return "".join(
        character
        for character in unicodedata.normalize("NFKC", id_number)
        if not character.isspace() and unicodedata.category(character) not in _REMOVED_CATEGORIES
    ).upper()


def blind_index(index_key: IndexKey, id_type: str, id_number: str) -> str:
    """The blind index of an identity document: the HMAC of its normalised form, in hex."""
    return index_key.mac(normalised_identity(id_type, id_number).encode()).hex()
