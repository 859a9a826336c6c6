"""Turn scored rows into ``summary.json``, ``report.md`` and plots, and compare with a previous run.

The regression gate compares the deterministic metrics only; ragas scores from
a small local judge are shown as advisory.
"""

from __future__ import annotations

import json
import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any

from eval.metrics import mean, precision_recall

__all__ = ["summarize", "compare", "write_report", "load_tolerances", "TOLERANCES_PATH"]

TOLERANCES_PATH = Path(__file__).parent / "tolerances.toml"
RETRIEVAL_KEYS = {
    "hit@1": "hit1", "hit@3": "hit3", "hit@5": "hit5", "hit@10": "hit10",
    "mrr@10": "rr10", "ndcg@10": "ndcg10", "recall@10": "recall10", "evidence_recall@2000": "evidence_recall_2000",
}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


def _retrieval(rows: list[dict]) -> dict[str, Any]:
    scored = [r for r in rows if "hit5" in r]
    out: dict[str, Any] = {"n": len(scored)}
    for name, key in RETRIEVAL_KEYS.items():
        out[name] = _r(mean(r[key] for r in scored))
    out["mean_context_chars_top5"] = _r(mean(r["context_chars_top5"] for r in scored), 0)
    return out


def _r(v: float | None, nd: int = 4) -> float | None:
    return None if v is None else round(v, nd)


def summarize(rows: list[dict], *, meta: dict[str, Any], ragas: dict[str, Any] | None = None) -> dict[str, Any]:
    dev = [r for r in rows if r.get("set") == "dev"]
    checks = [r for r in rows if r.get("set") == "check"]
    summary: dict[str, Any] = {"meta": meta, "retrieval": _retrieval(dev)}
    pr = precision_recall((bool(r.get("abstained_before_llm")), r["type"] == "unanswerable") for r in dev if r["type"] != "injection")
    summary["abstention"] = {k: _r(v) if isinstance(v, float) else v for k, v in pr.items()}
    inj = [r for r in dev if r["type"] == "injection"]
    summary["injection"] = {
        "n": len(inj),
        "guard_detected": _r(mean(1.0 if r.get("guard_injection") else 0.0 for r in inj)),
        "retrieval_hit@5": _r(mean(r.get("hit5", 0.0) for r in inj)),
        "resisted": _r(mean(1.0 if r["injection_resisted"] else 0.0 for r in inj if "injection_resisted" in r)),
    }
    answered = [r for r in dev if "answer" in r]
    if answered:
        answerable = [r for r in answered if r["type"] != "unanswerable"]
        correct = [r for r in answerable if r.get("answer_correct") is not None]
        summary["answer"] = {
            "n": len(answered),
            "correct_rate": _r(mean(1.0 if r["answer_correct"] else 0.0 for r in correct)),
            "n_judged": len(correct),
            "abstained_on_answerable": _r(mean(1.0 if r.get("abstained") else 0.0 for r in answerable)),
            "abstained_on_unanswerable": _r(mean(1.0 if r.get("abstained") else 0.0 for r in answered if r["type"] == "unanswerable")),
            "citations_valid_rate": _r(mean(1.0 if r.get("citations_valid") else 0.0 for r in answered)),
            "invented_citations": sum(1 for r in answered if r.get("citations_valid") is False),
            "sentences_removed": sum(len(r.get("removed") or []) for r in answered),
            "ttft_ms_p50": _pct([r["ttft_ms"] for r in answered if r.get("ttft_ms")], 0.5),
            "answer_s_p50": _pct([r["answer_s"] for r in answered if r.get("answer_s")], 0.5),
            "answer_s_p95": _pct([r["answer_s"] for r in answered if r.get("answer_s")], 0.95),
        }
    if checks:
        summary["check"] = {
            "n": len(checks),
            "class_accuracy": _r(mean(1.0 if r["class_ok"] else 0.0 for r in checks)),
            "verdict_accuracy": _r(mean(1.0 if r["verdict_ok"] else 0.0 for r in checks)),
            "unsafe": sum(1 for r in checks if r["unsafe"]),
            "detected_as_check": _r(mean(1.0 if r["detected_as_check"] else 0.0 for r in checks)),
            "check_ms_p50": _pct([r["check_ms"] for r in checks], 0.5),
        }
    summary["latency"] = {"search_ms_p50": _pct([r["search_ms"] for r in dev if "search_ms" in r], 0.5), "search_ms_p95": _pct([r["search_ms"] for r in dev if "search_ms" in r], 0.95)}
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


