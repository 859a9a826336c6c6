"""The office-regulation section of ``guideqa eval``: each office's own deployment, asked its staff's questions.

``eval/data/office/`` holds invented municipal rules, their ``manifest.json`` (authority
``binding``), a dev set of staff questions (``devset.jsonl``: the dev-set schema plus
``office``, ``expected_labels``, ``local_first``, ``conflict``) and one local
confidentiality policy per office (``policy-*.yaml``; its ``office:`` names the office).

Each office runs its own deployment, as it would in production: an index of the bundled
corpus plus that office's documents, with that office's policy. A question whose
``office`` is null (it names several offices) runs on a deployment holding all of them,
without a policy. The indexes live under ``<data_dir>/eval/offices/`` and always on an
embedded Qdrant Edge shard (an evaluation must never move a server's alias); embeddings
come from the shared cache, so only new units are embedded, and an unchanged index is not
rebuilt.

Before any question runs, gold units are derived from the verbatim evidence on each built
index (:func:`eval.devset.remap_gold_ids`) and the items are checked like the dev set
(:func:`eval.devset.validate`; a key fact in none of the gold units stops the run, naming
the item), and each policy is loaded against its index. Each answer is scored like a dev
answer (key facts, statement-level faithfulness) and on:

* **right 条・項** — a citation carries one of ``expected_labels``
  (:func:`eval.metrics.labels_matched`);
* **local rule first** — for ``local_first`` items, the first citation shown (the verdict
  card's when there is one, else the answer's) is from the office's own binding document;
* **unanswerable declined**.

The answers use the LLM when the run has one (answer mode), else the composed answer.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from eval.devset import (
    DATA_DIR,
    SPLITS,
    DevItem,
    DevsetError,
    load_devset,
    remap_gold_ids,
    validate,
)
from eval.metrics import labels_matched, percentile, share_true
from eval.report import faithfulness_summary, split_gaps, verdict_counts
from eval.runner import RunConfig, dev_row, piece_labels, record_row, score_answer, unit_source
from guideqa.errors import EvalDataInvalid, GuideQAError, RulesError
from guideqa.settings import Settings
from index.tokenizer import JapaneseTokenizer
from ingest.manifest import load_manifest
from ingest.models import DocumentMeta, Unit
from ingest.pipeline import ingest_corpus

if TYPE_CHECKING:
    from service.state import AppState

__all__ = [
    "OFFICE_DIR",
    "OFFICE_DEVSET",
    "ALL_OFFICES",
    "Deployment",
    "OfficePlan",
    "load_office_items",
    "plan_offices",
    "build_offices",
    "prepare_offices",
    "run_offices",
    "score_office",
    "summarize_offices",
]

OFFICE_DIR = DATA_DIR / "office"
OFFICE_DEVSET = OFFICE_DIR / "devset.jsonl"
#: The deployment (and the group in the summary) of the questions that name several offices.
ALL_OFFICES = "全団体"
_ALL_SLUG = "all-offices"


@dataclass
class Deployment:
    """One office's own service: the bundled corpus plus its documents, its policy, its questions."""

    name: str
    doc_ids: tuple[str, ...]
    policy: Path | None
    settings: Settings
    units: list[Unit]
    items: list[DevItem] = field(default_factory=list)
    build: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """What the summary records of this deployment."""
        return {"name": self.name, "doc_ids": list(self.doc_ids), "policy": self.policy.name if self.policy else None, "items": len(self.items), **self.build}


@dataclass
class OfficePlan:
    """The deployments to run and what the data check found that does not stop the run."""

    deployments: list[Deployment]
    warnings: list[str] = field(default_factory=list)


def load_office_items(path: Path = OFFICE_DEVSET) -> list[DevItem]:
    """Read the office dev set.

    Raises:
        EvalDataInvalid: the file is unreadable or an item is malformed (the message names the line).
    """
    try:
        return load_devset(path)
    except DevsetError as exc:
        raise EvalDataInvalid(str(exc)) from exc


