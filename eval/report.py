"""Turn scored rows into ``summary.json`` and ``report.md``, and compare with a previous run.

The regression gate compares deterministic metrics only (``eval/tolerances.toml``):
retrieval, abstention and injection on the ``holdout`` half of the dev set, the
check set, key-fact correctness and statement-level faithfulness of the answers.
ragas scores are shown beside the deterministic faithfulness and never gate.

Every headline metric is also computed on each half of the dev set (``splits.tune``,
``splits.holdout``); a half whose numbers are better by more than the ``[split_gap]``
tolerance is flagged, because that is what tuning on the items being reported looks like.
"""

from __future__ import annotations

import json
import tomllib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from eval.metrics import mean, percentile, precision_recall

__all__ = [
    "summarize",
    "compare",
    "split_gaps",
    "verdict_counts",
    "faithfulness_summary",
    "write_report",
    "load_tolerances",
    "TOLERANCES_PATH",
    "SPLITS",
    "VERDICTS",
]

TOLERANCES_PATH = Path(__file__).parent / "tolerances.toml"
SPLITS = ("tune", "holdout")
VERDICTS = ("correct", "partial", "wrong")
RETRIEVAL_KEYS = {
    "hit@1": "hit1", "hit@3": "hit3", "hit@5": "hit5", "hit@10": "hit10",
    "mrr@10": "rr10", "ndcg@10": "ndcg10", "recall@10": "recall10", "evidence_recall@2000": "evidence_recall_2000",
}
_DIRECTIONS = ("higher_is_better", "lower_is_better")


def _r(v: float | None, nd: int = 4) -> float | None:
    return None if v is None else round(v, nd)


def _share(rows: Iterable[dict], test: Callable[[dict], bool]) -> float | None:
    return _r(mean(1.0 if test(r) else 0.0 for r in rows))


def _retrieval(rows: list[dict]) -> dict[str, Any]:
    scored = [r for r in rows if "hit5" in r]
    out: dict[str, Any] = {"n": len(scored)}
    for name, key in RETRIEVAL_KEYS.items():
        out[name] = _r(mean(r[key] for r in scored))
    out["mean_context_chars_top5"] = _r(mean(r["context_chars_top5"] for r in scored), 0)
    return out


def _abstention(rows: list[dict]) -> dict[str, Any]:
    pr = precision_recall((bool(r.get("abstained_before_llm")), r["type"] == "unanswerable") for r in rows if r["type"] != "injection")
    return {k: _r(v) if isinstance(v, float) else v for k, v in pr.items()}


def _injection(rows: list[dict]) -> dict[str, Any]:
    inj = [r for r in rows if r["type"] == "injection"]
    return {
        "n": len(inj),
        "guard_detected": _share(inj, lambda r: bool(r.get("guard_injection"))),
        "retrieval_hit@5": _r(mean(r.get("hit5", 0.0) for r in inj)),
        "resisted": _share([r for r in inj if "injection_resisted" in r], lambda r: r["injection_resisted"]),
    }


def verdict_counts(rows: list[dict]) -> dict[str, Any]:
    """correct / partial / wrong counts and rates over rows that have a key-fact verdict."""
    judged = [r for r in rows if r.get("answer_verdict")]
    counts = Counter(r["answer_verdict"] for r in judged)
    out: dict[str, Any] = {"n": len(judged)}
    for v in VERDICTS:
        out[v] = counts.get(v, 0)
    for v in VERDICTS:
        out[f"{v}_rate"] = _r(counts.get(v, 0) / len(judged)) if judged else None
    return out


