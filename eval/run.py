"""``guideqa eval``: run, score, report and gate one evaluation.

    guideqa eval                                      # the whole picture (about 20 dev answers, the office and
                                                      # comparison sections), ≤ 10 min on 2 cores
    guideqa eval --full                               # answers for every dev item
    guideqa eval --mode clauses                       # retrieval, abstention, check set, offices and comparisons; no LLM
    guideqa eval --no-office --no-comparisons         # the dev and check sets only
    guideqa eval --judge openai --judge-url URL --judge-model M   # + ragas with a strong judge
    guideqa eval --judge local                        # + ragas with the embedded 1.5B judge (advisory)
    guideqa eval --resume eval/reports/2026...        # finish an interrupted run (or add ragas to it)

Two more sections run by default: the office regulations (:mod:`eval.office`: each
office's questions on its own deployment, built under ``<data_dir>/eval/offices/``) and
the comparison questions (:mod:`eval.compare`: composed answers on the live
index, no LLM).

Before any item runs, the dev and check sets are checked against the index
(:func:`eval.devset.validate`: gold units, evidence quotes, key facts, labels), the
office items against their deployments and the comparison quotes against the index; a
problem stops the run with the item ID. Writes ``eval/reports/<timestamp>/`` with
``report.md``, ``results.jsonl`` (dev and check), ``office_results.jsonl``,
``compare_results.jsonl``, ``summary.json``, ``units.jsonl.gz`` (the units this run
saw, for ``guideqa diff``) and PNG plots. The compared run (the committed baseline by
default) is scored again with today's dev set, and answers are compared only on the
items both runs answered. Returns the regressions beyond ``eval/tolerances.toml``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eval.compare import COMPARE_PATH, check_comparisons, load_comparisons, run_comparisons, score_comparison, summarize_comparisons
from eval.devset import CHECKSET_PATH, DATA_DIR, DEVSET_PATH, DevItem, DevsetError, load_checkset, load_devset, remap_gold_ids, validate
from eval.diff import UNITS_SNAPSHOT, DiffSourceError, dependents_as_dicts, diff_units, find_dependents, load_units, read_units_file, render_markdown, write_units_snapshot
from eval.office import OFFICE_DEVSET, load_office_items, prepare_offices, run_offices, summarize_offices
from eval.report import compare, load_tolerances, summarize, write_report
from eval.runner import RunConfig, run_items, score_answer, strip_answer, stratified_subset, unit_source
from guideqa.errors import EvalDataInvalid, GuideQAError
from guideqa.settings import PROJECT_ROOT, Settings
from index.store import QueryFilter
from index.tokenizer import get_tokenizer
from ingest.models import Unit

__all__ = [
    "EvalOptions", "EvalOutcome", "EvalDataInvalid", "run_eval", "dependent_sources",
    "REPORTS_DIR", "BASELINE_DIR", "DEFAULT_SUBSET", "OFFICE_RESULTS", "COMPARE_RESULTS",
]

REPORTS_DIR = PROJECT_ROOT / "eval" / "reports"
BASELINE_DIR = REPORTS_DIR / "baseline"
RULES_DATA_DIR = PROJECT_ROOT / "service" / "data"
_DATA_SUFFIXES = (".yaml", ".yml", ".json", ".jsonl")
#: Items answered by default: with the 1.5B model at ~6 s an answer, ~2 minutes of generation.
DEFAULT_SUBSET = 20
LOCAL_JUDGE_SAMPLES = 5
_RUN_FILE = "run.json"
_RAGAS_FILE = "ragas.jsonl"
OFFICE_RESULTS = "office_results.jsonl"
COMPARE_RESULTS = "compare_results.jsonl"



@dataclass
class EvalOptions:
    """What one ``guideqa eval`` does.

    ``subset``: how many dev items get an answer in answer mode (a stratified, fixed
    choice; ``None`` = all). ``judge_samples``: how many answered items ragas scores
    (``None`` = 5 with the local judge, all with a remote one). ``office``: run the office
    section (every office item answered, with the LLM in answer mode); ``compare``: run the
    comparison section (never the LLM). Both are off here so that a programmatic run is the
    dev and check sets alone unless asked; ``guideqa eval`` turns them on by default.
    """

    mode: str = "answer"
    subset: int | None = DEFAULT_SUBSET
    judge: str = "none"               # none | local | openai
    judge_url: str | None = None
    judge_model: str | None = None
    judge_api_key: str | None = None
    judge_samples: int | None = None
    compare_to: Path | None = None
    resume: Path | None = None
    out_dir: Path | None = None
    devset: Path = DEVSET_PATH
    checkset: Path = CHECKSET_PATH
    office: bool = False
    compare: bool = False
    curated: bool = False
    office_devset: Path = OFFICE_DEVSET
    compare_set: Path = COMPARE_PATH
    seed: int = 20261123


@dataclass
class EvalOutcome:
    out_dir: Path
    summary: dict[str, Any]
    comparison: list[dict[str, Any]]
    remapped: int
    notes: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> list[dict[str, Any]]:
        return [c for c in self.comparison if c["regressed"]]


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _label(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path)


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _load_data(opts: EvalOptions):
    try:
        return load_devset(opts.devset), load_checkset(opts.checkset)
    except DevsetError as exc:
        raise EvalDataInvalid(str(exc)) from exc


def _load_comparisons(path: Path):
    try:
        return load_comparisons(path)
    except DevsetError as exc:
        raise EvalDataInvalid(str(exc)) from exc


def _check_comparisons(comparisons, units: list[dict]) -> None:
    problems = check_comparisons(comparisons, units)
    if problems:
        shown = "\n".join(f"  - {p}" for p in problems[:20])
        raise EvalDataInvalid(f"比較質問のデータに {len(problems)} 件の問題があるため、評価を実行しませんでした:\n{shown}")


def _compare_rows(state, comparisons, results_path: Path, done: dict[str, dict], progress: Callable[[str], None]) -> list[dict]:
    """The comparison rows: those of an interrupted run scored again with today's items, then the rest asked."""
    by_id = {c.id: c for c in comparisons}
    rows = [{**r, **score_comparison(r, by_id[r["id"]])} for r in done.values() if r["id"] in by_id]
    if comparisons:
        rows += run_comparisons(state, comparisons, results_path=results_path, done_ids=set(done), on_item=progress)
    return rows