def _office_of(item: DevItem) -> str:
    """The office asking, or :data:`ALL_OFFICES` for a question over several."""
    return getattr(item, "office", None) or ALL_OFFICES


def _policies(office_dir: Path) -> dict[str, Path]:
    """Office name → its policy file, from each ``policy-*.yaml``'s ``office`` field."""
    out: dict[str, Path] = {}
    for path in sorted(office_dir.glob("policy-*.yaml")):
        try:
            office = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("office")
        except (OSError, yaml.YAMLError, AttributeError) as exc:
            raise EvalDataInvalid(f"ローカルポリシー {path.name} を読み込めません（{exc}）。") from exc
        if office:
            out[str(office)] = path
    return out


def _merge_corpora(corpus_dir: Path, office_dir: Path, dest: Path) -> tuple[list[DocumentMeta], list[DocumentMeta]]:
    """Copy the bundled documents and the office documents into ``dest`` with one manifest listing both."""
    bundled = load_manifest(corpus_dir / "manifest.json")
    try:
        offices = load_manifest(office_dir / "manifest.json")
    except GuideQAError as exc:
        raise EvalDataInvalid(f"{office_dir.name}/manifest.json: {exc.message}") from exc
    entries = []
    for source, metas in ((corpus_dir, bundled), (office_dir, offices)):
        raw = json.loads((source / "manifest.json").read_text(encoding="utf-8-sig"))
        entries += raw["documents"] if isinstance(raw, dict) else raw
        for meta in metas:
            (dest / meta.file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / meta.file, dest / meta.file)
    (dest / "manifest.json").write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    return bundled, offices


def _deployment_settings(settings: Settings, data_dir: Path, policy: Path | None) -> Settings:
    return settings.model_copy(
        update={
            "data_dir": data_dir,
            "cache_dir": settings.embed_cache_path.parent,
            "models_path": settings.model_dir,
            "local_policy_file": policy,
            "qdrant_url": None,
            "qdrant_api_key": None,
            "qdrant_local_path": None,
            "audit_db_url": None,
        }
    )


def _build(dep: Deployment, tokenizer: JapaneseTokenizer) -> None:
    from index.build import build_index
    from index.embeddings import get_embedding_model

    t0 = time.perf_counter()
    report = build_index(dep.units, dep.settings, embed_model=get_embedding_model(dep.settings), tokenizer=tokenizer)
    dep.build = {
        "index_version": report.meta.version,
        "units": report.meta.units,
        "embedded": 0 if report.skipped else report.meta.embedded,
        "rebuilt": not report.skipped,
        "build_s": round(time.perf_counter() - t0, 2),
    }


