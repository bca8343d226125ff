"""Bearer tokens and roles. Only token hashes are stored; every route names the roles it admits."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fastapi import Depends, HTTPException, Request

ROLES = ("operator", "doctor", "patient", "regulator", "system", "share")


@dataclass(frozen=True)
class Principal:
    """Who calls. A ``patient`` sees only the studies of ``person_key`` (and hospital records linked to it); a
    ``share`` (someone the patient gave a link and code) sees only ``studies`` until ``expires_at``."""

    name: str
    role: str
    hospital: str | None = None
    person_key: str | None = None
    studies: frozenset[str] | None = None
    expires_at: float | None = None  # unix time; None: until revoked


class TokenStore:
    def __init__(self, entries: dict[str, Principal]) -> None:
        self._by_hash = entries

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def principal(self, token: str) -> Principal | None:
        return self._by_hash.get(self.hash(token))

    @classmethod
    def load(cls, path: Path) -> "TokenStore":
        doc = json.loads(path.read_text())
        return cls({e["sha256"]: Principal(e["name"], e["role"], e.get("hospital"), e.get("person_key"),
                                           frozenset(e["studies"]) if "studies" in e else None, e.get("expires_at"))
                    for e in doc["tokens"]})

    @classmethod
    def create_dev(cls, path: Path) -> dict[str, str]:
        """First start: one token per role for the demo. Returns role -> token (shown once, kept 0600 beside)."""
        tokens = {role: f"wy_{role}_{secrets.token_urlsafe(18)}" for role in ROLES if role != "share"}
        doc = {"tokens": [{"sha256": cls.hash(t), "name": f"demo-{r}", "role": r,
                           "hospital": "AH-HF-001" if r in ("doctor", "system") else None}
                          for r, t in tokens.items()]}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2))
        plain = path.with_name("dev-tokens.json")
        fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(tokens, fh, indent=2)
        return tokens


def issue_token(path: Path, principal: Principal, prefix: str = "wy") -> str:
    """Add a token for ``principal`` to the token file (only its SHA-256 is stored); returns the token. Patient and
    share tokens carry their scope: ``person_key``, or ``studies`` and ``expires_at``."""
    token = f"{prefix}_{principal.role}_{secrets.token_urlsafe(24)}"
    doc = json.loads(path.read_text()) if path.exists() else {"tokens": []}
    entry = {"sha256": TokenStore.hash(token), "name": principal.name, "role": principal.role,
             "hospital": principal.hospital}
    if principal.person_key:
        entry["person_key"] = principal.person_key
    if principal.studies is not None:
        entry["studies"] = sorted(principal.studies)
    if principal.expires_at is not None:
        entry["expires_at"] = principal.expires_at
    doc["tokens"].append(entry)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(path)
    return token


def require(*roles: str) -> Callable[[Request], Principal]:
    """A dependency that admits a bearer token of one of ``roles``."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    def check(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        principal = request.app.state.tokens.principal(token.strip())
        if principal is None:
            raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
        if principal.expires_at is not None and principal.expires_at < time.time():
            raise HTTPException(401, "token expired: ask for a new link", headers={"WWW-Authenticate": "Bearer"})
        if principal.role not in roles:
            raise HTTPException(403, f"role {principal.role!r} may not do this (needs one of {', '.join(roles)})")
        return principal

    check.roles = roles  # type: ignore[attr-defined]  # lets tests list every route's roles
    return check


def role(*roles: str):
    return Depends(require(*roles))