def _answers(rows: list[dict]) -> dict[str, Any] | None:
    answered = [r for r in rows if "answer" in r]
    if not answered:
        return None
    answerable = [r for r in answered if r["type"] != "unanswerable"]
    v = verdict_counts(answerable)
    shape = lambda s: [r for r in answerable if r.get("shape") == s and r.get("kf")]  # noqa: E731
    labelled = [r for r in answered if "labels_cited" in r]
    return {
        "n": len(answered),
        "n_judged": v["n"],
        "correct_rate": v["correct_rate"],
        "partial_rate": v["partial_rate"],
        "wrong_rate": v["wrong_rate"],
        "n_without_key_facts": sum(1 for r in answerable if not r.get("answer_verdict")),
        "enumeration_recall": _r(mean(r["kf"]["recall"] for r in shape("enumeration"))),
        "multi_part_parts_answered": _r(mean(r["kf"].get("parts_answered") for r in shape("multi_part"))),
        "figure_correct": _share([r for r in shape("figure") if r["kf"].get("figure_ok") is not None or r.get("abstained")], lambda r: bool(r["kf"].get("figure_ok"))),
        "labels_cited": _r(mean(r["labels_cited"] for r in labelled)) if labelled else None,
        "abstained_on_answerable": _share(answerable, lambda r: bool(r.get("abstained"))),
        "abstained_on_unanswerable": _share([r for r in answered if r["type"] == "unanswerable"], lambda r: bool(r.get("abstained"))),
        "citations_valid_rate": _share(answered, lambda r: bool(r.get("citations_valid"))),
        "invented_citations": sum(1 for r in answered if r.get("citations_valid") is False),
        "answer_errors": sum(1 for r in answered if r.get("answer_error")),
        "sentences_removed": sum(len(r.get("removed") or []) for r in answered),
        "ttft_ms_p50": percentile([r["ttft_ms"] for r in answered if r.get("ttft_ms")], 0.5),
        "answer_s_p50": percentile([r["answer_s"] for r in answered if r.get("answer_s")], 0.5),
        "answer_s_p95": percentile([r["answer_s"] for r in answered if r.get("answer_s")], 0.95),
    }


def _faithful_rows(rows: list[dict]) -> list[dict]:
    # A confidentiality verdict is assembled from the rules file, not written by the model;
    # the check set scores it.
    return [r for r in rows if r.get("faith") and r["faith"]["n"] and not r.get("rules_verdict")]


def faithfulness_summary(rows: list[dict]) -> dict[str, Any] | None:
    """Statement-level faithfulness over the answered rows (``None`` when none was answered).

    Rows holding a confidentiality verdict are left out: the rules assembled that text.
    """
    answered = [r for r in rows if "answer" in r]
    if not answered:
        return None
    scored = _faithful_rows(answered)
    f = [r["faith"] for r in scored]
    n, written = sum(x["n"] for x in f), sum(x["written"] for x in f)
    return {
        "gates": True,
        "n_answers": len(scored),
        "n_rules_verdicts": sum(1 for r in answered if r.get("rules_verdict") and not r.get("abstained")),
        "statements": n,
        "supported_share": _r(sum(x["supported"] for x in f) / n) if n else None,
        "quote_statements": sum(x["quote"] for x in f),
        "written_statements": written,
        "written_supported_share": _r(sum(x["written_supported"] for x in f) / written) if written else None,
        "answers_fully_supported": _share(f, lambda x: x["supported"] == x["n"]),
        "unsupported_statements": n - sum(x["supported"] for x in f),
    }


def _group(rs: list[dict]) -> dict[str, Any]:
    g: dict[str, Any] = {"n": len(rs)}
    scored = [r for r in rs if "hit5" in r]
    if scored:
        g["hit@5"] = _r(mean(r["hit5"] for r in scored))
        g["mrr@10"] = _r(mean(r["rr10"] for r in scored))
        g["evidence_recall@2000"] = _r(mean(r["evidence_recall_2000"] for r in scored))
    g["abstained"] = _share(rs, lambda r: bool(r.get("abstained")))
    judged = [r for r in rs if r.get("answer_verdict")]
    if judged:
        g["answer_correct"] = _share(judged, lambda r: r["answer_verdict"] == "correct")
    return g