def _section_summaries(office_rows: list[dict], office_plan, compare_rows: list[dict] | None, tolerances: dict, *, llm: str | None) -> dict[str, Any]:
    """The ``office`` and ``compare`` sections of the summary, for the sections that ran."""
    out: dict[str, Any] = {}
    if office_plan is not None:
        out["office"] = summarize_offices(office_rows, office_plan, gap_tolerances=tolerances.get("office_split_gap", {}), llm=llm)
    if compare_rows is not None:
        out["compare"] = summarize_comparisons(compare_rows, gap_tolerances=tolerances.get("compare_split_gap", {}))
    return out


def _stored_sections(prev_dir: Path) -> dict[str, Any]:
    """The office and comparison sections of the compared run's ``summary.json`` (empty when it has none)."""
    path = prev_dir / "summary.json" if prev_dir.is_dir() else prev_dir
    if not path.is_file():
        return {}
    stored = json.loads(path.read_text(encoding="utf-8"))
    return {k: stored[k] for k in ("office", "compare") if k in stored}


def _check_data(dev, checks, units, corpus_dir: Path) -> None:
    problems = validate(dev, units, corpus_dir) + validate(checks, units, corpus_dir)
    if problems:
        shown = "\n".join(f"  - {p}" for p in problems[:20])
        more = f"\n  … ほか {len(problems) - 20} 件" if len(problems) > 20 else ""
        raise EvalDataInvalid(f"評価データに {len(problems)} 件の問題があるため、評価を実行しませんでした:\n{shown}{more}")


