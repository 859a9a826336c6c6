"""Who is calling, and the one rule that decides what they may see.

Keys come from ``GUIDEQA_API_KEYS`` (``key:key_id:role:group1|group2``, comma
separated) and/or a JSON/TOML file (``GUIDEQA_API_KEYS_FILE``) holding
``{"keys": [{"key": "...", "id": "...", "role": "user", "groups": ["public"]}]}``.

Roles:

* ``admin``  — everything, including ``/admin/audit.csv``; sees every access label;
* ``user``   — search, ask, check, units, documents, feedback, within its groups;
* ``widget`` — only search, ask, check and feedback (a key that sits in a web page);
* ``system`` — not a key: the evaluation runner (:data:`SYSTEM`), sees every label.

The access rule is :meth:`Caller.may_see` (one unit payload or access label) and
:meth:`Caller.query_filter` (the same rule as a vector-store filter). Every route,
the check engine, feedback and the audit export use these two and nothing else;
the filter is always explicit, never ``None``::

    >>> staff = Caller("staff1", "user", ("public",))
    >>> staff.may_see({"access": "internal"}), staff.query_filter().access
    (False, ['public'])

Only a hash of each key is kept in memory and only ``key_id`` is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from guideqa.errors import Forbidden, Unauthorized
from index.store import QueryFilter

__all__ = ["Caller", "KeyRing", "ANONYMOUS", "SYSTEM", "local_caller", "AuthError", "ForbiddenError"]

Role = Literal["admin", "user", "widget", "system"]
KEY_ROLES = ("admin", "user", "widget")
PUBLIC = "public"

# The names routes used before the error tree held them.
AuthError = Unauthorized
ForbiddenError = Forbidden


@dataclass(frozen=True)
class Caller:
    """One authenticated (or anonymous) caller: a key ID, a role and access groups."""

    key_id: str
    role: Role
    groups: tuple[str, ...] = (PUBLIC,)

    @property
    def sees_every_label(self) -> bool:
        """Admins and the system caller see every access label."""
        return self.role in ("admin", "system")

    @property
    def access(self) -> list[str] | None:
        """The ``groups=`` argument of the answer pipeline: labels, or ``None`` for every label."""
        return None if self.sees_every_label else list(self.groups)

    def may_see_label(self, label: str | None) -> bool:
        """The access rule for one label (a payload without a label is nobody's but admins')."""
        return self.sees_every_label or (label is not None and label in self.groups)

    def may_see(self, unit: dict[str, Any]) -> bool:
        """The access rule for one unit payload: its ``access`` label is one of the caller's groups."""
        return self.may_see_label(unit.get("access"))

    def query_filter(self, *, doc_ids: list[str] | None = None, issuers: list[str] | None = None,
                     kinds: list[str] | None = None, tags: list[str] | None = None) -> QueryFilter:
        """The access rule as a filter applied inside the vector-store query (plus the caller's own filters)."""
        return QueryFilter(
            access=None if self.sees_every_label else list(self.groups),
            doc_ids=list(doc_ids or []),
            issuers=list(issuers or []),
            kinds=list(kinds or []),
            tags=list(tags or []),
        )


ANONYMOUS = Caller("anonymous", "user", (PUBLIC,))
SYSTEM = Caller("system", "system", ())


def local_caller(name: str = "cli", groups: tuple[str, ...] = (PUBLIC,)) -> Caller:
    """A caller for a local command (the CLI): a user with ``groups`` (public by default)."""
    return Caller(name, "user", tuple(groups) or (PUBLIC,))


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
                ring.add(item["key"], item["id"], item.get("role", "user"), item.get("groups", [PUBLIC]))
        return ring

    def add(self, key: str, key_id: str, role: str, groups: list[str]) -> None:
        if role not in KEY_ROLES:
            raise ValueError(f"unknown role {role!r} for key {key_id}")
        if len(key) < 8:
            raise ValueError(f"key {key_id} is too short (8 characters or more)")
        self.by_digest[_digest(key)] = Caller(key_id, role, tuple(groups) or (PUBLIC,))  # type: ignore[arg-type]

    def lookup(self, key: str) -> Caller | None:
        d = _digest(key)
        for known, caller in self.by_digest.items():
            if hmac.compare_digest(known, d):
                return caller
        return None
