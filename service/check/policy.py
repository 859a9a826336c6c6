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
from service.check.rules import SERVICE_TYPES, Verdict, read_rules_file

__all__ = ["PolicyCitation", "PolicyRule", "LocalPolicy", "load_policy"]


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
        by_word = any(squash(nfkc(w)) in folded for w in self.information if w)
        return by_class or by_word


class LocalPolicy(BaseModel):
    version: int
    office: str = Field(min_length=1)
    rules: list[PolicyRule] = Field(min_length=1)


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