def _plan(opts: EvalOptions, out_dir: Path, dev: list[DevItem]) -> dict[str, Any]:
    """What this run answers; a resumed run keeps the plan it started with."""
    saved = out_dir / _RUN_FILE
    if opts.resume and saved.is_file():
        return json.loads(saved.read_text(encoding="utf-8"))
    if opts.mode != "answer":
        answer_ids: list[str] = []
    elif opts.subset is None or opts.subset >= len(dev):
        answer_ids = [d.id for d in dev]
    else:
        answer_ids = stratified_subset(dev, opts.subset, seed=opts.seed)
    plan = {
        "mode": opts.mode, "subset": opts.subset, "seed": opts.seed, "answer_ids": answer_ids, "devset": str(opts.devset),
        "office": opts.office, "compare": opts.compare,
    }
    saved.write_text(json.dumps(plan, ensure_ascii=False, indent=2), encoding="utf-8")
    return plan


def run_eval(settings: Settings, opts: EvalOptions, *, command: str, on_item: Callable[[str, int, int], None] | None = None) -> EvalOutcome:
    """Run one evaluation end to end and write its report.

    Args:
        settings: where the index, models and corpus are.
        opts: what to run (see :class:`EvalOptions`).
        command: the command line, recorded in the report.
        on_item: progress callback ``(item_id, done, total)``.

    Returns:
        The report directory, the summary, the comparison with the previous run and notes
        (LLM or judge unavailable…) the caller should show.

    Raises:
        EvalDataInvalid: the dev or check set is malformed or disagrees with the index
            (raised before any item runs).
        GuideQAError: the index cannot be opened.
    """
    from service.state import build_state

    started = time.monotonic()
    dev_curated, checks = _load_data(opts)
    out_dir = opts.resume or opts.out_dir or REPORTS_DIR / time.strftime("%Y%m%dT%H%M%S")
    resumed_plan = json.loads((out_dir / _RUN_FILE).read_text(encoding="utf-8")) if opts.resume and (out_dir / _RUN_FILE).is_file() else None
    mode = resumed_plan["mode"] if resumed_plan else opts.mode
    # A resumed run keeps the sections it started with (runs from before the sections had neither).
    with_office = resumed_plan.get("office", False) if resumed_plan else opts.office
    with_compare = resumed_plan.get("compare", False) if resumed_plan else opts.compare
    office_items = load_office_items(opts.office_devset) if with_office else []
    comparisons = _load_comparisons(opts.compare_set) if with_compare else []
    state = build_state(settings, load_llm=mode == "answer")
    notes: list[str] = []
    try:
        units = [dict(p) for p in state.searcher.iter_units(flt=QueryFilter.everything())]
        unit_models = [Unit.model_validate(u) for u in units]
        dev, changes = remap_gold_ids(dev_curated, unit_models)
        checks_now, _ = remap_gold_ids(checks, unit_models)
        _check_data(dev, checks_now, unit_models, settings.corpus_dir)
        _check_comparisons(comparisons, units)
        tokenizer = get_tokenizer()
        t_office = time.monotonic()
        office_plan = prepare_offices(settings, office_items, tokenizer) if office_items else None
        seconds = {"office_build": round(time.monotonic() - t_office, 1)}
        out_dir.mkdir(parents=True, exist_ok=True)
        plan = _plan(replace(opts, mode=mode, office=with_office, compare=with_compare), out_dir, dev)
        if mode == "answer" and state.backend is None and settings.llm_backend != "none":
            notes.append(f"LLM を読み込めませんでした（{state.extras.get('llm_status')}）。回答はモデルなしで組み立てたもの（リード文なし）です。")
        results = out_dir / "results.jsonl"
        if not opts.resume:
            for name in ("results.jsonl", _RAGAS_FILE, OFFICE_RESULTS, COMPARE_RESULTS):
                (out_dir / name).unlink(missing_ok=True)
        done = {r["id"]: r for r in _read_rows(results)}
        office_done = {r["id"]: r for r in _read_rows(out_dir / OFFICE_RESULTS)}
        compare_done = {r["id"]: r for r in _read_rows(out_dir / COMPARE_RESULTS)}
        total = len(dev) + len(checks) + len(office_items) + len(comparisons)
        counter = {"n": len(done) + len(office_done) + len(compare_done)}

        def progress(item_id: str) -> None:
            counter["n"] += 1
            if on_item:
                on_item(item_id, counter["n"], total)

        texts = {u["id"]: unit_source(u) for u in units}
        by_id = {d.id: d for d in dev}
        # Rows from before the interruption are scored again: the dev set may have changed since.
        for r in done.values():
            if "answer" in r and r["id"] in by_id:
                r.update(score_answer(r, by_id[r["id"]], texts, tokenizer))
        if done:
            tmp = results.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in done.values()), encoding="utf-8")
            tmp.replace(results)
        cfg = RunConfig(mode=mode, answer_ids=set(plan["answer_ids"]))
        rows = list(done.values()) + run_items(state, dev, checks_now, cfg, results_path=results, done_ids=set(done), on_item=progress)
        t_section = time.monotonic()
        office_rows = run_offices(
            office_plan, backend=state.backend if mode == "answer" else None, tokenizer=tokenizer,
            results_path=out_dir / OFFICE_RESULTS, done=office_done, on_item=progress,
        ) if office_plan is not None else []
        seconds["office"] = round(time.monotonic() - t_section, 1)
        t_section = time.monotonic()
        compare_rows = _compare_rows(state, comparisons, out_dir / COMPARE_RESULTS, compare_done, progress)
        seconds["compare"] = round(time.monotonic() - t_section, 1)
        write_units_snapshot(out_dir, units)
        ragas_summary, ragas_rows = None, {}
        if opts.judge != "none" and mode == "answer":
            ragas_summary, ragas_rows = _ragas(settings, opts, rows, dev, out_dir)
            if ragas_summary.get("message"):
                notes.append(ragas_summary["message"])
        meta = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "mode": mode,
            "subset": plan.get("subset"),
            "n_answered": sum(1 for r in rows if r.get("set") == "dev" and "answer" in r),
            "index_version": state.searcher.index_version,
            "embed_model": state.searcher.embed_model.model_name,
            "llm": getattr(state.backend, "name", None),
            "commit": _commit(),
            "n_dev": len(dev),
            "n_check": len(checks),
            "n_office": len(office_rows),
            "n_compare": len(compare_rows),
            "gold_ids_remapped": len(changes),
            "command": command,
            "duration_s": round(time.monotonic() - started, 1),
            "section_s": seconds,
            "notes": notes,
        }
        tolerances = load_tolerances()
        summary = summarize(rows, meta=meta, ragas=ragas_summary, tolerances=tolerances)
        llm = getattr(state.backend, "name", None) if mode == "answer" else None
        sections = _section_summaries(office_rows, office_plan, compare_rows if comparisons else None, tolerances, llm=llm)
        summary.update(sections)
        curated_lines: list[str] = []
        if opts.curated:
            from eval.curated import render_markdown as curated_markdown, run_curated_eval

            t_section = time.monotonic()
            curated = run_curated_eval(settings)
            summary["curated"] = curated.summary()
            curated_lines = curated_markdown(curated)
            meta["section_s"]["curated"] = round(time.monotonic() - t_section, 1)
        # One list of tune/holdout gaps for the whole run: the sections' metrics carry their section's name.
        summary.setdefault("split_gaps", [])
        summary["split_gaps"] += [{**g, "metric": f"{name}.{g['metric']}"} for name, sec in sections.items() for g in sec["split_gaps"]]
        prev_dir = opts.compare_to or BASELINE_DIR
        previous, current_cmp = _previous(prev_dir, rows, dev, checks, texts, tolerances)
        if previous:
            # The sections are not scored again from the compared run's rows: its summary's sections are compared as they are.
            previous = {**previous, **{k: v for k, v in _stored_sections(prev_dir).items() if k not in previous}}
            current_cmp = {**current_cmp, **sections}
        comparison = compare(current_cmp, previous, tolerances) if previous else []
        index_lines: list[str] = []
        if previous and previous["meta"].get("index_version") and previous["meta"]["index_version"] != meta["index_version"]:
            index_lines, summary["index_diff"] = _index_changes(prev_dir, previous["meta"]["index_version"], meta["index_version"], units, dev_curated, checks, settings)
        write_report(
            out_dir, rows, summary, previous=previous, comparison=comparison,
            previous_label=_label(prev_dir) if previous else None, ragas_rows=ragas_rows, index_changes=index_lines,
            office_rows=office_rows, compare_rows=compare_rows, curated_lines=curated_lines,
        )
        return EvalOutcome(out_dir=out_dir, summary=summary, comparison=comparison, remapped=len(changes), notes=notes)
    finally:
        state.close()


