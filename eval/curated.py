"""Registered answers (「登録済みの回答」): chosen on the tune split, reported on the holdout split.

The data is ``eval/data/curated`` (see its README): 25 registered Q&A, three staff
paraphrases of each (``split`` per item) and 30 unrelated questions (15 near misses on
the same topics, 15 other office matters). Everything runs on a throwaway index that
holds the real corpus and the 25 items (:func:`build_registry_index`), through the
service's own matcher (:class:`service.curated.CuratedMatcher`).

1. **Resolution**: every item must still resolve to the corpus after ingest
   (:func:`ingest.curated.load_curated`); one that does not is listed. And every
   registered question, asked word for word, must get its own answer.
2. **Selection** (:func:`select_params`, tune split only): the wording overlap that stands
   in for the documents' agreement is the lowest step of 0.05 above that of every unrelated
   tune question with its closest registered one. Then for each margin on a grid, the
   threshold is the lowest step of 0.005 at which no unrelated tune question gets a
   registered answer (no false match on tune by construction); the margin that then shows
   the right answer for the most tune paraphrases, a wrong one costing three, wins (ties:
   the smaller margin). The floor of 「よく似た質問」 is the lowest step above every
   *other* (off-topic) tune question, so questions about leave or keys get no suggestion.
3. **Report** (:func:`evaluate`, both splits, parameters frozen): hit rate (right item
   shown), wrong-item rate (another item shown), false matches on unrelated questions
   (near misses and others apart), and how often the right item is at least among the
   similar questions.

    python -m eval.curated              # prints the report as markdown
    python -m eval.curated --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from guideqa.errors import EvalDataInvalid
from guideqa.settings import PROJECT_ROOT, Settings, get_settings
from index.store import QueryFilter
from ingest.curated import read_curated
from service.curated import (
    EVIDENCE_DEPTH,
    SIMILAR_SHOWN,
    MatchParams,
    best_match,
    cited_in,
)

__all__ = [
    "DATA_DIR",
    "QuestionRow",
    "CuratedEval",
    "load_questions",
    "build_registry_index",
    "collect",
    "evaluate",
    "select_params",
    "run_curated_eval",
    "render_markdown",
]

DATA_DIR = PROJECT_ROOT / "eval" / "data" / "curated"
MARGIN_GRID = (0.0, 0.005, 0.01, 0.015, 0.02, 0.03)
THRESHOLD_STEP = 0.005
WORDING_STEP = 0.05
#: A wrong registered answer shown as 「登録済みの回答」 does more harm than none.
WRONG_COST = 3


@dataclass
class QuestionRow:
    """One evaluation question with what the matcher sees: its ranked clauses and the registered candidates.

    ``gold`` is the registered item a paraphrase should get (``None``: an unrelated
    question, ``kind`` ``near_miss`` or ``other``).
    """

    question: str
    split: str
    kind: str
    gold: str | None
    ranked_ids: list[str]
    candidates: list[Any] = field(repr=False)

    def shown(self, params: MatchParams) -> str | None:
        """The registered item the service would show first, or ``None``."""
        best = best_match(self.candidates, self.ranked_ids, params)
        return best.unit["curated"]["item_id"] if best is not None else None

    def similar(self, params: MatchParams) -> list[str]:
        """The registered items offered as 「よく似た質問」."""
        shown = self.shown(params)
        return [c.unit["curated"]["item_id"] for c in self.candidates if c.cosine >= params.similar_floor and c.unit["curated"]["item_id"] != shown][:SIMILAR_SHOWN]

    @property
    def top_cosine(self) -> float:
        return self.candidates[0].cosine if self.candidates else 0.0

    @property
    def top_overlap(self) -> float:
        return self.candidates[0].overlap if self.candidates else 0.0


@dataclass
class CuratedEval:
    params: MatchParams
    unresolved: list[tuple[str, str]]
    verbatim: str  # registered questions asked word for word that got their own answer, "k/n"
    splits: dict[str, dict[str, Any]]
    misses: list[dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        return {"params": asdict(self.params), "unresolved": self.unresolved, "verbatim": self.verbatim, **self.splits}


def load_questions(data_dir: Path = DATA_DIR) -> list[tuple[str, str, str, str | None]]:
    """``(question, split, kind, gold item)`` for every paraphrase and unrelated question.

    Raises:
        EvalDataInvalid: a file is missing or a line is malformed.
    """
    rows: list[tuple[str, str, str, str | None]] = []
    try:
        for line in (data_dir / "paraphrases.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                rows += [(q, item["split"], "paraphrase", item["curated_id"]) for q in item["paraphrases"]]
        for line in (data_dir / "unrelated.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                rows.append((item["question"], item["split"], item["kind"], None))
    except (OSError, ValueError, KeyError) as exc:
        raise EvalDataInvalid(f"{data_dir} の評価データを読めません: {exc}") from exc
    return rows


def build_registry_index(settings: Settings, registry: Path) -> list[tuple[str, str]]:
    """Ingest the corpus with ``registry`` and build the index ``settings`` name.

    Returns:
        The items that did not resolve, as ``(id, reason)``.
    """
    from index.build import build_index
    from index.embeddings import get_embedding_model
    from index.tokenizer import get_tokenizer
    from ingest.pipeline import ingest_corpus

    result = ingest_corpus(settings.corpus_dir, settings.manifest_path, curated_path=registry)
    build_index(result.units, settings, embed_model=get_embedding_model(settings), tokenizer=get_tokenizer(),
                documents=len(result.documents) - len(result.failed))
    return list(result.curated.skipped)


def collect(searcher: Any, questions: Sequence[tuple[str, str, str, str | None]], *, groups: Sequence[str] = ("public",)) -> list[QuestionRow]:
    """Run each question as the answer pipeline does (normalised): its ranked clauses, then the registered candidates."""
    from service.request import normalise_question

    flt = QueryFilter(access=list(groups))
    rows = []
    for question, split, kind, gold in questions:
        q = normalise_question(question)
        ranked = [h.unit_id for h in searcher.search(q, top_k=EVIDENCE_DEPTH, flt=flt).hits]
        rows.append(QuestionRow(q, split, kind, gold, ranked, searcher.curated_candidates(q, flt=flt)))
    return rows


def evaluate(rows: Sequence[QuestionRow], params: MatchParams, split: str) -> dict[str, Any]:
    """The figures of one split under ``params`` (see the module docstring)."""
    paraphrases = [r for r in rows if r.split == split and r.gold]
    unrelated = [r for r in rows if r.split == split and not r.gold]
    shown = [(r, r.shown(params)) for r in paraphrases]
    hit = sum(1 for r, s in shown if s == r.gold)
    wrong = sum(1 for r, s in shown if s is not None and s != r.gold)
    # The right item reached the user either way: shown first, or among 「よく似た質問」.
    offered = sum(1 for r, s in shown if s == r.gold or r.gold in r.similar(params))
    false = {k: sum(1 for r in unrelated if r.kind == k and r.shown(params) is not None) for k in ("near_miss", "other")}
    others = [r for r in unrelated if r.kind == "other"]
    n, n_near = len(paraphrases), sum(r.kind == "near_miss" for r in unrelated)
    return {
        "paraphrases": n,
        "hit_rate": _rate(hit, n),
        "wrong_item_rate": _rate(wrong, n),
        "shown_or_similar_rate": _rate(offered, n),
        "unrelated": len(unrelated),
        "false_matches_near_miss": f"{false['near_miss']}/{n_near}",
        "false_matches_other": f"{false['other']}/{len(others)}",
        "similar_offered_for_other": f"{sum(1 for r in others if r.similar(params))}/{len(others)}",
    }


def select_params(rows: Sequence[QuestionRow], *, margins: Sequence[float] = MARGIN_GRID) -> MatchParams:
    """The matching parameters, chosen on the ``tune`` rows alone (see the module docstring).

    Raises:
        EvalDataInvalid: the tune split has no paraphrase or no unrelated question.
    """
    tune = [r for r in rows if r.split == "tune"]
    paraphrases = [r for r in tune if r.gold]
    unrelated = [r for r in tune if not r.gold]
    if not paraphrases or not unrelated:
        raise EvalDataInvalid("tune split にパラフレーズと無関係な質問の両方が必要です。")
    same = _step_above(max(r.top_overlap for r in unrelated), WORDING_STEP)
    best: tuple[float, MatchParams] | None = None
    for margin in margins:
        # The unrelated questions that would get an answer at any threshold set the lowest safe one.
        reach = [r.top_cosine for r in unrelated if r.shown(MatchParams(threshold=0.0, margin=margin, same_wording=same)) is not None]
        threshold = _step_above(max(reach or [r.top_cosine for r in unrelated]))
        params = MatchParams(threshold=threshold, margin=margin, same_wording=same, similar_floor=threshold)
        objective = 0.0
        for r in paraphrases:
            shown = r.shown(params)
            if shown is not None:
                objective += 1 if shown == r.gold else -WRONG_COST
        if best is None or objective > best[0]:
            best = (objective, params)
    assert best is not None
    chosen = best[1]
    others = [r for r in unrelated if r.kind == "other"] or unrelated
    floor = min(_step_above(max(r.top_cosine for r in others)), chosen.threshold)
    return MatchParams(threshold=chosen.threshold, margin=chosen.margin, same_wording=chosen.same_wording, similar_floor=floor)


def run_curated_eval(settings: Settings, *, data_dir: Path = DATA_DIR) -> CuratedEval:
    """Build a throwaway index of the corpus and the evaluation registry, choose on tune, report both splits.

    The index goes to a temporary folder (the live one is not touched); embeddings come
    from the configured cache, so only the registry's texts are embedded.

    Raises:
        EvalDataInvalid: the data files are malformed.
        IndexError_, ModelUnavailable: the index or the embedding model cannot be used.
    """
    from index.embeddings import get_embedding_model
    from index.search import Searcher
    from index.tokenizer import get_tokenizer

    questions = load_questions(data_dir)
    registered = [(e.item.question, "registered", "verbatim", e.item.id) for e in read_curated(data_dir / "curated.yaml")[0]]
    with tempfile.TemporaryDirectory(prefix="guideqa-curated-eval-") as tmp:
        local = settings.model_copy(update={
            "data_dir": Path(tmp), "cache_dir": settings.embed_cache_path.parent, "models_path": settings.model_dir,
            "qdrant_url": None, "qdrant_local_path": None,
        })
        unresolved = build_registry_index(local, data_dir / "curated.yaml")
        searcher = Searcher(local, embed_model=get_embedding_model(local), tokenizer=get_tokenizer())
        try:
            rows = collect(searcher, questions)
            verbatim = collect(searcher, registered)
        finally:
            searcher.close()
    params = select_params(rows)
    splits = {split: evaluate(rows, params, split) for split in ("tune", "holdout")}
    misses = []
    for r in rows:
        shown = r.shown(params)
        if shown != r.gold:
            top = r.candidates[0] if r.candidates else None
            misses.append({
                "split": r.split, "kind": r.kind, "question": r.question, "gold": r.gold, "shown": shown,
                "closest": top.unit["curated"]["item_id"] if top else None, "cosine": r.top_cosine,
                "lead": round(r.top_cosine - r.candidates[1].cosine, 4) if len(r.candidates) > 1 else None,
                "overlap": r.top_overlap, "cited": bool(top and cited_in(top, r.ranked_ids)),
            })
    own = sum(1 for r in verbatim if r.shown(params) == r.gold)
    return CuratedEval(params=params, unresolved=unresolved, verbatim=f"{own}/{len(verbatim)}", splits=splits, misses=misses)


def render_markdown(result: CuratedEval) -> list[str]:
    """The report: parameters, resolution, one row per split, then every miss."""
    p = result.params
    lines = [
        "## Registered answers (登録済みの回答)",
        "",
        f"Chosen on tune: match threshold {p.threshold}, margin {p.margin}, same wording {p.same_wording}, similar floor {p.similar_floor}.",
        f"Items that no longer resolve after ingest: {len(result.unresolved)}" + "".join(f"\n- {i}: {why}" for i, why in result.unresolved),
        f"Registered questions asked word for word that get their own answer: {result.verbatim}",
        "",
        "| split | paraphrases | hit | wrong item | shown or similar | false match near miss | false match other | similar for other |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for split, s in result.splits.items():
        lines.append(
            f"| {split} | {s['paraphrases']} | {s['hit_rate']} | {s['wrong_item_rate']} | {s['shown_or_similar_rate']} | "
            f"{s['false_matches_near_miss']} | {s['false_matches_other']} | {s['similar_offered_for_other']} |"
        )
    lines += ["", "| split | kind | question | expected | shown | closest: cosine, lead, wording overlap, cited in top clauses |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {m['split']} | {m['kind']} | {m['question']} | {m['gold'] or '—'} | {m['shown'] or '—'} | "
        f"{m['closest']}: {m['cosine']}, {m['lead']}, {m['overlap']}, {'yes' if m['cited'] else 'no'} |"
        for m in result.misses
    ]
    return lines


def _step_above(value: float, step: float = THRESHOLD_STEP) -> float:
    """The lowest multiple of ``step`` strictly above ``value``."""
    return round((math.floor(value / step + 1e-9) + 1) * step, 3)


def _rate(k: int, n: int) -> float:
    return round(k / n, 3) if n else 0.0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="Also write the summary and the misses as JSON here.")
    args = parser.parse_args(argv)
    result = run_curated_eval(get_settings())
    print("\n".join(render_markdown(result)))
    if args.json:
        args.json.write_text(json.dumps({**result.summary(), "misses": result.misses}, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    main()
