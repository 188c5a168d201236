"""An HMAC under one of the service's own keys (`events.service_keys`): the blind index's
(`blind_index`) and the request fingerprints' (`application.idempotency`). HMAC-SHA256 under the
`aes-256-gcm` suite, HMAC-SM3 under `sm4-gcm`: the suite the key was recorded with."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hmac

from complaintcore.crypto.suites import CipherSuite

__all__ = ["KeyedHash"]


@dataclass(frozen=True)
class KeyedHash:
    """An HMAC key of the service (`events.service_keys`), and the suite whose hash it uses."""

    secret: bytes = field(repr=False)
    suite: CipherSuite
    # the HMAC keyed once, copied for each index: a copy costs a third of keying anew (a rebuild
    # and an import index every case)
    _keyed: hmac.HMAC = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keyed", hmac.HMAC(self.secret, self.suite.hash_algorithm()))

    def mac(self, data: bytes) -> bytes:
        """The HMAC of `data` under this key."""
        mac = self._keyed.copy()
        mac.update(data)
        return mac.finalize()
