"""``guideqa eval``: run, score, report and gate one evaluation.

    guideqa eval                                  # clauses mode, full dev set, compare with the baseline
    guideqa eval --mode answer --subset 20        # also generate answers for 20 items
    guideqa eval --mode answer --judge local      # + ragas with the embedded judge (advisory)
    guideqa eval --resume eval/reports/2026...    # finish an interrupted run

Writes ``eval/reports/<timestamp>/`` with ``report.md``, ``results.jsonl``,
``summary.json`` and PNG plots. Returns a non-zero exit status when a
deterministic metric regresses beyond ``eval/tolerances.toml``.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from eval.devset import CHECKSET_PATH, DEVSET_PATH, load_checkset, load_devset, remap_gold_ids
from eval.report import compare, load_tolerances, summarize, write_report
from eval.runner import RunConfig, run_items
from guideqa.settings import PROJECT_ROOT, Settings
from ingest.models import Unit

__all__ = ["EvalOptions", "EvalOutcome", "run_eval", "REPORTS_DIR", "BASELINE_DIR"]

REPORTS_DIR = PROJECT_ROOT / "eval" / "reports"
BASELINE_DIR = REPORTS_DIR / "baseline"


@dataclass
class EvalOptions:
    mode: str = "clauses"
    subset: int | None = None
    judge: str = "none"               # none | local | openai
    judge_url: str | None = None
    judge_model: str | None = None
    judge_samples: int = 5            # ragas is slow on 2 cores: score this many answered items
    compare_to: Path | None = None
    resume: Path | None = None
    out_dir: Path | None = None
    devset: Path = DEVSET_PATH
    checkset: Path = CHECKSET_PATH
    seed: int = 20261123


@dataclass
class EvalOutcome:
    out_dir: Path
    summary: dict[str, Any]
    comparison: list[dict[str, Any]]
    remapped: int

    @property
    def regressed(self) -> list[dict[str, Any]]:
        return [c for c in self.comparison if c["regressed"]]


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _previous(path: Path | None) -> tuple[dict | None, str | None]:
    candidate = path or BASELINE_DIR
    summary = candidate / "summary.json" if candidate.is_dir() else candidate
    if summary.is_file():
        return json.loads(summary.read_text(encoding="utf-8")), str(candidate.relative_to(PROJECT_ROOT) if candidate.is_relative_to(PROJECT_ROOT) else candidate)
    return None, None


def _all_units(state) -> list[Unit]:
    return [Unit.model_validate(p) for p in state.searcher.iter_units(None)]


def run_eval(settings: Settings, opts: EvalOptions, *, command: str, on_item: Callable[[str, int, int], None] | None = None) -> EvalOutcome:
    from service.state import build_state

    random.seed(opts.seed)
    dev = load_devset(opts.devset)
    checks = load_checkset(opts.checkset)
    state = build_state(settings, load_llm=opts.mode == "answer")
    try:
        units = _all_units(state)
        dev, changes = remap_gold_ids(dev, units)
        answer_ids: set[str] = set()
        if opts.mode == "answer" and opts.subset:
            # A stratified subset: every question type is represented.
            by_type: dict[str, list[str]] = {}
            for item in dev:
                by_type.setdefault(item.type, []).append(item.id)
            pool = [ids for _, ids in sorted(by_type.items())]
            while len(answer_ids) < min(opts.subset, len(dev)):
                for ids in pool:
                    remaining = [i for i in ids if i not in answer_ids]
                    if remaining and len(answer_ids) < opts.subset:
                        answer_ids.add(random.choice(remaining))
        out_dir = opts.resume or opts.out_dir or REPORTS_DIR / time.strftime("%Y%m%dT%H%M%S")
        out_dir.mkdir(parents=True, exist_ok=True)
        results = out_dir / "results.jsonl"
        if not opts.resume:
            results.unlink(missing_ok=True)
        done: dict[str, dict] = {}
        if opts.resume and results.is_file():
            for line in results.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    done[row["id"]] = row
        total = len(dev) + len(checks)
        counter = {"n": len(done)}

        def progress(item_id: str) -> None:
            counter["n"] += 1
            if on_item:
                on_item(item_id, counter["n"], total)

        rows = list(done.values()) + run_items(
            state, dev, checks, RunConfig(mode=opts.mode, answer_ids=answer_ids), results_path=results, done_ids=set(done), on_item=progress
        )
        ragas_summary = None
        if opts.judge != "none" and opts.mode == "answer":
            ragas_summary = _ragas(settings, opts, rows, dev, out_dir)
        meta = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "mode": opts.mode,
            "subset": opts.subset,
            "index_version": state.searcher.index_version,
            "embed_model": state.searcher.embed_model.model_name,
            "llm": getattr(state.backend, "name", None),
            "commit": _commit(),
            "n_dev": len(dev),
            "n_check": len(checks),
            "gold_ids_remapped": len(changes),
            "command": command,
        }
        summary = summarize(rows, meta=meta, ragas=ragas_summary)
        previous, label = _previous(opts.compare_to)
        comparison = compare(summary, previous, load_tolerances()) if previous else []
        write_report(out_dir, rows, summary, previous=previous, comparison=comparison, previous_label=label)
        return EvalOutcome(out_dir=out_dir, summary=summary, comparison=comparison, remapped=len(changes))
    finally:
        state.close()


def _ragas(settings: Settings, opts: EvalOptions, rows: list[dict], dev, out_dir: Path) -> dict[str, Any]:
    from eval.ragas_judge import Judge, Sample, summarize as ragas_summarize

    refs = {d.id: d.reference for d in dev}
    candidates = [
        Sample(id=r["id"], question=r["question"], answer=r["answer"], contexts=r.get("contexts") or [], reference=refs.get(r["id"], ""))
        for r in sorted(rows, key=lambda r: r["id"])
        if r.get("set") == "dev" and r.get("answer") and not r.get("abstained") and r.get("contexts")
    ]
    samples = random.Random(opts.seed).sample(candidates, min(opts.judge_samples, len(candidates)))
    judge = Judge.local(settings) if opts.judge == "local" else Judge.openai(opts.judge_url or "", opts.judge_model or "", None)
    with judge:
        scores = judge.score(samples)
    with (out_dir / "ragas.jsonl").open("w", encoding="utf-8") as f:
        for s in scores:
            f.write(json.dumps({"id": s.id, "scores": s.scores, "errors": s.errors}, ensure_ascii=False) + "\n")
    return {"advisory": judge.advisory, "n_samples": len(samples), "metrics": ragas_summarize(scores)}