def plan_offices(settings: Settings, items: Sequence[DevItem], *, office_dir: Path = OFFICE_DIR) -> OfficePlan:
    """Every office's deployment, with its questions checked against what its index will hold (nothing built yet).

    The bundled corpus (``settings.corpus_dir``) and the office documents are ingested once,
    from a merged temporary corpus; each deployment holds the bundled units plus its
    office's (all offices' for the questions naming several).

    Args:
        settings: the run's settings (embedding model, cache, models, data dir).
        items: the office dev set.
        office_dir: where the office documents, their manifest and the policies are.

    Returns:
        The deployments, each with its items (gold units derived from the evidence), and
        warnings: expected labels that no unit of the parsed rules carries.

    Raises:
        EvalDataInvalid: an office has no document, an office document cannot be read,
            or an item fails the dev-set checks (named in the message).
    """
    policies = _policies(office_dir)
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="guideqa-offices-") as tmp:
        merged = Path(tmp)
        bundled, offices = _merge_corpora(settings.corpus_dir, office_dir, merged)
        result = ingest_corpus(merged)
        failed = {r.doc_id: r.error for r in result.failed}
        if failed:
            raise EvalDataInvalid("団体の規程を取り込めませんでした: " + "; ".join(f"{d}: {e}" for d, e in failed.items()))
        bundled_ids = {m.doc_id for m in bundled}
        docs_of: dict[str, list[str]] = {}
        for meta in offices:
            docs_of.setdefault(meta.issuer, []).append(meta.doc_id)
        names = list(dict.fromkeys(_office_of(it) for it in items))
        problems += [
            f"{it.id}: office「{_office_of(it)}」の文書が {office_dir.name}/manifest.json にありません"
            for it in items if _office_of(it) not in docs_of and _office_of(it) != ALL_OFFICES
        ]
        deployments: list[Deployment] = []
        root = settings.data_dir / "eval" / "offices"
        for name in [n for n in names if n in docs_of or n == ALL_OFFICES]:
            doc_ids = tuple(docs_of[name]) if name != ALL_OFFICES else tuple(m.doc_id for m in offices)
            policy = policies.get(name)
            slug = doc_ids[0] if name != ALL_OFFICES else _ALL_SLUG
            units = [u for u in result.units if u.doc_id in bundled_ids or u.doc_id in doc_ids]
            dep = Deployment(name, doc_ids, policy, _deployment_settings(settings, root / slug, policy), units)
            mine = [it for it in items if _office_of(it) == name]
            dep.items, _ = remap_gold_ids(mine, units)
            problems += validate(dep.items, units, merged)
            deployments.append(dep)
    if problems:
        shown = "\n".join(f"  - {p}" for p in problems[:20])
        more = f"\n  … ほか {len(problems) - 20} 件" if len(problems) > 20 else ""
        raise EvalDataInvalid(f"団体別の評価データに {len(problems)} 件の問題があるため、評価を実行しませんでした:\n{shown}{more}")
    warnings: list[str] = []
    for dep in deployments:
        carried = [(u.doc_title, u.label) for u in dep.units if u.label]
        for it in dep.items:
            expected = list(getattr(it, "expected_labels", None) or [])
            found = set(labels_matched(expected, carried))
            warnings += [f"{it.id}: no unit of the parsed rules carries the label「{label}」" for label in expected if label not in found]
    return OfficePlan(deployments=deployments, warnings=warnings)


def build_offices(plan: OfficePlan, tokenizer: JapaneseTokenizer) -> None:
    """Build (or find unchanged) every deployment's index under ``<data_dir>/eval/offices/``.

    Raises:
        GuideQAError: an index cannot be written (held by another process…).
    """
    for dep in plan.deployments:
        _build(dep, tokenizer)


def prepare_offices(settings: Settings, items: Sequence[DevItem], tokenizer: JapaneseTokenizer, *, office_dir: Path = OFFICE_DIR) -> OfficePlan:
    """:func:`plan_offices`, then :func:`build_offices`: the deployments, ready to be asked.

    Raises:
        EvalDataInvalid: as :func:`plan_offices` (raised before anything is built).
        GuideQAError: an index cannot be built.
    """
    plan = plan_offices(settings, items, office_dir=office_dir)
    build_offices(plan, tokenizer)
    return plan


def _own_documents(dep: Deployment, item: DevItem) -> set[str]:
    """The documents that are "the office's own rule" for this question."""
    if dep.name != ALL_OFFICES:
        return set(dep.doc_ids)
    return set(item.doc_ids) & set(dep.doc_ids)