def _by(rows: list[dict], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[str(r.get(key))].append(r)
    return {k: verdict_counts(rs) for k, rs in sorted(groups.items())}


def _headline(rows: list[dict]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(rows), "retrieval": _retrieval(rows), "abstention": _abstention(rows), "injection": _injection(rows)}
    answers, faith = _answers(rows), faithfulness_summary(rows)
    if answers:
        out["answer"] = answers
    if faith:
        out["faithfulness"] = faith
    return out


def summarize(rows: list[dict], *, meta: dict[str, Any], ragas: dict[str, Any] | None = None, tolerances: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """Every metric of one run, computed from its rows.

    Args:
        rows: the results rows (dev and check).
        meta: run metadata (mode, index version, commit, …).
        ragas: the judge's summary, if a judge ran.
        tolerances: for the split gaps (default: ``eval/tolerances.toml``).

    Returns:
        The content of ``summary.json``.
    """
    dev = [r for r in rows if r.get("set") == "dev"]
    checks = [r for r in rows if r.get("set") == "check"]
    summary: dict[str, Any] = {"meta": meta, "retrieval": _retrieval(dev), "abstention": _abstention(dev), "injection": _injection(dev)}
    answers, faith = _answers(dev), faithfulness_summary(dev)
    if answers:
        summary["answer"] = answers
        answered = [r for r in dev if "answer" in r]
        summary["correctness"] = {"by_type": _by(answered, "type"), "by_shape": _by(answered, "shape"), "by_split": _by(answered, "split")}
    if faith:
        summary["faithfulness"] = faith
    if checks:
        summary["check"] = {
            "n": len(checks),
            "class_accuracy": _share(checks, lambda r: r["class_ok"]),
            "verdict_accuracy": _share(checks, lambda r: r["verdict_ok"]),
            "unsafe": sum(1 for r in checks if r["unsafe"]),
            "detected_as_check": _share(checks, lambda r: r["detected_as_check"]),
            "check_ms_p50": percentile([r["check_ms"] for r in checks], 0.5),
        }
    summary["latency"] = {"search_ms_p50": percentile([r["search_ms"] for r in dev if "search_ms" in r], 0.5), "search_ms_p95": percentile([r["search_ms"] for r in dev if "search_ms" in r], 0.95)}
    if any(r.get("split") in SPLITS for r in dev):
        summary["splits"] = {s: _headline([r for r in dev if r.get("split") == s]) for s in SPLITS}
        summary["split_gaps"] = split_gaps(summary["splits"], (tolerances or load_tolerances()).get("split_gap", {}))
    by_type: dict[str, list[dict]] = defaultdict(list)
    by_doc: dict[str, list[dict]] = defaultdict(list)
    for r in dev:
        by_type[r["type"]].append(r)
        for d in r.get("doc_ids") or ["(none)"]:
            by_doc[d].append(r)
    summary["by_type"] = {t: _group(rs) for t, rs in sorted(by_type.items())}
    summary["by_document"] = {d: _group(rs) for d, rs in sorted(by_doc.items())}
    if ragas:
        summary["ragas"] = ragas
    return summary


def load_tolerances(path: Path = TOLERANCES_PATH) -> dict[str, dict[str, float]]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _get(summary: dict, dotted: str) -> float | None:
    cur: Any = summary
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur if isinstance(cur, (int, float)) and not isinstance(cur, bool) else None


def split_gaps(splits: dict[str, dict], tolerances: dict[str, float]) -> list[dict[str, Any]]:
    """``tune − holdout`` for every metric in ``[split_gap]``; flagged when tune is better by more than the tolerance.

    Only that direction is flagged: a tuned half doing better than the untouched one is
    the sign of tuning to the items; the reverse is noise.
    """
    out = []
    for name, tol in tolerances.items():
        tune, hold = _get(splits.get("tune", {}), name), _get(splits.get("holdout", {}), name)
        if tune is None or hold is None:
            continue
        gap = round(tune - hold, 4)
        out.append({"metric": name, "tune": tune, "holdout": hold, "gap": gap, "tolerance": tol, "flagged": gap > tol + 1e-9})
    return out


def compare(current: dict, previous: dict, tolerances: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Every gated metric present in both runs, with its change and whether it regressed."""
    out = []
    for direction in _DIRECTIONS:
        for name, tol in tolerances.get(direction, {}).items():
            now, before = _get(current, name), _get(previous, name)
            if now is None or before is None:
                continue
            delta = now - before
            worse = -delta if direction == "higher_is_better" else delta
            out.append({"metric": name, "previous": before, "current": now, "delta": round(delta, 4), "tolerance": tol, "regressed": worse > tol + 1e-9})
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _cell(text: str, n: int = 80) -> str:
    text = " ".join(str(text).split()).replace("|", "｜")
    return text if len(text) <= n else text[: n - 1] + "…"


_HEADLINE = [
    ("retrieval.hit@5", "retrieval hit@5"),
    ("retrieval.mrr@10", "retrieval MRR@10"),
    ("retrieval.recall@10", "retrieval recall@10"),
    ("abstention.recall", "unanswerable declined before generation (recall)"),
    ("abstention.precision", "abstention precision"),
    ("injection.guard_detected", "injection detected by the guard"),
    ("answer.correct_rate", "answers correct (key facts)"),
    ("answer.partial_rate", "answers partial"),
    ("answer.wrong_rate", "answers wrong"),
    ("faithfulness.written_supported_share", "faithfulness: written statements supported"),
    ("faithfulness.supported_share", "faithfulness: all statements supported"),
]


def _headline_lines(summary: dict) -> list[str]:
    splits = summary.get("splits")
    if not splits:
        return []
    gaps = {g["metric"]: g for g in summary.get("split_gaps", [])}
    lines = [
        "## Tune vs. holdout",
        "",
        "Thresholds, weights, synonyms and rules are chosen on `tune`; `holdout` shows whether they generalise. "
        "A gap (tune − holdout) above its `[split_gap]` tolerance is **flagged**.",
        "",
        f"| metric | tune (n {splits['tune']['n']}) | holdout (n {splits['holdout']['n']}) | all | gap | |",
        "|---|---|---|---|---|---|",
    ]
    for key, label in _HEADLINE:
        values = [_get(splits["tune"], key), _get(splits["holdout"], key), _get(summary, key)]
        if all(v is None for v in values):
            continue
        g = gaps.get(key)
        flag = ("**FLAGGED**" if g["flagged"] else "ok") if g else ""
        lines.append(f"| {label} | {_fmt(values[0])} | {_fmt(values[1])} | {_fmt(values[2])} | {_fmt(g['gap']) if g else '–'} | {flag} |")
    return lines


def _verdict_table(title: str, groups: dict[str, dict]) -> list[str]:
    lines = ["", f"**{title}**", "", "| | n | correct | partial | wrong | correct rate |", "|---|---|---|---|---|---|"]
    for name, v in groups.items():
        lines.append(f"| {name} | {v['n']} | {v['correct']} | {v['partial']} | {v['wrong']} | {_fmt(v['correct_rate'])} |")
    return lines


def _answer_lines(summary: dict, rows: list[dict]) -> list[str]:
    if "answer" not in summary:
        return []
    an = summary["answer"]
    lines = ["", "## Answers: key-fact correctness (deterministic, gates)", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in an.items()]
    lines += [
        "",
        "*correct* = every key fact stated (any listed spelling, NFKC, spaces ignored), nothing contradicting them "
        "(no figure the system wrote outside a verbatim quote that is not among the key facts', the question's or the "
        "gold units' figures; no lead sentence of the opposite stance to a yes/no item's verdict fact), every citation "
        "valid (the unit was retrieved or cited by a rule, the quote is verbatim) and a gold unit cited. *partial* = some "
        "key facts, or all of them without a gold unit cited. *wrong* = otherwise, including any contradiction, an "
        "invalid citation or a refusal. An unanswerable item is correct when declined.",
    ]
    c = summary.get("correctness", {})
    if c:
        lines += _verdict_table("by type", c["by_type"]) + _verdict_table("by shape", c["by_shape"]) + _verdict_table("by split", c["by_split"])
    wrong = [r for r in rows if r.get("set") == "dev" and r.get("answer_verdict") in ("partial", "wrong")]
    if wrong:
        lines += ["", f"**Not correct ({len(wrong)})**", "", "| id | shape | verdict | why | answer |", "|---|---|---|---|---|"]
        lines += [f"| `{r['id']}` | {r.get('shape') or '–'} | {r['answer_verdict']} | {_cell('; '.join(r['kf']['reasons']), 90)} | {_cell(r.get('answer', ''))} |" for r in wrong]
    return lines


def _faithfulness_lines(summary: dict, rows: list[dict], ragas_rows: dict[str, dict[str, Any]]) -> list[str]:
    if "faithfulness" not in summary:
        return []
    f = summary["faithfulness"]
    rg = summary.get("ragas") or {}
    metric = (rg.get("metrics") or {}).get("faithfulness")
    lines = [
        "",
        "## Faithfulness",
        "",
        "**The deterministic measure gates** (`eval/tolerances.toml`): every statement of an answer checked against the "
        "clause it cites with the citation gate's own test (content words, every figure, polarity). ragas needs an LLM judge; "
        "the local 1.5B judge is advisory only, and `guideqa eval --judge openai --judge-url URL --judge-model M` is the way "
        "to get ragas numbers that mean something.",
        "",
    ]
    det = [
        ("answers scored", str(f["n_answers"])),
        ("statements supported", _fmt(f["supported_share"])),
        ("written statements supported", _fmt(f["written_supported_share"])),
        ("failures", f"{f['unsupported_statements']} unsupported statements"),
    ]
    if metric:
        judge = rg.get("judge") or "?"
        ragas_cells = [
            str(metric.get("n")),
            f"{_fmt(metric.get('mean_failures_as_zero'))} (failures as 0) · {_fmt(metric.get('mean'))} (valid only)",
            "–",
            f"{metric.get('n_failed_total', 0)} samples without a score",
        ]
        lines += [f"| | deterministic (gates) | ragas Faithfulness ({judge}{', advisory' if rg.get('advisory') else ''}) |", "|---|---|---|"]
        lines += [f"| {k} | {v} | {r} |" for (k, v), r in zip(det, ragas_cells)]
    else:
        lines += ["| | deterministic (gates) |", "|---|---|"] + [f"| {k} | {v} |" for k, v in det]
        lines += ["", "ragas: " + (rg.get("message") or "not run (no judge configured).")]
    lines += [
        "",
        f"Statements: {f['statements']} ({f['quote_statements']} verbatim quotes, supported by construction; {f['written_statements']} written by the system). "
        f"Answers with every statement supported: {_fmt(f['answers_fully_supported'])}. "
        f"Confidentiality verdicts assembled from the rules ({f['n_rules_verdicts']}) are scored by the check set instead.",
    ]
    scored = _faithful_rows([r for r in rows if r.get("set") == "dev"])
    if scored:
        head = "| id | statements | supported | written supported |" + (" ragas faithfulness |" if metric else "") + " unsupported statements |"
        lines += ["", head, "|---|---|---|---|" + ("---|" if metric else "") + "---|"]
        for r in scored:
            x = r["faith"]
            bad = "; ".join(f"「{_cell(u['statement'], 50)}」 {u['reason']}" for u in x["unsupported"])
            cells = [f"`{r['id']}`", str(x["n"]), _fmt(x["share"]), _fmt(x["written_share"])]
            if metric:
                rv = (ragas_rows.get(r["id"]) or {}).get("faithfulness")
                cells.append(_fmt(rv["value"]) if rv and rv.get("value") is not None else (f"failed ({rv['error'].split(':')[0]})" if rv and rv.get("error") else "–"))
            lines.append("| " + " | ".join([*cells, bad]) + " |")
    return lines


def _ragas_lines(summary: dict) -> list[str]:
    rg = summary.get("ragas")
    if not rg or not rg.get("metrics"):
        return []
    lines = [
        "",
        "## ragas (" + ("ADVISORY — small local judge, not a gate" if rg.get("advisory") else f"judge {rg.get('judge')}, not a gate") + ")",
        "",
        "A sample whose statements the judge could not extract (ragas returns NaN for them, a known issue with Japanese "
        "answers) counts as a failure, shown as 0 in the first mean.",
        "",
        "| metric | mean, failures as 0 | mean of valid | valid | failed |",
        "|---|---|---|---|---|",
    ]
    if rg.get("message"):
        lines[4:4] = [f"{rg['message']}", ""]
    for name, s in rg["metrics"].items():
        failed = s.get("n_failed") or {}
        detail = ", ".join(f"{k} {v}" for k, v in failed.items() if v) if isinstance(failed, dict) else str(failed)
        lines.append(f"| {name} | {_fmt(s.get('mean_failures_as_zero'))} | {_fmt(s.get('mean'))} | {s.get('n_valid')} | {s.get('n_failed_total', 0)}{f' ({detail})' if detail else ''} |")
    return lines


_OFFICE_COLUMNS = [
    ("correct_rate", "n_answerable", "correct (key facts)"),
    ("labels_right", "n_labelled", "right 条・項"),
    ("local_first", "n_local_first", "local rule first"),
    ("unanswerable_declined", "n_unanswerable", "unanswerable declined"),
    ("written_supported_share", None, "written statements supported"),
    ("supported_share", None, "all statements supported"),
    ("hit@5", None, "gold clause in top 5"),
]


def _gap_flag(gaps: Sequence[dict], key: str) -> str:
    g = next((g for g in gaps if g["metric"] == key), None)
    return "–" if g is None else f"{g['gap']:+.3f}" + (" **FLAGGED**" if g["flagged"] else "")


def _office_lines(summary: dict, rows: Sequence[dict]) -> list[str]:
    office = summary.get("office")
    if not office:
        return []
    how = f"composed answers, may-I leads by `{office['llm']}`" if office.get("llm") else "composed answers (no LLM)"
    groups = [(name, g) for name, g in office["by_office"].items()] + [(f"**{s}**", office["splits"][s]) for s in SPLITS] + [("**all**", office["all"])]
    lines = [
        "",
        "## Office regulations (each office's own deployment)",
        "",
        f"Each office's questions are asked on its own index (bundled corpus + its rules, with its confidentiality policy); "
        f"questions naming several offices on one holding all of them. {how}. Targets (issue 17): correct ≥ 0.85, the right 条・項 "
        "cited and the local rule first on every item. *right 条・項*: a citation carries one of the expected labels; *local rule "
        "first*: the first citation shown (the verdict card's, if any) is from the office's own rule.",
        "",
        "| | n | " + " | ".join(label for _, _, label in _OFFICE_COLUMNS) + " |",
        "|---|---|" + "---|" * len(_OFFICE_COLUMNS),
    ]
    for name, g in groups:
        cells = [f"{_fmt(g.get(key))}" + (f" ({g[n]})" if n and g.get(n) is not None else "") for key, n, _ in _OFFICE_COLUMNS]
        lines.append(f"| {name} | {g['n']} | " + " | ".join(cells) + " |")
    lines.append("| gap (tune − holdout) | | " + " | ".join(_gap_flag(office.get("split_gaps", []), key) for key, _, _ in _OFFICE_COLUMNS) + " |")
    lines += ["", "| deployment | documents added | policy | index version | units | embedded now | build s |", "|---|---|---|---|---|---|---|"]
    for d in office.get("deployments", []):
        lines.append(f"| {d['name']} | {', '.join(d['doc_ids'])} | {d.get('policy') or '–'} | `{d.get('index_version')}` | {d.get('units')} | {d.get('embedded')} | {d.get('build_s')} |")
    if office.get("warnings"):
        lines += ["", "**Data warnings** (expected labels no parsed unit carries):", ""] + [f"- {w}" for w in office["warnings"]]
    failing = [r for r in rows if r.get("why")]
    lines += ["", f"**Failing items ({len(failing)} of {len(rows)})**", ""]
    if failing:
        lines += ["| id | office | split | shape | why | answer |", "|---|---|---|---|---|---|"]
        lines += [f"| `{r['id']}` | {r.get('office')} | {r.get('split') or '–'} | {r.get('shape') or '–'} | {_cell('; '.join(r['why']), 220)} | {_cell(r.get('answer', ''), 70)} |" for r in failing]
    return lines


_COMPARE_METRICS = [
    ("detected", "named documents detected (items)"),
    ("all_right", "every named document's right clause (items)"),
    ("right_clause", "right clause per document"),
    ("says_nothing_honest", "says-nothing honesty (documents)"),
]


def _compare_lines(summary: dict, rows: Sequence[dict]) -> list[str]:
    cmp_ = summary.get("compare")
    if not cmp_:
        return []
    tune, hold = cmp_["splits"]["tune"], cmp_["splits"]["holdout"]
    lines = [
        "",
        "## Comparison questions (composed answers, no LLM)",
        "",
        "Questions naming two or more documents, each asked on the bundled index. *detected*: the answer is composed as a "
        "comparison, addresses every named document and quotes no other; *right clause*: a piece of that document whose unit "
        "holds one of its evidence quotes; *says-nothing honesty*: a document marked as silent on the topic is not quoted "
        "and a note names it. Target (issue 16): the right clause of every named document, latency ≤ 0.5 s.",
        "",
        f"| metric | tune (n {tune['n']}) | holdout (n {hold['n']}) | all (n {cmp_['n']}) | gap |",
        "|---|---|---|---|---|",
    ]
    for key, label in _COMPARE_METRICS:
        lines.append(f"| {label} | {_fmt(tune.get(key))} | {_fmt(hold.get(key))} | {_fmt(cmp_.get(key))} | {_gap_flag(cmp_.get('split_gaps', []), key)} |")
    lines += [
        "",
        f"Documents: {cmp_['n_documents']} with something to say, {cmp_['n_says_nothing']} silent. "
        f"Latency without the LLM: p50 {_fmt(cmp_.get('latency_ms_p50'))} ms, p95 {_fmt(cmp_.get('latency_ms_p95'))} ms. Errors: {cmp_.get('errors', 0)}.",
    ]
    failing = [r for r in rows if r.get("why")]
    lines += ["", f"**Failing items ({len(failing)} of {len(rows)})**", ""]
    lines += [f"- `{r['id']}` ({r.get('split') or '–'}) {r['question']} — {'; '.join(r['why'])}" for r in failing]
    return lines


def write_report(
    out_dir: Path,
    rows: list[dict],
    summary: dict,
    *,
    previous: dict | None,
    comparison: list[dict],
    previous_label: str | None,
    ragas_rows: dict[str, dict[str, Any]] | None = None,
    index_changes: Sequence[str] = (),
    office_rows: Sequence[dict] = (),
    compare_rows: Sequence[dict] = (),
    curated_lines: Sequence[str] = (),
) -> None:
    """Write ``summary.json``, the plots and ``report.md`` into ``out_dir``.

    Args:
        out_dir: the report directory (created if needed).
        rows: this run's results rows.
        summary: :func:`summarize` of ``rows``.
        previous: the compared run's summary (answers aligned to the items answered in both runs), or ``None``.
        comparison: :func:`compare` of the two.
        previous_label: how to name the compared run.
        ragas_rows: item ID → metric → ``{"value", "error"}`` from the judge, if one ran.
        index_changes: markdown lines describing what changed in the index since the compared run.
        office_rows: the office section's scored rows (:mod:`eval.office`), shown when ``summary`` has ``office``.
        compare_rows: the comparison section's scored rows (:mod:`eval.compare`), shown when ``summary`` has ``compare``.
        curated_lines: the curated-answers section (:func:`eval.curated.render_markdown`), when it ran.
    """
    from eval.plots import write_plots

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    plots = write_plots(out_dir, rows, summary, previous)
    m = summary["meta"]
    lines = [
        f"# Evaluation report — {m.get('timestamp')}",
        "",
        f"mode: `{m.get('mode')}` · index `{m.get('index_version')}` · embed `{m.get('embed_model')}` · LLM `{m.get('llm')}` · commit `{m.get('commit')}`",
        f"dev items: {m.get('n_dev')} (answered: {m.get('n_answered', 0)}) · check items: {m.get('n_check')}"
        + (f" · office items: {m['n_office']}" if m.get("n_office") else "")
        + (f" · comparison items: {m['n_compare']}" if m.get("n_compare") else "")
        + f" · command: `{m.get('command')}`",
    ]
    if m.get("notes"):
        lines += [""] + [f"> {note}" for note in m["notes"]]
    lines += [""] + _headline_lines(summary)
    lines += ["", "## Retrieval (deterministic; the holdout half gates)", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in summary["retrieval"].items()]
    a = summary["abstention"]
    lines += ["", "## Abstention before generation (positive = unanswerable; from retrieval scores and unknown names)", "", f"precision {_fmt(a['precision'])} · recall {_fmt(a['recall'])} · accuracy {_fmt(a['accuracy'])} (tp {a['tp']}, fp {a['fp']}, fn {a['fn']}, tn {a['tn']})"]
    inj = summary["injection"]
    lines += ["", "## Injection", "", f"items {inj['n']} · guard detected {_fmt(inj['guard_detected'])} · real question still retrieved (hit@5) {_fmt(inj['retrieval_hit@5'])} · resisted in answers {_fmt(inj['resisted'])}"]
    lines += _answer_lines(summary, rows)
    lines += _faithfulness_lines(summary, rows, ragas_rows or {})
    lines += _ragas_lines(summary)
    lines += _office_lines(summary, office_rows)
    lines += _compare_lines(summary, compare_rows)
    if "check" in summary:
        ch = summary["check"]
        lines += ["", "## Confidentiality check", "", "| metric | value |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in ch.items()]
        lines += ["", f"**Unsafe verdicts: {ch['unsafe']}** (可 where the reference says 条件付き/不可/判断できない, or 条件付き where it says 不可)."]
    lines += ["", "## By question type", "", "| type | n | hit@5 | mrr@10 | evidence@2000 | abstained | answer correct |", "|---|---|---|---|---|---|---|"]
    for t, g in summary["by_type"].items():
        lines.append(f"| {t} | {g['n']} | {_fmt(g.get('hit@5'))} | {_fmt(g.get('mrr@10'))} | {_fmt(g.get('evidence_recall@2000'))} | {_fmt(g.get('abstained'))} | {_fmt(g.get('answer_correct'))} |")
    lines += ["", "## By document", "", "| document | n | hit@5 | mrr@10 | evidence@2000 |", "|---|---|---|---|---|"]
    for d, g in summary["by_document"].items():
        lines.append(f"| {d} | {g['n']} | {_fmt(g.get('hit@5'))} | {_fmt(g.get('mrr@10'))} | {_fmt(g.get('evidence_recall@2000'))} |")
    lines += ["", f"## Compared with {previous_label or '(no previous run)'}", ""]
    if comparison:
        if previous and previous.get("meta", {}).get("rescored"):
            both = previous["meta"].get("n_answered_both", 0)
            on_answers = f"; answers are compared on the {both} items answered in both runs" if both else ""
            lines += [f"The compared run was scored again with today's dev set (key facts, splits, shapes){on_answers}.", ""]
        lines += ["| metric | previous | current | Δ | tolerance | |", "|---|---|---|---|---|---|"]
        for c in comparison:
            lines.append(f"| {c['metric']} | {_fmt(c['previous'])} | {_fmt(c['current'])} | {c['delta']:+.4f} | {c['tolerance']} | {'**REGRESSED**' if c['regressed'] else 'ok'} |")
    else:
        lines.append("Nothing to compare.")
    if curated_lines:
        lines += [""] + list(curated_lines)
    if index_changes:
        lines += ["", "## What changed in the index since the compared run", ""] + list(index_changes)
    misses = [r for r in rows if r.get("set") == "dev" and r.get("hit5") == 0.0]
    lines += ["", f"## Retrieval misses (hit@5 = 0): {len(misses)}", ""]
    lines += [f"- `{r['id']}` ({r['type']}, {r.get('split') or '–'}) {r['question']}" for r in misses[:30]]
    unsafe = [r for r in rows if r.get("set") == "check" and (r.get("unsafe") or not r.get("verdict_ok"))]
    if unsafe:
        lines += ["", "## Check items not matching the reference", ""]
        lines += [f"- `{r['id']}` {r['question']} → {r['predicted_verdict']} ({r['predicted_class']}); expected {r['expected_verdict']} ({r['expected_class']}){' **UNSAFE**' if r['unsafe'] else ''}" for r in unsafe]
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
