"""The confidentiality check: a free-text question in, a cited verdict out.

    >>> engine = CheckEngine(rules, lookup_units=searcher.get_units)          # doctest: +SKIP
    >>> r = engine.check("入札予定価格、規約に同意するだけのネットのAIに入れていい？")  # doctest: +SKIP
    >>> r.verdict, r.class_                                                    # doctest: +SKIP
    ('不可', '3C')

The verdict comes from the rules file, never from free generation:

1. find the information item(s) by the class keywords and examples of the
   table (``3C情報`` named outright also counts);
2. find the service attributes from the wording (「規約に同意するだけ」→ 約款型,
   「海外のサーバ」→ 国外, 「LGWAN上の」→ LGWAN-ASP);
3. look the verdict up per item; the most restrictive item decides;
4. when the item or the service is unclear, say what is missing and show the
   verdict for each likely case instead of guessing.

Access: every rule cites a unit, and a unit has an access label. A caller gets
the engine :meth:`CheckEngine.restricted_to` what they may see: a class whose
unit is hidden from them is an information type the engine does not know, an
attribute whose unit is hidden is a service wording it does not recognise. The
verdict is computed from the visible rules only; with nothing left it is
判断できない with no class, no table row, no condition and no quote — nothing
that comes from a hidden unit, not even that such a rule exists.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable

from index.display import citation_label
from ingest.cleaning import nfkc, squash
from service.check.policy import UNKNOWN_CLASS, LocalPolicy, PolicyRule
from service.check.rules import AttributeRule, CheckRules, ClassRule, mentions
from service.models import CheckCase, CheckResponse, Citation, ClassRow

__all__ = ["CheckEngine", "find_span", "VERDICT_ORDER"]

VERDICT_ORDER = {"不可": 3, "判断できない": 2, "条件付きで可": 1, "可": 0}
_CLASS_NAMED = re.compile(r"(?:自治体)?(?:機密性)?\s*(3\s*[ABCabc])(?:情報|相当|の情報|クラス)?|機密性\s*([12])(?![0-9])")
# 「…していい？」「…しても大丈夫？」「扱いたい」: asking for permission, whatever the verb.
_PERMISSION = re.compile(r"(?:て|で)も?(?:いい|よい|良い|大丈夫|OK|構わない|問題ない)|たい[。？?]?$|たい。|可否|ダメ|だめ|駄目")
# Information named only generically (このExcel, 業務のデータ): still a check, answered 判断できない.
# Using what the AI produced (publishing its text, posting its image) is not putting information into it.
_OUTPUT_USE = re.compile(r"(?:AI|生成AI|チャット)(?:が|で|に)(?:書い|書き|書く|作っ|作り|作る|描い|描き|描く|作成し|生成し|書かせ|作らせ|描かせ)|(?:書いた|作った|生成した|作成した)(?:文章|文|画像|もの|資料)|載せ|掲載|公開し|公表し|配布し")
# 「どんな情報なら入れていい？」「ダメな情報って何？」: which information, asked in general.
_WHICH_INFORMATION = re.compile(r"(?:どんな|どの|どういう|何の)(?:情報|データ|資料)|(?:情報|データ|資料)(?:って|は|とは)(?:何|なに|どれ|どんな|[?？]|$)")
_SOME_DATA = re.compile(r"データ|情報|資料|ファイル|EXCEL|エクセル|文書|メモ|名簿")
_SERVICE_CASES = (("ismap", "ISMAP登録サービス"), ("cloud", "インターネット接続系・パブリッククラウド（対策実施）"), ("yakkan", "約款型・規約同意のみのサービス"))
# Personal data named without saying whose: could be 3B (住民) or 3C (職員).
_AMBIGUOUS = {"個人情報": ("3B", "3C"), "氏名": ("3B", "3C"), "住所": ("3B", "3C")}


def _fold(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).upper()


def find_span(text: str, quote: str) -> str:
    """The substring of ``text`` that equals ``quote`` up to NFKC and whitespace; ``text`` if absent."""
    target = squash(quote)
    kept = [(i, c) for i, ch in enumerate(text) for c in squash(ch)]
    joined = "".join(c for _, c in kept)
    pos = joined.find(target)
    if pos < 0 or not target:
        return text
    start = kept[pos][0]
    end = kept[pos + len(target) - 1][0] + 1
    return text[start:end]


@dataclass
class _Item:
    phrase: str
    class_id: str | None
    candidates: tuple[str, ...] = ()


class CheckEngine:
    """Rules plus the cited units (for quotes and provenance), as of one index version.

    Args:
        rules: the loaded rules.
        lookup_units: reads unit payloads by ID with no access filter (the engine
            filters per caller itself); called once, here.
        units: the payloads already read (used by :meth:`restricted_to`).
        index_version: the index version the units were read from; the owner
            builds a new engine when the live version changes.
    """

    def __init__(
        self,
        rules: CheckRules,
        *,
        lookup_units: Callable[[list[str]], list[dict[str, Any]]] | None = None,
        units: dict[str, dict[str, Any]] | None = None,
        index_version: str | None = None,
        policy: LocalPolicy | None = None,
    ):
        self.rules = rules
        self.index_version = index_version
        self.policy = policy
        if units is None:
            ids = sorted({u for _, u, _ in rules.cited_units()} | {r.unit_id for r in (policy.rules if policy else [])})
            units = {u["id"]: u for u in lookup_units(ids)} if lookup_units is not None else {}
        self._units = units
        self._views: dict[frozenset[str], CheckEngine] = {}

    def restricted_to(self, may_see: Callable[[dict[str, Any]], bool]) -> "CheckEngine":
        """The engine as one caller may use it: only rules whose cited unit ``may_see`` accepts.

        Args:
            may_see: the access rule for one unit payload (``Caller.may_see``).
        """
        visible = frozenset(uid for uid, unit in self._units.items() if may_see(unit))
        if visible == frozenset(self._units) and all(u in visible for _, u, _ in self.rules.cited_units()):
            return self
        view = self._views.get(visible)
        if view is None:
            # The office's own rules keep applying to a caller who may not read them (a
            # stricter verdict is never lifted by access); only their quotes are withheld.
            view = CheckEngine(
                self.rules.visible_to(set(visible)),
                units={uid: self._units[uid] for uid in visible},
                index_version=self.index_version,
                policy=self.policy,
            )
            self._views[visible] = view
        return view

    # ------------------------------------------------------------------ understanding
    def is_check_question(self, question: str) -> bool:
        """A question of the 「この情報を、このサービスに入れていい？」 kind."""
        q = _fold(question)
        puts_in = any(_fold(p) in q for p in self.rules.intent_patterns if p != "大丈夫")
        if not puts_in and _OUTPUT_USE.search(q):
            return False
        intent = puts_in or any(_fold(p) in q for p in self.rules.intent_patterns) or bool(_PERMISSION.search(q))
        if not intent:
            return False
        named = bool(self._items(question)[0]) or bool(_CLASS_NAMED.search(nfkc(question)))
        if not named and _WHICH_INFORMATION.search(nfkc(question)):
            return False  # 「入れちゃダメな情報って何？」 asks for the rule's list, not about one piece of information
        info = named or bool(_SOME_DATA.search(q))
        service = any(_fold(w) in q for w in self.rules.service_words) or bool(self.attributes(question))
        return info and service

    def _items(self, text: str) -> tuple[list[_Item], str]:
        """Information items by class keyword (longest first); returns the text with them blanked out."""
        folded = _fold(text)
        found: list[_Item] = []
        # Named information first (入札予定価格), then a class named outright (3C情報).
        pairs = sorted(((kw, c) for c in self.rules.classes for kw in c.keywords), key=lambda p: -len(p[0]))
        # Information the asker says is not there (「個人情報は入れないし」) is no item.
        for kw, c in pairs:
            k = _fold(kw)
            if k and k in folded:
                if mentions(folded, k):
                    found.append(_Item(kw, c.id))
                folded = folded.replace(k, "〓")
        for m in _CLASS_NAMED.finditer(nfkc(text)):
            cid = (m.group(1) or m.group(2)).replace(" ", "").upper()
            if self.rules.class_by_id(cid) is None:
                continue  # a class this caller's rules do not have
            named = _fold(m.group(0))
            if mentions(folded, named):
                found.append(_Item(m.group(0).strip(), cid))
            folded = folded.replace(named, "〓")
        if not found:
            for word, cands in _AMBIGUOUS.items():
                known = tuple(c for c in cands if self.rules.class_by_id(c) is not None)
                if known and _fold(word) in folded:
                    if mentions(folded, _fold(word)):
                        found.append(_Item(word, None, known))
                    folded = folded.replace(_fold(word), "〓")
        return found, folded

    def attributes(self, text: str) -> list[AttributeRule]:
        # Class keywords are blanked first so that オンライン申請 is not read as an online service.
        _, rest = self._items(text)
        return [a for a in self.rules.attributes if any(mentions(rest, _fold(p)) for p in a.patterns if p)]

    @staticmethod
    def service_type(attrs: list[AttributeRule]) -> str:
        ids = {a.id for a in attrs}
        for st in ("yakkan", "ismap", "lgwan"):
            if st in ids:
                return st
        if ids & {"internet", "public_cloud"}:
            return "cloud"
        return "unknown"

    # ------------------------------------------------------------------ deciding
    def _decide(self, cls: ClassRule, service_type: str, attr_ids: set[str]) -> tuple[str, list[str], str]:
        rule = cls.verdict_for(service_type)
        verdict, reason = rule.verdict, rule.reason
        conditions = list(cls.conditions) if verdict == "条件付きで可" else []
        if verdict != "不可":
            if "foreign" in attr_ids:
                cond = self._condition("foreign")
                if cond:
                    conditions.append(cond)
                if verdict == "可":
                    verdict = "条件付きで可"
            if cls.id == "1" and service_type == "yakkan":
                cond = self._condition("yakkan")
                if cond:
                    conditions.append(cond)
            if verdict == "条件付きで可":
                cond = self._condition("no_training")
                if cond:
                    conditions.append(cond)
        return verdict, list(dict.fromkeys(conditions)), reason

    def _condition(self, attr_id: str) -> str | None:
        attr = self.rules.attribute(attr_id)
        return attr.condition if attr is not None else None

    def _citation(self, n: int, unit_id: str, quote: str) -> Citation | None:
        unit = self._units.get(unit_id)
        if unit is None:
            return None
        return Citation(
            n=n,
            unit_id=unit_id,
            doc_id=unit.get("doc_id", ""),
            doc_title=unit["doc_title"],
            authority=unit.get("authority") or "",
            label=citation_label(unit),
            section_path=unit["section_path"],
            quote=find_span(unit["text"], quote),
            source_file=unit["source_file"],
            line_start=unit["line_start"],
            line_end=unit["line_end"],
        )

    def class_row(self, cls: ClassRule) -> ClassRow:
        return ClassRow(
            class_id=cls.id, label=cls.label, national_class=cls.national_class,
            examples=cls.examples, cloud_rule=cls.cloud_rule, unit_id=cls.unit_id,
        )

    def table(self) -> list[ClassRow]:
        """The class table itself, as staff would look it up."""
        return [self.class_row(c) for c in self.rules.classes]

    def check(self, question: str | None = None, *, information: str | None = None, service: str | None = None) -> CheckResponse:
        """Verdict for a free-text question, or for an explicit information item and service."""
        text = question or f"{information or ''}を{service or ''}に入れていい？"
        info_text = information if information is not None else text
        service_text = service if service is not None else text
        items, _ = self._items(info_text)
        attrs = self.attributes(service_text) if service is None else [
            a for a in self.rules.attributes if any(_fold(p) in _fold(service) for p in a.patterns if p)
        ]
        attr_ids = {a.id for a in attrs}
        stype = self.service_type(attrs)

        citations: list[Citation] = []
        cited: dict[str, int] = {}

        def cite(unit_id: str, quote: str) -> None:
            if unit_id in cited:
                return
            c = self._citation(len(citations) + 1, unit_id, quote)
            if c is not None:
                cited[unit_id] = c.n
                citations.append(c)

        missing: list[str] = []
        if not items:
            missing.append("情報の種類（どの機密性分類に当たる情報か）")
        if stype == "unknown":
            missing.append("サービスの種類（ISMAP登録サービスか、約款型か、インターネット接続系か等）")

        per_item: list[dict[str, Any]] = []
        reasons: list[str] = []
        conditions: list[str] = []
        cases: list[CheckCase] = []
        seen_classes: list[str] = []
        for item in items:
            if item.class_id is None:
                per_item.append({"information": item.phrase, "class": None, "verdict": "判断できない",
                                 "reason": f"「{item.phrase}」は誰の情報かによって分類が変わります（住民の情報なら3B、職員の属性なら3C）。"})
                for cid in item.candidates:
                    cls = self.rules.class_by_id(cid)
                    assert cls is not None  # _items keeps known candidates only
                    v, conds, why = self._decide(cls, stype, attr_ids)
                    cases.append(CheckCase(service=f"{cls.label}の場合", verdict=v, conditions=conds, reason=why))  # type: ignore[arg-type]
                    cite(cls.unit_id, cls.quote)
                continue
            if item.class_id in seen_classes:
                continue
            seen_classes.append(item.class_id)
            cls = self.rules.class_by_id(item.class_id)
            assert cls is not None  # _items keeps known classes only
            verdict, conds, why = self._decide(cls, stype, attr_ids)
            per_item.append({"information": item.phrase, "class": cls.id, "verdict": verdict, "conditions": conds, "reason": why})
            reasons.append(why)
            conditions += conds
            cite(cls.unit_id, cls.quote)
            if stype == "unknown" or verdict == "判断できない":
                for st, label in _SERVICE_CASES:
                    v, c2, w2 = self._decide(cls, st, attr_ids)
                    cases.append(CheckCase(service=f"{cls.label} × {label}", verdict=v, conditions=c2, reason=w2))  # type: ignore[arg-type]

        for a in attrs:
            if a.id in ("public_cloud",) and stype != "cloud":
                continue
            cite(a.unit_id, a.quote)
            local = self.rules.attribute("yakkan_local")
            if a.id == "yakkan" and local is not None:
                cite(local.unit_id, local.quote)
            if a.id in ("yakkan", "foreign", "ismap", "lgwan"):
                reasons.append(a.rule + "。")
        nt = self.rules.attribute("no_training")
        if nt is not None and any("オプトアウト" in c for c in conditions):
            cite(nt.unit_id, nt.quote)

        if per_item:
            overall = max((i["verdict"] for i in per_item), key=lambda v: VERDICT_ORDER[v])
        else:
            overall = "判断できない"
            reasons.append("質問から情報の種類を特定できませんでした。下の分類表で該当する分類を確認してください。")
        if overall == "判断できない" and not reasons:
            reasons.append(per_item[0]["reason"] if per_item else "情報の種類を特定できませんでした。")
        decided_by, local_rule, then_rule = ("table" if per_item else "none"), None, None
        local = self._local_rule(per_item, info_text, stype)
        if local is not None and VERDICT_ORDER[local.verdict] >= VERDICT_ORDER[overall]:
            # The office's own binding rule is at least as strict as the table: it decides.
            overall, decided_by, local_rule = local.verdict, "local_policy", local.id
            reasons.insert(0, local.reason)
            if local.verdict == "不可":
                conditions = []
            citations = self._cite_first(local, citations)
            then = self._local_rule_for({local.treat_as}, info_text, stype) if local.treat_as else None
            if then is not None and then.id != local.id:
                # 「なお不明なら機密性2として扱う」: what the rules for that class then say, after.
                then_rule = then.id
                reasons.insert(1, then.reason)
                citations = citations + [c for c in self._cite_first(then, []) if c.unit_id not in {x.unit_id for x in citations}]
                citations = [c.model_copy(update={"n": i}) for i, c in enumerate(citations, start=1)]
        elif local is None and not per_item and (ceiling := self._local_ceiling(stype)) is not None:
            # The information's class is not known, but the office's rule forbids some classes
            # whatever the information is: that is the first thing the asker needs (cited).
            reasons.insert(0, ceiling.reason)
            citations = self._cite_first(ceiling, citations)
        elif local is not None:
            # The table is stricter: it decides, and the answer says the local rule too.
            reasons.append(local.reason)
            citations = citations + [c for c in self._cite_first(local, [])]
            for i, c in enumerate(citations, start=1):
                c.n = i
        main_class = next((i["class"] for i in per_item if i["class"] and i["verdict"] == overall), None)
        main_class = main_class or next((i["class"] for i in per_item if i["class"]), None)
        main_rule = self.rules.class_by_id(main_class) if main_class else None
        row = self.class_row(main_rule) if main_rule is not None else None
        return CheckResponse(
            question=text,
            information=[i["information"] for i in per_item],
            **{"class": main_class},
            verdict=overall,  # type: ignore[arg-type]
            conditions=list(dict.fromkeys(conditions)),
            reasons=list(dict.fromkeys(reasons))[:4],
            service_attributes=[a.label for a in attrs if not a.id.endswith("_local")],
            missing=missing,
            cases=cases,
            items=per_item if len(per_item) > 1 else [],
            citations=citations,
            table_row=row,
            decided_by=decided_by,
            local_rule=local_rule,
            then_rule=then_rule,
        )

    def _local_rule(self, per_item: list[dict[str, Any]], info_text: str, service_type: str) -> PolicyRule | None:
        """The strictest rule of the office's policy covering this information and service, if any."""
        if self.policy is None:
            return None
        classes = {i["class"] for i in per_item if i.get("class")}
        for item in per_item:
            if not item.get("class"):
                classes |= set(_AMBIGUOUS.get(item["information"], ()))
        return self._local_rule_for(classes or {UNKNOWN_CLASS}, info_text, service_type)

    def _local_rule_for(self, classes: set[str], info_text: str, service_type: str) -> PolicyRule | None:
        """The strictest policy rule covering information of ``classes`` on this kind of service."""
        if self.policy is None:
            return None
        hits = [r for r in self.policy.rules if r.applies(classes, info_text, service_type)]
        return max(hits, key=lambda r: VERDICT_ORDER[r.verdict]) if hits else None

    def _local_ceiling(self, service_type: str) -> PolicyRule | None:
        """The office's broadest rule forbidding information by class for this kind of service, if any."""
        if self.policy is None:
            return None
        bans = [r for r in self.policy.rules if r.classes and not r.on_unknown_class and r.verdict == "不可" and (not r.services or service_type in r.services)]
        return max(bans, key=lambda r: len(r.classes)) if bans else None

    def _cite_first(self, rule: PolicyRule, citations: list[Citation]) -> list[Citation]:
        """``citations`` with the local rule's article first (when the caller may read it), renumbered."""
        own = self._citation(1, rule.unit_id, rule.cite.quote)
        out = ([own] if own is not None else []) + [c for c in citations if own is None or c.unit_id != own.unit_id]
        return [c.model_copy(update={"n": i}) for i, c in enumerate(out, start=1)]
