"""The input guard: rules from YAML, one :class:`GuardDecision` per question.

    >>> guard = InputGuard.default()
    >>> d = guard.check("山田太郎さんの電話は03-1234-5678です。議事録に使ってよい？")
    >>> d.action, d.text
    ('mask', '〔氏名〕さんの電話は〔電話番号〕です。議事録に使ってよい？')

The rules file (``service/data/guard.yaml`` unless ``Settings.pii_rules_file``
names another) decides, per category, whether a finding is masked or blocks the
question; see that file for the schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from guideqa.errors import RulesError
from service.guard.injection import DEFAULT_RULES, InjectionRule, injection_cuts
from service.guard.pii import CATEGORY_LABELS, CategoryRule, PIIDetector, PIIFinding

__all__ = ["DEFAULT_RULES_PATH", "GuardDecision", "GuardRules", "InputGuard", "load_rules"]

DEFAULT_RULES_PATH = Path(__file__).resolve().parent.parent / "data" / "guard.yaml"

Action = Literal["block", "mask"]


# --- the YAML schema ------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PIICategoryConfig(_Strict):
    enabled: bool = True
    action: Action = "mask"
    # person_name only: names never flagged, and whether a lone name needs さん/課長 after it.
    allowlist: list[str] = Field(default_factory=list)
    require_context: bool = True


class DenyWordsConfig(_Strict):
    enabled: bool = True
    action: Action = "block"
    words: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        for p in v:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"正規表現 {p!r} が不正です ({exc})") from exc
        return v


class InjectionPatternConfig(_Strict):
    id: str = Field(min_length=1)
    pattern: str = Field(min_length=1)
    soft: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"正規表現 {v!r} が不正です ({exc})") from exc
        return v


class InjectionConfig(_Strict):
    enabled: bool = True
    extra_patterns: list[InjectionPatternConfig] = Field(default_factory=list)


class GuardRules(_Strict):
    """The parsed rules file (``version: 1``)."""

    version: Literal[1] = 1
    pii: dict[
        Literal["my_number", "corporate_number", "credit_card", "bank_account", "passport", "phone", "email", "address", "person_name"],
        PIICategoryConfig,
    ] = Field(
        default_factory=dict
    )
    deny_words: DenyWordsConfig = Field(default_factory=DenyWordsConfig)
    injection: InjectionConfig = Field(default_factory=InjectionConfig)


def load_rules(path: Path | str) -> GuardRules:
    """Read and validate a rules file.

    Raises:
        RulesError: the file is missing, not YAML, or does not follow the schema;
            the message names the file and the offending key.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RulesError(f"入力保護ルールファイル {path.name} が見つかりません。", detail=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"入力保護ルールファイル {path.name} を読み込めません。", detail=f"{path}: {exc}") from exc
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f"（{mark.line + 1} 行目 {mark.column + 1} 文字目付近）"
        raise RulesError(f"入力保護ルールファイル {path.name} は YAML として読めません{where}。", detail=f"{path}: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RulesError(f"入力保護ルールファイル {path.name} の最上位はマッピング（キー: 値）にしてください。", detail=str(path))
    try:
        return GuardRules.model_validate(raw)
    except ValidationError as exc:
        problems = "、".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(最上位)'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise RulesError(f"入力保護ルールファイル {path.name} の内容に誤りがあります（{problems}）。", detail=f"{path}: {exc}") from exc


# --- decisions --------------------------------------------------------------------


@dataclass(frozen=True)
class GuardDecision:
    """What to do with one question.

    Attributes:
        action: ``allow`` (use ``text``), ``mask`` (``text`` has 〔カテゴリ〕 in place
            of personal data) or ``block`` (refuse; ``code`` says why).
        text: the question to retrieve and answer with; injection sentences removed
            and masked categories replaced. Empty when blocked.
        masked_for_log: the question as typed with *every* finding replaced by
            〔カテゴリ〕, blocked categories included; always safe to log.
        findings: category, action and span (offsets into the question as typed).
        injection: an injection attempt was found (and cut out of ``text``).
        injection_rules: ids of the heuristics that matched.
        code: ``pii_detected``, ``deny_word`` or ``injection_detected`` when blocked.
        message: polite Japanese explanation for the user; empty when nothing was found.
    """

    action: Literal["allow", "mask", "block"]
    text: str
    masked_for_log: str
    findings: tuple[PIIFinding, ...] = ()
    injection: bool = False
    injection_rules: tuple[str, ...] = ()
    code: str | None = None
    message: str = ""

    @property
    def blocked(self) -> bool:
        return self.action == "block"

    def summary(self) -> dict:
        """A JSON-ready summary for logs and the audit trail (no raw values)."""
        return {
            "action": self.action,
            "code": self.code,
            "findings": [{"category": f.category, "action": f.action, "start": f.start, "end": f.end} for f in self.findings],
            "injection": self.injection,
            "injection_rules": list(self.injection_rules),
        }


_BLOCK_MESSAGES = {
    "my_number": "マイナンバーと思われる番号が含まれているため、送信をブロックしました。個人番号は入力しないでください。",
    "corporate_number": "法人番号と思われる番号が含まれているため、送信をブロックしました。番号を除いて質問してください。",
    "credit_card": "クレジットカード番号と思われる番号が含まれているため、送信をブロックしました。カード番号は入力しないでください。",
    "bank_account": "口座番号と思われる番号が含まれているため、送信をブロックしました。口座番号は入力しないでください。",
    "passport": "旅券番号と思われる番号が含まれているため、送信をブロックしました。旅券番号は入力しないでください。",
    "deny_word": "取り扱いに注意が必要な語（機密語）が含まれているため、送信をブロックしました。該当する語を除いて質問してください。",
}
_INJECTION_BLOCK = (
    "AI への指示を書き換えようとする内容が含まれているため、送信をブロックしました。"
    "ガイドラインに関する質問を入力してください。"
)
_INJECTION_STRIPPED = "AI への指示を書き換えようとする部分を取り除き、残りの質問に回答します。"


def _labels(categories: list[str]) -> str:
    return "・".join(dict.fromkeys(CATEGORY_LABELS.get(c, c) for c in categories))


def _render(text: str, cuts: list[tuple[int, int]], masks: list[PIIFinding]) -> str:
    """``text`` with ``cuts`` deleted and each finding in ``masks`` replaced by 〔label〕."""
    owner: list[int | None] = [None] * len(text)
    for k, f in enumerate(masks):
        for i in range(f.start, f.end):
            owner[i] = k
    cut = [False] * len(text)
    for s, e in cuts:
        for i in range(s, e):
            cut[i] = True
    out: list[str] = []
    last: int | None = None
    for i, ch in enumerate(text):
        if cut[i]:
            last = None
            continue
        k = owner[i]
        if k is None:
            out.append(ch)
        elif k != last:
            out.append(f"〔{masks[k].label}〕")
        last = k
    return "".join(out)


class InputGuard:
    """Checks every question before retrieval and before the LLM.

    Build it once per process (``InputGuard.from_file(settings.pii_rules_file)`` or
    ``InputGuard.default()``); :meth:`check` is thread-safe.
    """

    def __init__(self, rules: GuardRules):
        self.rules = rules
        pii_rules = {
            name: CategoryRule(
                action=cfg.action, enabled=cfg.enabled, allowlist=tuple(cfg.allowlist), require_context=cfg.require_context
            )
            for name, cfg in rules.pii.items()
        }
        dw = rules.deny_words
        pii_rules["deny_word"] = CategoryRule(
            action=dw.action, enabled=dw.enabled, words=tuple(dw.words), patterns=tuple(dw.patterns)
        )
        self._detector = PIIDetector(pii_rules)
        extra = tuple(
            InjectionRule(p.id, re.compile(p.pattern, re.IGNORECASE | re.DOTALL), p.soft) for p in rules.injection.extra_patterns
        )
        self._injection_rules: tuple[InjectionRule, ...] | None = (DEFAULT_RULES + extra) if rules.injection.enabled else None

    @classmethod
    def from_file(cls, path: Path | str) -> "InputGuard":
        """A guard from a rules file. Raises :class:`RulesError` if it is malformed."""
        return cls(load_rules(path))

    @classmethod
    def default(cls) -> "InputGuard":
        """A guard from the bundled ``service/data/guard.yaml``."""
        return cls.from_file(DEFAULT_RULES_PATH)

    @classmethod
    def from_settings(cls, pii_rules_file: Path | None) -> "InputGuard":
        """The office's rules file when one is configured, else the bundled defaults."""
        return cls.from_file(pii_rules_file) if pii_rules_file else cls.default()

    def mask_for_log(self, text: str) -> str:
        """``text`` with every finding replaced by 〔カテゴリ〕 (for feedback comments, logs)."""
        return _render(text, [], self._detector.find(text))

    def check(self, question: str) -> GuardDecision:
        """Decide whether ``question`` may go on, and in what form.

        Blocking PII wins over a deny word, which wins over an injection with
        nothing left to answer. An injection that wraps a real question is cut out
        and the rest is allowed (or masked) with ``injection=True``.
        """
        findings = self._detector.find(question)
        masked_for_log = _render(question, [], findings)
        cuts: list[tuple[int, int]] = []
        rule_ids: list[str] = []
        if self._injection_rules is not None:
            cuts, rule_ids = injection_cuts(question, self._injection_rules)
        injection = bool(rule_ids)
        common = dict(findings=tuple(findings), masked_for_log=masked_for_log, injection=injection, injection_rules=tuple(rule_ids))

        blocking = [f for f in findings if f.action == "block"]
        pii_block = [f.category for f in blocking if f.category != "deny_word"]
        if pii_block:
            first = pii_block[0]
            message = _BLOCK_MESSAGES.get(first) or (
                f"{_labels(pii_block)}と思われる情報が含まれているため、送信をブロックしました。個人情報は入力しないでください。"
            )
            return GuardDecision("block", "", code="pii_detected", message=message, **common)
        if blocking:
            return GuardDecision("block", "", code="deny_word", message=_BLOCK_MESSAGES["deny_word"], **common)

        masks = [f for f in findings if f.action == "mask"]
        text = _render(question, cuts, masks).strip() if (cuts or masks) else question
        if injection and not _has_content(_render(question, cuts, [])):
            return GuardDecision("block", "", code="injection_detected", message=_INJECTION_BLOCK, **common)

        messages: list[str] = []
        if injection:
            messages.append(_INJECTION_STRIPPED)
        if masks:
            messages.append(
                f"{_labels([f.category for f in masks])}と思われる情報を〔〕の表記に置き換えてから処理しました。"
                "個人情報や機密情報は入力しないでください。"
            )
        return GuardDecision("mask" if masks else "allow", text, message="".join(messages), **common)


_CONTENT = re.compile(r"[0-9A-Za-z\u3040-\u30ff\u3400-\u9fff\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")


def _has_content(text: str) -> bool:
    return len(_CONTENT.findall(text)) >= 2