def score_office(row: Mapping[str, Any], item: DevItem, own_docs: Iterable[str]) -> dict[str, Any]:
    """The office-specific scores of one answered row.

    Args:
        row: a results row with ``citations`` (``n``, ``doc_id``, ``doc_title``, ``label``)
            and ``verdict_card``.
        item: the office dev item (``expected_labels``, ``local_first``).
        own_docs: the doc_ids of the office's own binding documents.

    Returns:
        ``labels_found`` and ``labels_right`` (``None`` for an item without expected
        labels), ``first_cited`` (document, label and whether it is the verdict card's),
        ``local_first`` (``None`` unless the item is ``local_first``) and ``why``: one
        phrase per failure (retrieval, key facts, 条・項, local rule first).
    """
    citations = sorted(row.get("citations") or [], key=lambda c: c.get("n") or 0)
    expected = list(getattr(item, "expected_labels", None) or [])
    title_of = {c.get("n"): c.get("doc_title") or "" for c in citations}
    shown = [(c.get("doc_title") or "", c.get("label") or "") for c in citations] + [(title_of.get(n, ""), label) for n, label in piece_labels(row)]
    found = labels_matched(expected, shown)
    first = citations[0] if citations else None
    card = row.get("verdict_card") or {}
    out: dict[str, Any] = {
        "labels_found": found,
        "labels_right": bool(found) if expected else None,
        "first_cited": None if first is None else {
            "doc_id": first.get("doc_id"), "doc_title": first.get("doc_title"), "label": first.get("label"),
            "from_card": first.get("unit_id") in (card.get("citations") or []),
        },
        "local_first": (first is not None and first.get("doc_id") in set(own_docs)) if getattr(item, "local_first", False) else None,
    }
    out["why"] = _why(row, out, expected, [c.get("label") or "–" for c in citations])
    return out


def _why(row: Mapping[str, Any], scores: Mapping[str, Any], expected: Sequence[str], cited: Sequence[str]) -> list[str]:
    """What kept one office answer from passing (empty when it passed), with where retrieval left the gold clause.

    Failing means: an unanswerable item answered, key facts not all stated (the key-fact
    verdict is not ``correct``), no expected 条・項 cited, or the local rule not first.
    """
    if row.get("type") == "unanswerable":
        return [] if row.get("abstained") else ["answered a question the documents do not answer"]
    why: list[str] = []
    if row.get("answer_verdict") not in (None, "correct"):
        why.append(f"{row['answer_verdict']}: " + "; ".join((row.get("kf") or {}).get("reasons") or []))
    if scores["labels_right"] is False:
        why.append(f"wrong 条・項 cited ({', '.join(cited[:5]) or 'none'}; expected {' / '.join(expected)})")
    first = scores["first_cited"]
    if scores["local_first"] is False:
        where = "nothing cited" if first is None else f"first cited {first['doc_title']} {first['label'] or '(no label)'}" + (" on the verdict card" if first["from_card"] else "")
        why.append(f"local rule not first ({where})")
    # Where the search left the gold clause tells a retrieval miss from a composition one.
    if why and row.get("hit10") == 0.0:
        why.insert(0, "retrieval missed the gold clause (not in the top 10)")
    elif why and row.get("hit5") == 0.0:
        why.insert(0, "gold clause ranked 6–10")
    return why


def _office_row(state: AppState, dep: Deployment, item: DevItem) -> dict[str, Any]:
    row = dev_row(state, item, RunConfig(mode="answer"))
    row.update(set="office", office=dep.name, deployment=dep.name, local_first_item=bool(getattr(item, "local_first", False)), conflict=bool(getattr(item, "conflict", False)))
    row.update(score_office(row, item, _own_documents(dep, item)))
    return row


def _open(dep: Deployment, backend: Any | None) -> AppState:
    from service.state import build_state

    state = build_state(dep.settings, load_llm=False)
    state.backend = backend  # one model for every deployment: loading it once per office would cost seconds each
    try:
        state.check_engine  # noqa: B018 - loads the office's policy now: a broken one must stop the run, not vanish from the answers
    except RulesError as exc:
        state.close()
        raise EvalDataInvalid(f"{dep.policy.name if dep.policy else 'rules'}: {exc.message}") from exc
    return state


