"""An office's own confidentiality policy: local rules the check applies before the national table.

An administrator states, in a YAML file beside the rules file (``GUIDEQA_LOCAL_POLICY_FILE``),
the rules their office's binding documents set, each citing the article it rests on::

    version: 1
    office: 〇〇市
    rules:
      - id: no-confidential
        statement: 機密性2以上の情報は生成AIに入力しない
        classes: ["2", "3C", "3B", "3A"]        # information classes of the check's table it covers
        information: [個人情報, 氏名]           # or words naming the information (either matches;
                                                # neither given: any information)
        services: []                            # service types it covers (empty: any)
        verdict: 不可
        reason: 〇〇市生成AI利用規程第11条第1項により、機密性2以上の情報は入力できません。
        cite: {doc_id: maru-shi_kitei, label: 第11条第1項, quote: 機密情報を入力してはならない}
      - id: class-unknown
        statement: 分類が明らかでない情報は、利用責任者に確認し、なお不明なら機密性2として扱う
        classes: [unknown]                      # information whose class the question does not make known
        treat_as: "2"                           # optional: then the rules for that class follow, cited after
        verdict: 判断できない
        reason: 〇〇市生成AI利用規程第13条により、分類が明らかでないときは入力する前に利用責任者に確認します。
        cite: {doc_id: maru-shi_kitei, label: 第13条, quote: 利用責任者に確認しなければならない}

At start-up every rule's citation is resolved to a unit of a ``binding`` document whose
label and text match; a rule citing a unit that no longer exists stops start-up with a
message naming the rule (as the rules file does). Without a policy file nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator

from guideqa.errors import RulesError
from ingest.cleaning import nfkc, squash
from service.check.rules import SERVICE_TYPES, Verdict, mentions, read_rules_file

__all__ = ["PolicyCitation", "PolicyRule", "LocalPolicy", "load_policy", "UNKNOWN_CLASS"]

# The class of information the question does not make known (「この資料」「分類が分からない」):
# many offices' rules say what to do then (ask first; treat it as the next class up; do not enter it).
UNKNOWN_CLASS = "unknown"


class PolicyCitation(BaseModel):
    doc_id: str = Field(min_length=1)
    label: str = Field(min_length=1, description="The article the rule rests on: 第11条第1項.")
    quote: str = Field(min_length=4, description="Words of that article, verbatim.")


class PolicyRule(BaseModel):
    id: str = Field(min_length=1)
    statement: str = Field(min_length=1)
    classes: list[str] = Field(default_factory=list)
    information: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    verdict: Verdict
    reason: str = Field(min_length=1)
    cite: PolicyCitation
    treat_as: str | None = Field(default=None, description="For a rule on information of unknown class: the class it is then treated as.")
    unit_id: str = ""  # resolved at load time

    @field_validator("services")
    @classmethod
    def _known_services(cls, v: list[str]) -> list[str]:
        unknown = [s for s in v if s not in SERVICE_TYPES]
        if unknown:
            raise ValueError(f"unknown service types {unknown}; use {list(SERVICE_TYPES)}")
        return v

    def applies(self, classes: Iterable[str], information_text: str, service_type: str) -> bool:
        """The rule covers this information (by class or by word; a rule naming neither covers any)
        and this kind of service (a rule naming none covers any)."""
        if self.services and service_type not in self.services:
            return False
        if not self.classes and not self.information:
            return True
        folded = squash(nfkc(information_text))
        by_class = bool(set(classes) & set(self.classes))
        by_word = any(mentions(folded, squash(nfkc(w))) for w in self.information if w)
        return by_class or by_word

    @property
    def on_unknown_class(self) -> bool:
        return UNKNOWN_CLASS in self.classes


class LocalPolicy(BaseModel):
    version: int
    office: str = Field(min_length=1)
    rules: list[PolicyRule] = Field(min_length=1)

    @field_validator("rules")
    @classmethod
    def _treat_as_only_when_unknown(cls, rules: list[PolicyRule]) -> list[PolicyRule]:
        for r in rules:
            if r.treat_as is not None and not r.on_unknown_class:
                raise ValueError(f"rule {r.id}: treat_as applies only to a rule with classes: [{UNKNOWN_CLASS}]")
            if r.treat_as is not None and r.treat_as in (UNKNOWN_CLASS, ""):
                raise ValueError(f"rule {r.id}: treat_as must name a class such as \"2\"")
        return rules


def load_policy(
    path: Path,
    *,
    units_of_document: Callable[[str], list[dict[str, Any]]],
) -> LocalPolicy:
    """Load the policy file and resolve each rule's citation to a unit of a binding document.

    Args:
        path: the YAML file.
        units_of_document: every unit payload of one document (by doc_id), unfiltered.

    Raises:
        RulesError: unreadable or malformed file, duplicate rule ids, or a citation that
            names no binding document, no unit with that label, or words not in that unit.
            The message names the rule.
    """
    policy = read_rules_file(path, LocalPolicy, "ローカルポリシーファイル")
    ids = [r.id for r in policy.rules]
    if len(set(ids)) != len(ids):
        raise RulesError(f"ローカルポリシーファイル {path.name}: ルール ID が重複しています。")
    for rule in policy.rules:
        units = units_of_document(rule.cite.doc_id)
        if not units:
            raise RulesError(f"ローカルポリシーのルール {rule.id} が引用する文書 {rule.cite.doc_id} がインデックスにありません。")
        if any(u.get("authority") != "binding" for u in units[:1]):
            raise RulesError(f"ローカルポリシーのルール {rule.id} が引用する文書 {rule.cite.doc_id} は本団体の規程（authority: binding）ではありません。")
        labelled = [u for u in units if nfkc(u.get("label") or "") == nfkc(rule.cite.label)]
        if not labelled:
            raise RulesError(f"ローカルポリシーのルール {rule.id} が引用する {rule.cite.label} が文書 {rule.cite.doc_id} にありません。")
        match = next((u for u in labelled if squash(rule.cite.quote) in squash(u["text"])), None)
        if match is None:
            raise RulesError(
                f"ローカルポリシーのルール {rule.id} の引用文が {rule.cite.label} の本文に見つかりません（規程が改正された可能性があります）。"
            )
        rule.unit_id = match["id"]
    return policy
