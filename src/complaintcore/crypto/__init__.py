"""Crypto-shredding of personal data (DOMAIN.md "Personal data", issue 13): each case's personal
fields are sealed under the case's own data key, the data key is kept wrapped by a master key, and
destroying the wrapped key erases the case's personal data while every stored byte (and so the
hash chain) stays as it was.

One module per job, all from the `cryptography` library (no cipher code of our own):
`suites.py` (the two cipher suites: AEAD, the chain hash, the associated data), `field_cipher.py`
(one JSON field sealed into text that fits in a payload), `keys.py` (the master key, wrapping data
keys under it), `key_cache.py` (the per-process cache of unwrapped data keys) and `blind_index.py`
(a keyed hash of an identity document, to find a complainant's other cases without storing the
number).

This package sits above `domain` and `infra` and below the event store, which is its first user.
"""
