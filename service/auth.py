"""API keys → callers with a role and access groups.

Keys come from ``GUIDEQA_API_KEYS`` (``key:key_id:role:group1|group2``, comma
separated) and/or a JSON/TOML file (``GUIDEQA_API_KEYS_FILE``) holding
``{"keys": [{"key": "...", "id": "...", "role": "user", "groups": ["public"]}]}``.

Roles:

* ``admin``  — everything, including ``/admin/audit.csv``; sees every access label;
* ``user``   — search, ask, check, units, documents, feedback, within its groups;
* ``widget`` — only search, ask, check and feedback (a key that sits in a web page).

Only a hash of each key is kept in memory and only ``key_id`` is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from guideqa.errors import GuideQAError

__all__ = ["Caller", "KeyRing", "ANONYMOUS", "AuthError", "ForbiddenError"]

Role = Literal["admin", "user", "widget"]


class AuthError(GuideQAError):
    """Missing or unknown API key."""

    code = "unauthorized"
    default_message = "API キーが必要です。正しいキーを X-API-Key ヘッダーで指定してください。"


class ForbiddenError(GuideQAError):
    """The key's role does not allow this operation."""

    code = "forbidden"
    default_message = "この操作を行う権限がありません。"


@dataclass(frozen=True)
class Caller:
    key_id: str
    role: Role
    groups: tuple[str, ...] = ("public",)

    @property
    def access(self) -> list[str] | None:
        """Access labels this caller may see; ``None`` means unrestricted (admin)."""
        return None if self.role == "admin" else list(self.groups)


ANONYMOUS = Caller("anonymous", "user", ("public",))


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass
class KeyRing:
    by_digest: dict[str, Caller] = field(default_factory=dict)

    @classmethod
    def load(cls, inline: str | None, path: Path | None) -> "KeyRing":
        ring = cls()
        if inline:
            for entry in inline.split(","):
                entry = entry.strip()
                if not entry:
                    continue
                parts = entry.split(":")
                if len(parts) != 4:
                    raise ValueError("GUIDEQA_API_KEYS entries must be key:key_id:role:group1|group2")
                ring.add(parts[0], parts[1], parts[2], [g for g in parts[3].split("|") if g])
        if path:
            raw = path.read_bytes()
            data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
            for item in data.get("keys", []):
                ring.add(item["key"], item["id"], item.get("role", "user"), item.get("groups", ["public"]))
        return ring

    def add(self, key: str, key_id: str, role: str, groups: list[str]) -> None:
        if role not in ("admin", "user", "widget"):
            raise ValueError(f"unknown role {role!r} for key {key_id}")
        if len(key) < 8:
            raise ValueError(f"key {key_id} is too short (8 characters or more)")
        self.by_digest[_digest(key)] = Caller(key_id, role, tuple(groups) or ("public",))  # type: ignore[arg-type]

    def lookup(self, key: str) -> Caller | None:
        d = _digest(key)
        for known, caller in self.by_digest.items():
            if hmac.compare_digest(known, d):
                return caller
        return None