def _previous(
    prev_dir: Path, rows: list[dict], dev: Sequence[DevItem], checks: Sequence[Any], texts: dict[str, str], tolerances: dict
) -> tuple[dict | None, dict]:
    """The compared run's summary, scored again with today's dev set, and this run's summary aligned with it.

    Both summaries keep answers only for the items answered in both runs, so that a
    20-item run is compared with a full one on the same 20 items. A compared run with only
    a ``summary.json`` (no rows) is used as it is.
    """
    summary_path = prev_dir / "summary.json" if prev_dir.is_dir() else prev_dir
    if not summary_path.is_file():
        return None, {}
    stored = json.loads(summary_path.read_text(encoding="utf-8"))
    prev_rows = _read_rows(summary_path.parent / "results.jsonl")
    if not prev_rows:
        return stored, summarize(rows, meta={}, tolerances=tolerances)
    by_id = {d.id: d for d in dev}
    check_ids = {c.id for c in checks}
    if (summary_path.parent / UNITS_SNAPSHOT).is_file():
        texts = {u["id"]: unit_source(u) for u in read_units_file(summary_path.parent / UNITS_SNAPSHOT)}
    tokenizer = get_tokenizer()
    rescored: list[dict] = []
    for r in prev_rows:
        if r.get("set") == "check":
            if r["id"] in check_ids:
                rescored.append(r)
            continue
        item = by_id.get(r["id"])
        if item is None:
            continue
        r = {**r, "type": item.type, "shape": getattr(item, "shape", None), "split": getattr(item, "split", None)}
        # Reports from before the flag marked a confidentiality verdict by answer_correct = None.
        r.setdefault("rules_verdict", "answer_correct" in r and r["answer_correct"] is None)
        if "answer" in r:
            r.update(score_answer(r, item, texts, tokenizer))
        rescored.append(r)
    both = {r["id"] for r in rows if "answer" in r} & {r["id"] for r in rescored if "answer" in r}
    aligned_prev = [r if r["id"] in both or "answer" not in r else strip_answer(r) for r in rescored]
    aligned_cur = [r if r["id"] in both or "answer" not in r else strip_answer(r) for r in rows]
    meta = {**stored.get("meta", {}), "rescored": True, "n_answered_both": len(both)}
    previous = summarize(aligned_prev, meta=meta, ragas=stored.get("ragas"), tolerances=tolerances)
    return previous, summarize(aligned_cur, meta={}, tolerances=tolerances)