def run_offices(
    plan: OfficePlan,
    *,
    backend: Any | None,
    tokenizer: JapaneseTokenizer,
    results_path: Path,
    done: Mapping[str, dict[str, Any]] | None = None,
    on_item: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Ask every office question on its office's deployment and score it.

    Rows already in ``done`` (an interrupted run) are scored again with today's items and
    not asked again; new rows are appended to ``results_path`` as soon as they are scored.

    Args:
        plan: the deployments (:func:`prepare_offices`).
        backend: the chat model shared by every deployment, or ``None`` for the composed answers.
        tokenizer: the project's tokenizer.
        results_path: the office results file (JSON Lines).
        done: rows of an interrupted run, by item ID.
        on_item: progress callback with the item ID.

    Returns:
        One row per item, in deployment order.

    Raises:
        EvalDataInvalid: an office's policy does not load against its index.
    """
    done = done or {}
    rows: list[dict[str, Any]] = []
    with results_path.open("a", encoding="utf-8") as fout:
        for dep in plan.deployments:
            texts = {u.id: unit_source(u.model_dump()) for u in dep.units}
            for item in dep.items:
                if item.id in done:
                    old = {**done[item.id], "gold_units": item.gold_units}
                    if "answer" in old:
                        old.update(score_answer(old, item, texts, tokenizer))
                    old.update(score_office(old, item, _own_documents(dep, item)))
                    rows.append(old)
            todo = [it for it in dep.items if it.id not in done]
            if not todo:
                continue
            state = _open(dep, backend)
            try:
                for item in todo:
                    record_row(fout, rows, _office_row(state, dep, item), on_item)
            finally:
                state.close()
    return rows



def _headline(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    answered = [r for r in rows if "answer" in r]
    answerable = [r for r in answered if r["type"] != "unanswerable"]
    unanswerable = [r for r in answered if r["type"] == "unanswerable"]
    verdicts = verdict_counts(answerable)
    faith = faithfulness_summary(answered) or {}
    retrieved = [r for r in rows if "hit5" in r]
    return {
        "n": len(rows),
        "n_answerable": verdicts["n"],
        "correct_rate": verdicts["correct_rate"],
        "partial_rate": verdicts["partial_rate"],
        "wrong_rate": verdicts["wrong_rate"],
        "labels_right": share_true(r.get("labels_right") for r in answered),
        "n_labelled": sum(1 for r in answered if r.get("labels_right") is not None),
        "local_first": share_true(r.get("local_first") for r in answered),
        "n_local_first": sum(1 for r in answered if r.get("local_first") is not None),
        "unanswerable_declined": share_true(bool(r.get("abstained")) for r in unanswerable),
        "n_unanswerable": len(unanswerable),
        "written_supported_share": faith.get("written_supported_share"),
        "supported_share": faith.get("supported_share"),
        "hit@5": share_true(r["hit5"] == 1.0 for r in retrieved),
        "answer_s_p50": percentile([r["answer_s"] for r in answered if r.get("answer_s") is not None], 0.5),
    }


def summarize_offices(
    rows: Sequence[Mapping[str, Any]],
    plan: OfficePlan | None,
    *,
    gap_tolerances: Mapping[str, float],
    llm: str | None,
) -> dict[str, Any]:
    """The office section of ``summary.json``.

    Args:
        rows: the scored office rows.
        plan: the deployments that ran (``None`` when only rows are at hand).
        gap_tolerances: ``[office_split_gap]`` of ``eval/tolerances.toml``.
        llm: the model that chose and wrote leads, or ``None`` for composed answers.

    Returns:
        ``all``, ``by_office`` and ``splits`` (each: key-fact correctness, right 条・項,
        local rule first, unanswerable declined, faithfulness, hit@5), ``split_gaps``,
        the deployments and the data warnings.
    """
    offices = list(dict.fromkeys(r.get("office") or ALL_OFFICES for r in rows))
    splits = {s: _headline([r for r in rows if r.get("split") == s]) for s in SPLITS}
    return {
        "llm": llm,
        "all": _headline(rows),
        "by_office": {o: _headline([r for r in rows if (r.get("office") or ALL_OFFICES) == o]) for o in offices},
        "splits": splits,
        "split_gaps": split_gaps(splits, dict(gap_tolerances)),
        "deployments": [d.describe() for d in plan.deployments] if plan else [],
        "warnings": list(plan.warnings) if plan else [],
    }
