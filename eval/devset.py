"""Curated evaluation data: the dev set and the confidentiality check set.

Two hand-written JSON Lines files live in ``eval/data/``:

* ``devset.jsonl`` — staff questions with the correct short answer
  (``reference``), the facts a correct answer must state (``key_facts``, each
  a list of acceptable spellings, the first one as the document words it), the
  units that answer them (``gold_units``), verbatim quotes from those units
  (``evidence``), the documents involved, the kind of answer the question needs
  (``shape``) and the half of the set it belongs to (``split``: ``tune`` for
  tuning, ``holdout`` for checking that the tuning generalises);
* ``checkset.jsonl`` — 「この情報を、このサービスに入れていい？」 questions with
  the expected confidentiality class and verdict.

Unit IDs move when chunking changes, but the quotes do not: :func:`validate`
checks every quote against the corpus text and the gold units, and
:func:`remap_gold_ids` re-derives the gold IDs from the quotes. From the shell::

    .venv/bin/python -m eval.devset                  # validate both files against a fresh ingest
    .venv/bin/python -m eval.devset --fix            # rewrite gold_units from the evidence quotes
    .venv/bin/python -m eval.devset --assign-splits  # give new dev items a split (existing ones kept)

Nothing here does I/O at import time.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest.cleaning import clean_inline, squash
from ingest.loaders import read_text
from ingest.manifest import load_manifest
from ingest.models import Unit

__all__ = [
    "ItemType",
    "ITEM_TYPES",
    "Shape",
    "SHAPES",
    "Split",
    "SPLITS",
    "SPLIT_SEED",
    "VERDICTS",
    "CLASSES",
    "NOT_FOUND",
    "DATA_DIR",
    "DEVSET_PATH",
    "CHECKSET_PATH",
    "DevsetError",
    "KeyFact",
    "DevPart",
    "DevItem",
    "CheckSubItem",
    "CheckItem",
    "load_devset",
    "load_checkset",
    "load_jsonl",
    "dump_jsonl",
    "corpus_texts",
    "validate",
    "assign_splits",
    "remap_gold_ids",
    "main",
]

ItemType = Literal[
    "fact",  # one fact stated in one place
    "multi_doc",  # the answer needs evidence from two or more documents
    "table",  # numbers or rows read from a table
    "procedure",  # the [必須]/[推奨] items of one Tokyo section and phase
    "definition",  # what a term means
    "unanswerable",  # the corpus does not say; the answer is NOT_FOUND
    "injection",  # a hostile instruction wrapped around an answerable question
    "check",  # a confidentiality question asked in the free-text Q&A
]
ITEM_TYPES: tuple[str, ...] = ItemType.__args__  # type: ignore[attr-defined]

Shape = Literal[
    "enumeration",  # a list: 「…は何がある」「全部」「必須事項」「手順」
    "definition",  # what a term means
    "figure",  # a number, count, percentage or date
    "may_i",  # yes/no or permission: 「していい？」「必要？」「ある？」
    "multi_part",  # two or more questions in one; see DevItem.parts
    "comparison",  # two issuers or documents compared
    "open_fact",  # anything else
]
SHAPES: tuple[str, ...] = Shape.__args__  # type: ignore[attr-defined]

Split = Literal["tune", "holdout"]
SPLITS: tuple[str, ...] = Split.__args__  # type: ignore[attr-defined]
#: Seed of :func:`assign_splits` (the number of the issue that introduced the split).
SPLIT_SEED = 15

#: One fact a correct answer must state: its acceptable spellings, the first as the gold unit words it.
KeyFact = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]

Verdict = Literal["可", "条件付きで可", "不可", "判断できない"]
VERDICTS: tuple[str, ...] = Verdict.__args__  # type: ignore[attr-defined]
ConfClass = Literal["3A", "3B", "3C", "2", "1"]
CLASSES: tuple[str, ...] = ConfClass.__args__  # type: ignore[attr-defined]

#: The reference answer of every unanswerable item.
NOT_FOUND = "ガイドラインに記載が見つかりませんでした"

#: Most restrictive first: a question naming several items gets the first of these that applies.
_RESTRICTIVENESS = ("不可", "判断できない", "条件付きで可", "可")

DATA_DIR = Path(__file__).resolve().parent / "data"
DEVSET_PATH = DATA_DIR / "devset.jsonl"
CHECKSET_PATH = DATA_DIR / "checkset.jsonl"


class DevsetError(ValueError):
    """A dev-set or check-set file cannot be read; the message names the file and line."""


class DevPart(BaseModel):
    """One question inside a ``multi_part`` dev item, with its own shape and key facts."""

    model_config = ConfigDict(extra="allow")

    question: str = Field(min_length=1)
    shape: Shape
    key_facts: list[KeyFact] = Field(default_factory=list)


class DevItem(BaseModel):
    """One dev-set question.

    Unknown fields are kept (``extra="allow"``) so newer files still load.
    ``section`` is an optional hint for procedure items — the section path
    elements of the Tokyo section and phase, e.g.
    ``["【都民サービス関連業務】", "3 判断支援", "設計開発"]`` — used by
    :func:`remap_gold_ids` to tell apart units whose wording repeats across sections.

    ``key_facts`` lists what a correct answer must state, one list of acceptable
    spellings per fact: ``[["18府省庁", "18の府省庁"], ["令和7年5月", "R7年5月"]]``.
    The first spelling is the one the gold units use; the others are ways a
    correct answer may write the same thing. ``split``, ``shape`` and (for
    answerable items) ``key_facts`` are optional here so that partial files
    load, and required by :func:`validate`. A ``multi_part`` item lists its
    questions in ``parts``; its ``key_facts`` is then the union of theirs.
    """

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    type: ItemType
    question: str = Field(min_length=1)
    reference: str = Field(min_length=1)
    gold_units: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    doc_ids: list[str] = Field(default_factory=list)
    forbidden: list[str] = Field(default_factory=list)
    section: list[str] | None = None
    shape: Shape | None = None
    key_facts: list[KeyFact] = Field(default_factory=list)
    parts: list[DevPart] = Field(default_factory=list)
    split: Split | None = None


class CheckSubItem(BaseModel):
    """One information item of a check question that names several."""

    model_config = ConfigDict(extra="allow")

    information: str = Field(min_length=1)
    expected_class: ConfClass | None
    expected_verdict: Verdict


class CheckItem(BaseModel):
    """One confidentiality-check question: 「この情報を、このサービスに入れていい？」.

    ``expected_class`` is ``None`` when the information fits no class of the
    table; then the verdict is 判断できない. When the question names several
    information items they are listed in ``items`` and the top-level verdict is
    the most restrictive of theirs.
    """

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    information: str = Field(min_length=1)
    expected_class: ConfClass | None
    expected_verdict: Verdict
    attributes: list[str] = Field(default_factory=list)
    gold_units: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    note: str = ""
    items: list[CheckSubItem] = Field(default_factory=list)
    doc_ids: list[str] = Field(default_factory=list)


_M = TypeVar("_M", bound=BaseModel)
_Item = DevItem | CheckItem


def load_jsonl(path: Path, model: type[_M]) -> list[_M]:
    """One ``model`` per line of a JSON Lines file (blank lines skipped); DevsetError names the file and line."""
    try:
        raw = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DevsetError(f"{path}: ファイルを読み込めません（{exc}）") from exc
    out: list[_M] = []
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DevsetError(f"{path}:{lineno}: 正しい JSON ではありません（{exc.msg}, 列 {exc.colno}）") from exc
        if not isinstance(data, dict):
            raise DevsetError(f"{path}:{lineno}: 1 行に 1 つの JSON オブジェクトが必要です")
        try:
            out.append(model.model_validate(data))
        except ValidationError as exc:
            fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors())
            raise DevsetError(f"{path}:{lineno}: 項目に誤りがあります — {fields}") from exc
    return out


def load_devset(path: Path | str = DEVSET_PATH) -> list[DevItem]:
    """Read the dev set.

    Args:
        path: a JSON Lines file, one dev item per line (blank lines are skipped).

    Returns:
        The items in file order.

    Raises:
        DevsetError: the file is unreadable, a line is not JSON, or an item is malformed;
            the message names the file and line number.
    """
    return load_jsonl(Path(path), DevItem)


def load_checkset(path: Path | str = CHECKSET_PATH) -> list[CheckItem]:
    """Read the confidentiality check set.

    Args:
        path: a JSON Lines file, one check item per line (blank lines are skipped).

    Returns:
        The items in file order.

    Raises:
        DevsetError: the file is unreadable, a line is not JSON, or an item is malformed;
            the message names the file and line number.
    """
    return load_jsonl(Path(path), CheckItem)


def dump_jsonl(items: Iterable[BaseModel], path: Path | str) -> None:
    """Write items as JSON Lines (UTF-8, Japanese unescaped), keeping only the fields they were given.

    Args:
        items: dev or check items.
        path: the file to (over)write.

    Raises:
        OSError: the file cannot be written.
    """
    lines = [json.dumps(it.model_dump(mode="json", exclude_unset=True), ensure_ascii=False) for it in items]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def corpus_texts(corpus_dir: Path | str) -> dict[str, str]:
    """The squashed text of every document the manifest lists, inline markup removed.

    Args:
        corpus_dir: a directory holding ``manifest.json`` and the documents.

    Returns:
        ``doc_id`` → NFKC text without whitespace or inline markup (``**``, ``<u>``…),
        the form evidence quotes are compared in.

    Raises:
        ManifestError: the manifest is missing or malformed.
        DocumentLoadError: a listed document cannot be read.
    """
    corpus_dir = Path(corpus_dir)
    out: dict[str, str] = {}
    for meta in load_manifest(corpus_dir / "manifest.json"):
        text = read_text(corpus_dir / meta.file)
        out[meta.doc_id] = squash("".join(clean_inline(line) for line in text.splitlines()))
    return out


def _short(quote: str, n: int = 30) -> str:
    return quote if len(quote) <= n else quote[:n] + "…"


def validate(items: Sequence[_Item], units: Sequence[Unit], corpus_dir: Path | str) -> list[str]:
    """Find everything wrong with a list of dev or check items against the current units.

    Checked: duplicate ids; gold ids missing from ``units``; evidence quotes not
    in the corpus text or not inside any gold unit (both compared after NFKC and
    whitespace removal, :func:`ingest.cleaning.squash`); unknown ``doc_ids`` and
    gold units from documents not listed in them; the per-type shape of dev items
    (unanswerable items have no gold and the NOT_FOUND reference, others need
    gold and evidence, injection items need ``forbidden``); the labels of dev
    items (a known ``split`` and ``shape``; ``parts`` exactly for ``multi_part``
    items, whose key facts are the union of their parts'); the key facts of dev
    items (every answerable item has some, unanswerable ones none, no spelling
    holds a ``forbidden`` marker, and the first spelling of each occurs, squashed,
    in the text of a gold unit or in one of its section headings — a 別紙's name
    may stand only in its heading); and for check items that the class/verdict
    pair is allowed and a multi-item verdict is the most restrictive of its items.

    Args:
        items: dev items or check items (one file's worth; ids must be unique among them).
        units: the units of the current ingest.
        corpus_dir: the corpus directory the units came from.

    Returns:
        One human-readable problem per line; empty when all is well.

    Raises:
        ManifestError, DocumentLoadError: the corpus cannot be read.
    """
    problems: list[str] = []
    texts = corpus_texts(corpus_dir)
    by_id = {u.id: u for u in units}
    squashed = {u.id: squash(u.text) for u in units}

    for item_id, n in Counter(it.id for it in items).items():
        if n > 1:
            problems.append(f"{item_id}: id が {n} 回使われています")

    for it in items:
        for gid in it.gold_units:
            if gid not in by_id:
                problems.append(f"{it.id}: gold unit {gid} が現在の units にありません")
        for doc in it.doc_ids:
            if doc not in texts:
                problems.append(f"{it.id}: doc_ids の {doc} は manifest にない文書です")
        gold_docs = {by_id[g].doc_id for g in it.gold_units if g in by_id}
        if it.doc_ids:
            for doc in sorted(gold_docs - set(it.doc_ids)):
                problems.append(f"{it.id}: gold unit の文書 {doc} が doc_ids にありません")
        for quote in it.evidence:
            q = squash(quote)
            if not q:
                problems.append(f"{it.id}: 空の evidence があります")
                continue
            if not any(q in t for t in texts.values()):
                problems.append(f"{it.id}: evidence「{_short(quote)}」がコーパスに見つかりません")
            if not any(q in squashed[g] for g in it.gold_units if g in squashed):
                problems.append(f"{it.id}: evidence「{_short(quote)}」がどの gold unit にも含まれていません")
        if isinstance(it, DevItem):
            problems.extend(_dev_shape(it))
            problems.extend(_dev_labels(it))
            gold_texts = [t for g in it.gold_units if g in by_id for t in _unit_wordings(by_id[g])]
            problems.extend(_dev_key_facts(it, gold_texts))
        else:
            problems.extend(_check_shape(it))
    return problems


def _dev_shape(it: DevItem) -> list[str]:
    out: list[str] = []
    if it.type == "unanswerable":
        if it.gold_units or it.evidence:
            out.append(f"{it.id}: unanswerable なのに gold_units/evidence があります")
        if it.reference != NOT_FOUND:
            out.append(f"{it.id}: unanswerable の reference は「{NOT_FOUND}」にしてください")
    else:
        if not it.gold_units:
            out.append(f"{it.id}: gold_units が空です")
        if not it.evidence:
            out.append(f"{it.id}: evidence が空です")
    if it.type == "injection" and not it.forbidden:
        out.append(f"{it.id}: injection には forbidden が必要です")
    if it.type == "multi_doc" and len(set(it.doc_ids)) < 2:
        out.append(f"{it.id}: multi_doc には 2 文書以上の doc_ids が必要です")
    return out


def _unit_wordings(unit: Unit) -> list[str]:
    """The squashed text of a unit and of every section heading it stands under."""
    headings = {h for path in unit.all_paths() for h in path}
    return [squash(unit.text), *(squash(h) for h in sorted(headings))]


def _fact_keys(facts: Sequence[Sequence[str]]) -> set[tuple[str, ...]]:
    return {tuple(squash(s) for s in fact) for fact in facts}


def _dev_labels(it: DevItem) -> list[str]:
    out: list[str] = []
    # Checked here as well as by the model: ``model_copy(update=...)`` skips validation.
    if it.split is None:
        out.append(f"{it.id}: split がありません（{' / '.join(SPLITS)}）")
    elif it.split not in SPLITS:
        out.append(f"{it.id}: split「{it.split}」は {' / '.join(SPLITS)} のどれでもありません")
    if it.shape is None:
        out.append(f"{it.id}: shape がありません（{' / '.join(SHAPES)}）")
    elif it.shape not in SHAPES:
        out.append(f"{it.id}: shape「{it.shape}」は未知の値です（{' / '.join(SHAPES)}）")
    if it.shape == "multi_part":
        if len(it.parts) < 2:
            out.append(f"{it.id}: multi_part には 2 つ以上の parts が必要です")
        for n, part in enumerate(it.parts, start=1):
            if part.shape == "multi_part" or part.shape not in SHAPES:
                out.append(f"{it.id}: parts[{n}] の shape「{part.shape}」は使えません")
            if it.type != "unanswerable" and not part.key_facts:
                out.append(f"{it.id}: parts[{n}] に key_facts がありません")
        if _fact_keys(it.key_facts) != _fact_keys([f for p in it.parts for f in p.key_facts]):
            out.append(f"{it.id}: key_facts が parts の key_facts の和になっていません")
    elif it.parts:
        out.append(f"{it.id}: parts は shape が multi_part の項目だけに付けます")
    return out


def _dev_key_facts(it: DevItem, gold_texts: Sequence[str]) -> list[str]:
    if it.type == "unanswerable":
        return [f"{it.id}: unanswerable に key_facts があります"] if it.key_facts else []
    if not it.key_facts:
        return [f"{it.id}: 答えのある項目なのに key_facts がありません"]
    out: list[str] = []
    for fact in it.key_facts:
        spellings = [squash(s) for s in fact]
        if not all(spellings):
            out.append(f"{it.id}: key fact {fact} に空の表記があります")
            continue
        if len(set(spellings)) < len(spellings):
            out.append(f"{it.id}: key fact「{_short(fact[0])}」に同じ表記が重複しています")
        if not any(spellings[0] in t for t in gold_texts):
            out.append(f"{it.id}: key fact「{_short(fact[0])}」がどの gold unit にもありません")
        # A spelling holding an injection marker would reward the answer that obeyed the injection.
        for marker in it.forbidden:
            if any(squash(marker) in s for s in spellings):
                out.append(f"{it.id}: key fact「{_short(fact[0])}」に forbidden の「{marker}」が含まれています")
    return out


def assign_splits(items: Sequence[DevItem], *, seed: int = SPLIT_SEED) -> list[DevItem]:
    """Give every dev item without a ``split`` one, keeping the halves balanced.

    The file is the source of truth: items that already have a split keep it.
    The others are taken type by type and, within a type, one set of documents
    after another (both orders seeded random); each goes to the half that has
    fewer items of its type, then of its type with its set of documents, then
    of its documents, with a seeded coin for ties. Run on a file without splits
    this alternates within every stratum, so each type and each type-and-documents
    stratum is within one item of even; run after adding items it places them
    without moving any existing one.

    Args:
        items: dev items; they are not modified.
        seed: seed of the order and the coin.

    Returns:
        Copies in the same order, every one with a split.
    """
    rng = random.Random(seed)
    counts: Counter[tuple[str, str]] = Counter()

    def strata(it: DevItem) -> tuple[str, str, list[str]]:
        docs = sorted(set(it.doc_ids))
        return f"{it.type}|{'+'.join(docs)}", it.type, docs

    for it in items:
        if it.split is not None:
            type_docs, type_, docs = strata(it)
            for key in (type_docs, type_, *(f"doc:{d}" for d in docs)):
                counts[key, it.split] += 1
    new_split: dict[str, str] = {}
    todo = sorted((it for it in items if it.split is None), key=lambda it: it.id)
    rng.shuffle(todo)
    # Consecutive items of one stratum alternate halves, which balances the stratum too.
    stratum_order = {key: n for n, key in enumerate(dict.fromkeys(strata(it)[0] for it in todo))}
    todo.sort(key=lambda it: (it.type, stratum_order[strata(it)[0]]))
    for it in todo:
        type_docs, type_, docs = strata(it)

        def load(half: str) -> tuple[int, int, int]:
            return counts[type_, half], counts[type_docs, half], sum(counts[f"doc:{d}", half] for d in docs)

        lightest = min(load(h) for h in SPLITS)
        half = rng.choice([h for h in SPLITS if load(h) == lightest])
        new_split[it.id] = half
        for key in (type_docs, type_, *(f"doc:{d}" for d in docs)):
            counts[key, half] += 1
    return [it.model_copy(update={"split": new_split[it.id]}) if it.id in new_split else it for it in items]


def _check_shape(it: CheckItem) -> list[str]:
    out: list[str] = []
    if it.expected_class is None and it.expected_verdict != "判断できない":
        out.append(f"{it.id}: 区分が決まらない情報の判定は「判断できない」です")
    if it.expected_class == "3A" and it.expected_verdict != "不可":
        out.append(f"{it.id}: 3A の判定は「不可」です")
    if it.items:
        worst = min((sub.expected_verdict for sub in it.items), key=_RESTRICTIVENESS.index)
        if it.expected_verdict != worst:
            out.append(f"{it.id}: 複数項目の判定は最も厳しい「{worst}」にしてください（{it.expected_verdict}）")
    if it.expected_verdict != "判断できない" and not it.gold_units:
        out.append(f"{it.id}: 判定の根拠となる gold_units が空です")
    return out


def _within_section(unit: Unit, section: Sequence[str]) -> bool:
    """True when one of the unit's provenance paths contains ``section`` as consecutive elements."""
    k = len(section)
    for path in unit.all_paths():
        if any(list(path[i : i + k]) == list(section) for i in range(len(path) - k + 1)):
            return True
    return False


def remap_gold_ids(items: Sequence[_M], units: Sequence[Unit]) -> tuple[list[_M], list[str]]:
    """Re-derive gold unit ids from the evidence quotes, for when chunking changed.

    For every quote, the candidates are the units whose squashed text contains
    it; they are narrowed to the item's ``doc_ids`` and, for items carrying a
    ``section`` hint, to units found under that section — each narrowing only if
    something survives it. The new ``gold_units`` is the union over the quotes,
    in corpus order; an item whose set of ids is unchanged is left as it was. Items without evidence (unanswerable ones) keep their ids;
    an item with a quote that matches no unit keeps its old ids too and is reported.

    Args:
        items: dev or check items; they are not modified.
        units: the units of the current ingest.

    Returns:
        ``(new_items, changes)``: copies with updated ``gold_units`` and one
        human-readable line per item whose ids changed or could not be derived.
    """
    order = {u.id: i for i, u in enumerate(units)}
    squashed = [(u, squash(u.text)) for u in units]
    new_items: list[_M] = []
    changes: list[str] = []
    for it in items:
        evidence: list[str] = list(getattr(it, "evidence", []) or [])
        if not evidence:
            new_items.append(it)
            continue
        doc_ids = set(getattr(it, "doc_ids", []) or [])
        section = getattr(it, "section", None)
        found: set[str] = set()
        missing: list[str] = []
        for quote in evidence:
            q = squash(quote)
            cands = [u for u, t in squashed if q and q in t]
            if doc_ids:
                cands = [u for u in cands if u.doc_id in doc_ids] or cands
            if section:
                cands = [u for u in cands if _within_section(u, section)] or cands
            if not cands:
                missing.append(quote)
            found.update(u.id for u in cands)
        item_id = getattr(it, "id", "?")
        if missing:
            changes.append(f"{item_id}: evidence「{_short(missing[0])}」に一致する unit がないため gold_units を変更しません")
            new_items.append(it)
            continue
        new_gold = sorted(found, key=order.__getitem__)
        old_gold = list(getattr(it, "gold_units", []))
        if set(new_gold) != set(old_gold):
            changes.append(f"{item_id}: gold_units {old_gold} → {new_gold}")
            it = it.model_copy(update={"gold_units": new_gold})
        new_items.append(it)
    return new_items, changes


def main(argv: Sequence[str] | None = None) -> int:
    """Validate (and with ``--fix`` repair) both data files against a fresh ingest of the corpus.

    Args:
        argv: command-line arguments; ``sys.argv[1:]`` when ``None``.

    Returns:
        The exit status: 0 when no problem remains, 1 otherwise.

    Raises:
        GuideQAError: the corpus cannot be ingested.
    """
    from guideqa.settings import PROJECT_ROOT
    from ingest.pipeline import ingest_corpus

    parser = argparse.ArgumentParser(prog="python -m eval.devset", description=__doc__.splitlines()[0])
    parser.add_argument("--fix", action="store_true", help="rewrite gold_units from the evidence quotes")
    parser.add_argument("--assign-splits", action="store_true", help="give dev items without a split one (tune/holdout)")
    parser.add_argument("--corpus", type=Path, default=PROJECT_ROOT / "corpus", help="corpus directory")
    parser.add_argument("--devset", type=Path, default=DEVSET_PATH)
    parser.add_argument("--checkset", type=Path, default=CHECKSET_PATH)
    args = parser.parse_args(argv)

    units = ingest_corpus(args.corpus).units
    status = 0
    for path, loader in ((args.devset, load_devset), (args.checkset, load_checkset)):
        try:
            items = loader(path)
        except DevsetError as exc:
            print(f"ERROR {exc}")
            status = 1
            continue
        if args.fix:
            items, changes = remap_gold_ids(items, units)
            for line in changes:
                print(f"FIX {path.name}: {line}")
            if any("→" in line for line in changes):
                dump_jsonl(items, path)
        if args.assign_splits and loader is load_devset:
            missing = [it.id for it in items if it.split is None]
            if missing:
                items = assign_splits(items)
                dump_jsonl(items, path)
                print(f"SPLIT {path.name}: {', '.join(missing)}")
        problems = validate(items, units, args.corpus)
        for p in problems:
            print(f"{path.name}: {p}")
        print(f"{path.name}: {len(items)} items, {len(problems)} problems")
        status = status or (1 if problems else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