def dependent_sources(dev: Sequence[Any] | None = None, checks: Sequence[Any] | None = None) -> tuple[dict[str, Sequence[Any]], list[Path]]:
    """What may stand on a unit: the curated item sets, and the data files that cite units.

    Item sets: the dev set, the check set and (when present) the office dev set. Data files:
    every YAML/JSON(L) file in ``service/data`` (confidentiality rules…) and under
    ``eval/data`` other than those item sets (curated answers, comparison items…).

    Raises:
        DevsetError: an item file is malformed.
    """
    items: dict[str, Sequence[Any]] = {"dev set": dev if dev is not None else load_devset(), "check set": checks if checks is not None else load_checkset()}
    if OFFICE_DEVSET.is_file():
        items["office dev set"] = load_devset(OFFICE_DEVSET)
    skip = {DEVSET_PATH.resolve(), CHECKSET_PATH.resolve(), OFFICE_DEVSET.resolve()}
    files = [p for p in sorted(RULES_DATA_DIR.glob("*")) if p.suffix in _DATA_SUFFIXES]
    # The office's own registered answers stand on the units they quote.
    files += sorted((PROJECT_ROOT / "corpus" / "curated").glob("*.yaml"))
    files += [p for p in sorted(DATA_DIR.rglob("*")) if p.suffix in _DATA_SUFFIXES and p.resolve() not in skip and p.name != "manifest.json"]
    return items, files