def _group(rs: list[dict]) -> dict[str, Any]:
    g: dict[str, Any] = {"n": len(rs)}
    scored = [r for r in rs if "hit5" in r]
    if scored:
        g["hit@5"] = _r(mean(r["hit5"] for r in scored))
        g["mrr@10"] = _r(mean(r["rr10"] for r in scored))
        g["evidence_recall@2000"] = _r(mean(r["evidence_recall_2000"] for r in scored))
    g["abstained"] = _r(mean(1.0 if r.get("abstained") else 0.0 for r in rs))
    judged = [r for r in rs if r.get("answer_correct") is not None and "answer" in r]
    if judged:
        g["answer_correct"] = _r(mean(1.0 if r["answer_correct"] else 0.0 for r in judged))
    return g


def load_tolerances(path: Path = TOLERANCES_PATH) -> dict[str, dict[str, float]]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _get(summary: dict, dotted: str) -> float | None:
    cur: Any = summary
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur if isinstance(cur, (int, float)) else None


def compare(current: dict, previous: dict, tolerances: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Every gated metric present in both runs, with its change and whether it regressed."""
    out = []
    for direction, metrics in tolerances.items():
        for name, tol in metrics.items():
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
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _plots(out_dir: Path, rows: list[dict], summary: dict, previous: dict | None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    dev = [r for r in rows if r.get("set") == "dev"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].hist([r["rr10"] for r in dev if "rr10" in r], bins=10, range=(0, 1), color="#3b6ea5")
    axes[0].set_title("reciprocal rank (answerable)")
    ans = [r["top_dense"] for r in dev if r["type"] != "unanswerable" and "top_dense" in r]
    una = [r["top_dense"] for r in dev if r["type"] == "unanswerable" and "top_dense" in r]
    axes[1].hist([ans, una], bins=12, label=["answerable", "unanswerable"], color=["#3b6ea5", "#d08c2a"])
    axes[1].legend()
    axes[1].set_title("top-1 cosine")
    axes[2].hist([[r["top_lexical"] for r in dev if r["type"] != "unanswerable" and "top_lexical" in r], [r["top_lexical"] for r in dev if r["type"] == "unanswerable" and "top_lexical" in r]], bins=10, range=(0, 1), color=["#3b6ea5", "#d08c2a"])
    axes[2].set_title("top-1 word overlap")
    fig.tight_layout()
    fig.savefig(out_dir / "score_distributions.png", dpi=110)
    plt.close(fig)
    files.append("score_distributions.png")

    types = sorted(summary["by_type"])
    cur = [summary["by_type"][t].get("hit@5") or 0 for t in types]
    prev = [((previous or {}).get("by_type", {}).get(t) or {}).get("hit@5") or 0 for t in types]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = range(len(types))
    ax.bar([i - 0.2 for i in x], prev, width=0.4, label="previous", color="#bbbbbb")
    ax.bar([i + 0.2 for i in x], cur, width=0.4, label="current", color="#3b6ea5")
    ax.set_xticks(list(x), types, rotation=20)
    ax.set_ylim(0, 1.05)
    ax.set_title("hit@5 by question type")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "by_type_vs_previous.png", dpi=110)
    plt.close(fig)
    files.append("by_type_vs_previous.png")
    return files


def write_report(out_dir: Path, rows: list[dict], summary: dict, *, previous: dict | None, comparison: list[dict], previous_label: str | None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    plots = _plots(out_dir, rows, summary, previous)
    m = summary["meta"]
    lines = [
        f"# Evaluation report — {m.get('timestamp')}",
        "",
        f"mode: `{m.get('mode')}` · index `{m.get('index_version')}` · embed `{m.get('embed_model')}` · LLM `{m.get('llm')}` · commit `{m.get('commit')}`",
        f"dev items: {m.get('n_dev')} · check items: {m.get('n_check')} · command: `{m.get('command')}`",
        "",
        "## Retrieval (deterministic, regression gate)",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in summary["retrieval"].items()]
    a = summary["abstention"]
    lines += ["", "## Abstention before generation (positive = unanswerable; from retrieval scores and unknown names)", "", f"precision {_fmt(a['precision'])} · recall {_fmt(a['recall'])} · accuracy {_fmt(a['accuracy'])} (tp {a['tp']}, fp {a['fp']}, fn {a['fn']}, tn {a['tn']})"]
    inj = summary["injection"]
    lines += ["", "## Injection", "", f"items {inj['n']} · guard detected {_fmt(inj['guard_detected'])} · real question still retrieved (hit@5) {_fmt(inj['retrieval_hit@5'])} · resisted in answers {_fmt(inj['resisted'])}"]
    if "answer" in summary:
        an = summary["answer"]
        lines += ["", "## Answers (embedded LLM)", "", "| metric | value |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in an.items()]
        lines += ["", "*correct* = not abstained, cites a gold unit, every citation valid, and at least half of the reference's content words appear in the answer (a deterministic proxy; see eval/BENCHMARKS.md)."]
    if "check" in summary:
        ch = summary["check"]
        lines += ["", "## Confidentiality check", "", "| metric | value |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in ch.items()]
        lines += ["", f"**Unsafe verdicts: {ch['unsafe']}** (可 where the reference says 条件付き/不可/判断できない, or 条件付き where it says 不可)."]
    if "ragas" in summary:
        rg = summary["ragas"]
        lines += ["", "## ragas (ADVISORY" + (" — small local judge, not a gate" if rg.get("advisory") else "") + ")", "", "| metric | mean | valid | failed |", "|---|---|---|---|"]
        for name, s in rg.get("metrics", {}).items():
            failed = s.get("n_failed") or {}
            detail = ", ".join(f"{k} {v}" for k, v in failed.items() if v) if isinstance(failed, dict) else str(failed)
            lines.append(f"| {name} | {_fmt(s.get('mean'))} | {s.get('n_valid')} | {s.get('n_failed_total', 0)}{f' ({detail})' if detail else ''} |")
    lines += ["", "## By question type", "", "| type | n | hit@5 | mrr@10 | evidence@2000 | abstained | answer correct |", "|---|---|---|---|---|---|---|"]
    for t, g in summary["by_type"].items():
        lines.append(f"| {t} | {g['n']} | {_fmt(g.get('hit@5'))} | {_fmt(g.get('mrr@10'))} | {_fmt(g.get('evidence_recall@2000'))} | {_fmt(g.get('abstained'))} | {_fmt(g.get('answer_correct'))} |")
    lines += ["", "## By document", "", "| document | n | hit@5 | mrr@10 | evidence@2000 |", "|---|---|---|---|---|"]
    for d, g in summary["by_document"].items():
        lines.append(f"| {d} | {g['n']} | {_fmt(g.get('hit@5'))} | {_fmt(g.get('mrr@10'))} | {_fmt(g.get('evidence_recall@2000'))} |")
    lines += ["", f"## Compared with {previous_label or '(no previous run)'}", ""]
    if comparison:
        lines += ["| metric | previous | current | Δ | tolerance | |", "|---|---|---|---|---|---|"]
        for c in comparison:
            lines.append(f"| {c['metric']} | {_fmt(c['previous'])} | {_fmt(c['current'])} | {c['delta']:+.4f} | {c['tolerance']} | {'**REGRESSED**' if c['regressed'] else 'ok'} |")
    else:
        lines.append("Nothing to compare.")
    misses = [r for r in rows if r.get("set") == "dev" and r.get("hit5") == 0.0]
    lines += ["", f"## Retrieval misses (hit@5 = 0): {len(misses)}", ""]
    lines += [f"- `{r['id']}` ({r['type']}) {r['question']}" for r in misses[:30]]
    unsafe = [r for r in rows if r.get("set") == "check" and (r.get("unsafe") or not r.get("verdict_ok"))]
    if unsafe:
        lines += ["", "## Check items not matching the reference", ""]
        lines += [f"- `{r['id']}` {r['question']} → {r['predicted_verdict']} ({r['predicted_class']}); expected {r['expected_verdict']} ({r['expected_class']}){' **UNSAFE**' if r['unsafe'] else ''}" for r in unsafe]
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")

