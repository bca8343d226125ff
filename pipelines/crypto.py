"""Field encryption (AES-256-GCM) and keyed look-up tokens (HMAC-SHA256).

An encrypted value carries the id of the key that made it (``enc1.<kid>.<b64>``), so keys rotate: new values use
the active key, old values stay readable while their key is in the ring. Dropping a key crypto-shreds everything
encrypted under it. Tokens (``tok1.<kid>.<hex>``) let us find a person by phone or ID number without storing
either. The person partition key is an HMAC under a key that never rotates (rotating it would move people
between partitions); it is kept apart from the token keys.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class CryptoError(ValueError):
    pass


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Keyring:
    """Data keys by id, the active one, and the partition-key secret."""

    data_keys: dict[str, bytes]
    active: str
    partition_secret: bytes
    token_keys: dict[str, bytes] = field(default_factory=dict)
    active_token: str = ""
    shredded: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.active not in self.data_keys:
            raise CryptoError(f"active key {self.active!r} is not in the key ring")
        if not self.token_keys:
            self.token_keys = {"t1": hashlib.sha256(b"wanying-token|" + self.partition_secret).digest()}
        if not self.active_token:
            self.active_token = sorted(self.token_keys)[-1]
        for kid, key in self.data_keys.items():
            if len(key) != 32:
                raise CryptoError(f"data key {kid!r} must be 32 bytes")

    # --- encryption

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        """Encrypt text; ``context`` (e.g. the field name) is bound as associated data."""
        nonce = os.urandom(12)
        sealed = AESGCM(self.data_keys[self.active]).encrypt(nonce, plaintext.encode(), context.encode())
        return f"enc1.{self.active}.{_b64e(nonce + sealed)}"

    def decrypt(self, value: str, *, context: str = "") -> str:
        try:
            scheme, kid, body = value.split(".", 2)
        except ValueError:
            raise CryptoError("not an encrypted value") from None
        if scheme != "enc1":
            raise CryptoError(f"unknown encryption scheme {scheme!r}")
        if kid in self.shredded:
            raise CryptoError(f"key {kid!r} was shredded: values encrypted under it are gone for good")
        key = self.data_keys.get(kid)
        if key is None:
            raise CryptoError(f"key {kid!r} is not in the key ring (load the key ring that made this value)")
        try:
            raw = _b64d(body)
        except ValueError:
            raise CryptoError("encrypted value is not valid base64url") from None
        if len(raw) < 12 + 16:
            raise CryptoError("encrypted value is too short to be AES-GCM ciphertext")
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise CryptoError("ciphertext does not authenticate (wrong key, context or tampered)") from None

    # --- tokens and keys

    def token(self, kind: str, normalised: str) -> str:
        digest = hmac.new(self.token_keys[self.active_token], f"{kind}|{normalised}".encode(), hashlib.sha256)
        return f"tok1.{self.active_token}.{digest.hexdigest()}"

    def person_key(self, normalised_id_number: str) -> str:
        return hmac.new(self.partition_secret, normalised_id_number.encode(), hashlib.sha256).hexdigest()

    def hospital_person_key(self, hospital: str, hospital_patient_id: str) -> str:
        digest = hmac.new(self.partition_secret, f"{hospital}|{hospital_patient_id}".encode(), hashlib.sha256)
        return f"h.{hospital}.{digest.hexdigest()[:32]}"

    def purpose_secret(self, purpose: str) -> bytes:
        """A 32-byte secret for one purpose (e.g. signing stream tickets), the same in every process that loads
        this key ring, so a ticket one API process signs verifies in another behind the same balancer."""
        return hmac.new(self.partition_secret, f"wanying-purpose|{purpose}".encode(), hashlib.sha256).digest()

    # --- persistence

    @classmethod
    def generate(cls) -> "Keyring":
        return cls(data_keys={"k1": os.urandom(32)}, active="k1", partition_secret=os.urandom(32))

    def rotate(self) -> str:
        """Add a new data key and make it active; returns its id. Ids are never reused, not even shredded ones."""
        used = set(self.data_keys) | self.shredded
        n = len(used) + 1
        while f"k{n}" in used:
            n += 1
        kid = f"k{n}"
        self.data_keys[kid] = os.urandom(32)
        self.active = kid
        return kid

    def shred(self, kid: str) -> None:
        """Destroy a data key: every value encrypted under it becomes unreadable (crypto-shredding)."""
        if kid == self.active:
            raise CryptoError(f"key {kid!r} is active; rotate to a new key before shredding it")
        if kid not in self.data_keys:
            raise CryptoError(f"key {kid!r} is not in the key ring")
        del self.data_keys[kid]
        self.shredded.add(kid)

    def to_json(self) -> str:
        return json.dumps(
            {
                "active": self.active,
                "data_keys": {k: _b64e(v) for k, v in self.data_keys.items()},
                "partition_secret": _b64e(self.partition_secret),
                "token_keys": {k: _b64e(v) for k, v in self.token_keys.items()},
                "active_token": self.active_token,
                "shredded": sorted(self.shredded),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> "Keyring":
        doc = json.loads(text)
        return cls(
            data_keys={k: _b64d(v) for k, v in doc["data_keys"].items()},
            active=doc["active"],
            partition_secret=_b64d(doc["partition_secret"]),
            token_keys={k: _b64d(v) for k, v in doc.get("token_keys", {}).items()},
            active_token=doc.get("active_token", ""),
            shredded=set(doc.get("shredded", [])),
        )

    @classmethod
    def load_or_create(cls, path: Path) -> "Keyring":
        """Load the key file, creating it (mode 0600) on first start. Production keys come from the KMS."""
        if path.exists():
            return cls.from_json(path.read_text())
        ring = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(ring.to_json())
        return ring