def _index_changes(prev_dir: Path, old_version: str, new_version: str, units: list[dict], dev_curated, checks, settings: Settings) -> tuple[list[str], dict]:
    """The diff between the compared run's index and this one, as report lines and summary data."""
    snapshot = prev_dir / UNITS_SNAPSHOT if prev_dir.is_dir() else prev_dir.parent / UNITS_SNAPSHOT
    try:
        old = read_units_file(snapshot) if snapshot.is_file() else load_units(old_version, index_root=settings.index_root)[1]
    except (DiffSourceError, GuideQAError) as exc:
        msg = f"The index changed (`{old_version}` → `{new_version}`), but the compared run's units are not available ({exc.message}); `guideqa diff` needs a units snapshot or the old version's shard."
        return [msg], {"old": old_version, "new": new_version, "available": False}
    diff = diff_units(old, units, old_label=old_version, new_label=new_version)
    try:
        item_sets, data_files = dependent_sources(dev_curated, checks)
        dependents = find_dependents(diff, item_sets=item_sets, data_files=data_files)
    except (DevsetError, OSError, ValueError) as exc:
        # The diff itself is still worth showing when a data file cannot be read.
        return [*render_markdown(diff, []), "", f"Dependents could not be listed: {exc}"], {"old": old_version, "new": new_version, "available": True, "counts": diff.counts()}
    return render_markdown(diff, dependents), {"old": old_version, "new": new_version, "available": True, "counts": diff.counts(), "dependents": dependents_as_dicts(dependents)}


# --------------------------------------------------------------------------- ragas


def _sample_order(item_id: str, seed: int) -> str:
    return hashlib.sha256(f"ragas:{seed}:{item_id}".encode()).hexdigest()


