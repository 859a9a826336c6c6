"""The confidentiality rules file: classes, service attributes and the units they cite.

Rules are data (``service/data/check_rules.yaml``); this module loads them into
typed objects and checks each one against the live index: the cited unit must
exist and still contain the quoted words. Anything wrong stops start-up with a
message naming the rule.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError

from guideqa.errors import RulesError
from ingest.cleaning import squash

__all__ = [
    "Verdict", "VerdictRule", "ClassRule", "AttributeRule", "CheckRules", "load_rules", "read_rules_file",
    "DEFAULT_RULES", "SERVICE_TYPES", "mentions",
]

DEFAULT_RULES = Path(__file__).resolve().parent.parent / "data" / "check_rules.yaml"
_M = TypeVar("_M", bound=BaseModel)
Verdict = Literal["可", "条件付きで可", "不可", "判断できない"]
SERVICE_TYPES = ("yakkan", "ismap", "lgwan", "cloud", "unknown")

# What follows a word that the asker says is NOT the case: 「約款型じゃなく」「ネット以外」,
# 「個人情報は入れないし」「氏名を含まない」「個人情報なしで」.
_NEGATED = re.compile(
    r"^(?:型|の|サービス)?(?:じゃな|ではな|でな|以外|ではあり|じゃあり)"
    r"|^(?:は|も|を|とか|等|など)?(?:一切)?(?:入れ|入力し|含め|含ま|使わ|載せ)(?:ない|ず|ません)"
    r"|^(?:は|が)?(?:なし|無し|抜き|を除|除い|除外)"
)


def mentions(folded: str, word: str) -> bool:
    """``word`` occurs in ``folded`` (NFKC, spaces removed) at least once without being negated."""
    if not word:
        return False
    start = folded.find(word)
    while start >= 0:
        if not _NEGATED.match(folded[start + len(word):]):
            return True
        start = folded.find(word, start + 1)
    return False


class VerdictRule(BaseModel):
    verdict: Verdict
    reason: str = Field(min_length=1)


class ClassRule(BaseModel):
    id: str
    label: str
    national_class: str
    examples: list[str]
    keywords: list[str]
    cloud_rule: str
    unit_id: str
    quote: str = Field(min_length=4)
    conditions: list[str] = Field(default_factory=list)
    verdicts: dict[str, VerdictRule]

    def verdict_for(self, service_type: str) -> VerdictRule:
        rule = self.verdicts.get(service_type) or self.verdicts.get("default")
        if rule is None:
            raise RulesError(f"機密性判定ルール {self.id}: サービス種別 {service_type} の判定がありません。")
        return rule


class AttributeRule(BaseModel):
    id: str
    label: str
    patterns: list[str]
    rule: str
    unit_id: str
    quote: str = Field(min_length=4)
    condition: str | None = None
    applies_with: str | None = None


class CheckRules(BaseModel):
    version: int
    classes: list[ClassRule]
    attributes: list[AttributeRule]
    intent_patterns: list[str]
    service_words: list[str]

    def class_by_id(self, class_id: str) -> ClassRule | None:
        """The class rule with this id, or ``None`` (unknown, or hidden from this caller)."""
        return next((c for c in self.classes if c.id == class_id), None)

    def attribute(self, attr_id: str) -> AttributeRule | None:
        """The attribute rule with this id, or ``None`` (unknown, or hidden from this caller)."""
        return next((a for a in self.attributes if a.id == attr_id), None)

    def visible_to(self, unit_ids: set[str]) -> "CheckRules":
        """The rules whose cited unit is in ``unit_ids`` (what one caller may see); the rest are dropped."""
        return self.model_copy(
            update={
                "classes": [c for c in self.classes if c.unit_id in unit_ids],
                "attributes": [a for a in self.attributes if a.unit_id in unit_ids],
            }
        )

    def cited_units(self) -> list[tuple[str, str, str]]:
        """(rule name, unit id, quote) for every rule."""
        return [(f"class {c.id}", c.unit_id, c.quote) for c in self.classes] + [
            (f"attribute {a.id}", a.unit_id, a.quote) for a in self.attributes
        ]


def read_rules_file(path: Path, model: type[_M], what: str) -> _M:
    """Parse a YAML rules file into ``model``.

    Raises:
        RulesError: the file cannot be read, is not YAML, or does not fit ``model``; the
            message names ``what`` and the file (and the first fields at fault).
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RulesError(f"{what}を読み込めません: {path.name}", detail=str(exc)) from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        where = "; ".join(".".join(str(p) for p in e["loc"]) + f": {e['msg']}" for e in exc.errors()[:5])
        raise RulesError(f"{what} {path.name} の形式に誤りがあります（{where}）。", detail=str(exc)) from exc


def load_rules(path: Path | None = None, *, lookup_units: Callable[[list[str]], list[dict[str, Any]]] | None = None) -> CheckRules:
    """Load and validate the rules file.

    Args:
        path: the YAML file (default: the bundled rules).
        lookup_units: returns unit payloads for IDs (the searcher's ``get_units``);
            when given, every rule's quote must be inside its unit.

    Raises:
        RulesError: unreadable or malformed file, a class without a verdict for
            every service type, an unknown unit, or a quote no longer in its unit.
            The message names the rule.
    """
    path = path or DEFAULT_RULES
    rules = read_rules_file(path, CheckRules, "機密性判定ルールファイル")
    ids = [c.id for c in rules.classes]
    if len(set(ids)) != len(ids):
        raise RulesError(f"機密性判定ルールファイル {path.name}: 分類 ID が重複しています。")
    for c in rules.classes:
        for st in SERVICE_TYPES:
            c.verdict_for(st)
        if c.id != "1" and any(v.verdict == "可" for v in c.verdicts.values()):
            # Class 2 and above never get a bare 可: their conditions must come with it.
            raise RulesError(f"機密性判定ルール class {c.id}: 機密性2以上に無条件の「可」は設定できません。")
    if lookup_units is not None:
        wanted = sorted({u for _, u, _ in rules.cited_units()})
        found = {u["id"]: u for u in lookup_units(wanted)}
        for name, unit_id, quote in rules.cited_units():
            unit = found.get(unit_id)
            if unit is None:
                raise RulesError(f"機密性判定ルール {name} が引用する単位 {unit_id} がインデックスにありません。")
            if squash(quote) not in squash(unit["text"]):
                raise RulesError(f"機密性判定ルール {name} の引用文が単位 {unit_id} の本文に見つかりません（コーパスが更新された可能性があります）。")
    return rules