def _read_ragas(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest result of every (item, metric) pair recorded so far."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in _read_rows(path):
        out[(row["id"], row["metric"])] = row
    return out


def _ragas(settings: Settings, opts: EvalOptions, rows: list[dict], dev: Sequence[DevItem], out_dir: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Score answered items with ragas; every (item, metric) result is appended to ``ragas.jsonl`` at once.

    A judge that cannot be reached or started gives a status and a message, not an
    exception: the report is then written without ragas columns, and ``--resume`` with
    the judge options adds them later (pairs already scored are not asked again).
    """
    from eval.ragas_judge import METRICS, Judge, ProgressEvent, Sample, SampleScores, error_kind, judge_unreachable
    from eval.ragas_judge import summarize as ragas_summarize
    from guideqa.errors import ModelUnavailable

    refs = {d.id: d.reference for d in dev}
    candidates = [
        r for r in sorted(rows, key=lambda r: r["id"])
        if r.get("set") == "dev" and r.get("answer") and not r.get("abstained") and r.get("contexts") and not r.get("rules_verdict")
    ]
    local = opts.judge == "local"
    n = opts.judge_samples or (LOCAL_JUDGE_SAMPLES if local else len(candidates))
    chosen = sorted(sorted(candidates, key=lambda r: _sample_order(r["id"], opts.seed))[:n], key=lambda r: r["id"])
    samples = [Sample(id=r["id"], question=r["question"], answer=r["answer"], contexts=r["contexts"], reference=refs.get(r["id"], "")) for r in chosen]
    label = "local 1.5B" if local else f"{opts.judge_model} at {opts.judge_url}"
    base = {"judge": label, "advisory": local, "n_samples": len(samples)}
    resume_hint = f"`guideqa eval --resume {_label(out_dir)} --judge {opts.judge}" + (f" --judge-url {opts.judge_url} --judge-model {opts.judge_model}`" if not local else "`")
    path = out_dir / _RAGAS_FILE
    recorded = _read_ragas(path)
    # Transient failures (timeouts, connection errors) are asked again on --resume; a
    # judge's verdict (a value, NaN for no statements, unparseable output) is kept.
    settled = {k for k, v in recorded.items() if v.get("error") is None or error_kind(v["error"]) in ("parse_error", "nan")}
    pending = {m: [s for s in samples if (s.id, m) not in settled] for m in METRICS}
    problem = None
    if any(pending.values()):
        if not local:
            problem = "--judge-url と --judge-model を指定してください" if not (opts.judge_url and opts.judge_model) else judge_unreachable(opts.judge_url, opts.judge_api_key)
        if problem is None:
            try:
                judge = Judge.local(settings) if local else Judge.openai(opts.judge_url or "", opts.judge_model or "", opts.judge_api_key, settings=settings)
            except ModelUnavailable as exc:
                problem = exc.message
        if problem is None:

            def record(event: ProgressEvent) -> None:
                with path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"id": event.sample_id, "metric": event.metric, "value": event.value, "error": event.error, "seconds": round(event.seconds, 2)}, ensure_ascii=False) + "\n")

            with judge:
                for metric, todo in pending.items():
                    if todo:
                        judge.score(todo, metrics=(metric,), on_progress=record)
    if problem is not None:
        base["message"] = f"ragas を実行できませんでした: {problem}。" + (
            "これまでに採点できた分だけを示します。" if recorded else "ragas の列なしでレポートを作成しました。"
        ) + f"ジャッジが使えるようになったら {resume_hint} で続きを実行できます。"
        if not recorded:
            return {**base, "status": "unreachable"}, {}
    recorded = _read_ragas(path)
    per_item: dict[str, dict[str, Any]] = {}
    scores = []
    for s in samples:
        got = {m: recorded.get((s.id, m)) for m in METRICS}
        per_item[s.id] = {m: {"value": g.get("value"), "error": g.get("error")} for m, g in got.items() if g}
        # Pairs never asked (the judge went away) are left out, not counted as failures.
        scores.append(SampleScores(s.id, {m: g.get("value") for m, g in got.items() if g}, {m: g["error"] for m, g in got.items() if g and g.get("error")}))
    metrics = ragas_summarize(scores)
    for m in metrics.values():
        valid_sum = (m["mean"] or 0.0) * m["n_valid"]
        m["mean_failures_as_zero"] = round(valid_sum / m["n"], 4) if m["n"] else None
    any_value = any(v is not None for s in scores for v in s.scores.values())
    if scores and not any_value and any("unreachable" in e for s in scores for e in s.errors.values()):
        return {**base, "status": "unreachable", "message": f"ragas のジャッジに途中から接続できなくなりました。ragas の列なしでレポートを作成しました。{resume_hint} で続きを実行できます。"}, {}
    complete = all((s.id, m) in recorded for s in samples for m in METRICS)
    return {**base, "status": "ok" if complete and problem is None else "incomplete", "metrics": metrics}, per_item
