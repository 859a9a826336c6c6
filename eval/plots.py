"""The report's plots (PNG, matplotlib's Agg backend, no display needed).

* ``score_distributions.png`` — reciprocal rank, top-1 cosine and top-1 word overlap;
* ``by_type_vs_previous.png`` — hit@5 by question type, this run against the compared one;
* ``correctness_by_shape_vs_previous.png`` — correct / partial / wrong answers by question
  shape, this run against the compared one (answer-mode runs);
* ``faithfulness_per_item.png`` — each answered item's statements: verbatim quotes, written
  and supported, unsupported (answer-mode runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_plots"]

_BLUE, _ORANGE, _GREY = "#3b6ea5", "#d08c2a", "#bbbbbb"
_VERDICT_COLOURS = {"correct": "#3a8f4b", "partial": "#e0b040", "wrong": "#c44e52"}


def _score_distributions(plt: Any, out_dir: Path, dev: list[dict]) -> str:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].hist([r["rr10"] for r in dev if "rr10" in r], bins=10, range=(0, 1), color=_BLUE)
    axes[0].set_title("reciprocal rank (answerable)")
    ans = [r["top_dense"] for r in dev if r["type"] != "unanswerable" and "top_dense" in r]
    una = [r["top_dense"] for r in dev if r["type"] == "unanswerable" and "top_dense" in r]
    axes[1].hist([ans, una], bins=12, label=["answerable", "unanswerable"], color=[_BLUE, _ORANGE])
    axes[1].legend()
    axes[1].set_title("top-1 cosine")
    lex_ans = [r["top_lexical"] for r in dev if r["type"] != "unanswerable" and "top_lexical" in r]
    lex_una = [r["top_lexical"] for r in dev if r["type"] == "unanswerable" and "top_lexical" in r]
    axes[2].hist([lex_ans, lex_una], bins=10, range=(0, 1), color=[_BLUE, _ORANGE])
    axes[2].set_title("top-1 word overlap")
    return _save(plt, fig, out_dir, "score_distributions.png")


def _by_type(plt: Any, out_dir: Path, summary: dict, previous: dict | None) -> str:
    types = sorted(summary["by_type"])
    cur = [summary["by_type"][t].get("hit@5") or 0 for t in types]
    prev = [((previous or {}).get("by_type", {}).get(t) or {}).get("hit@5") or 0 for t in types]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = range(len(types))
    ax.bar([i - 0.2 for i in x], prev, width=0.4, label="previous", color=_GREY)
    ax.bar([i + 0.2 for i in x], cur, width=0.4, label="current", color=_BLUE)
    ax.set_xticks(list(x), types, rotation=20)
    ax.set_ylim(0, 1.05)
    ax.set_title("hit@5 by question type")
    ax.legend()
    return _save(plt, fig, out_dir, "by_type_vs_previous.png")


def _correctness_by_shape(plt: Any, out_dir: Path, summary: dict, previous: dict | None) -> str:
    cur = summary["correctness"]["by_shape"]
    prev = ((previous or {}).get("correctness") or {}).get("by_shape") or {}
    shapes = sorted(set(cur) | set(prev))
    fig, ax = plt.subplots(figsize=(10, 4))
    for offset, groups, label in ((-0.2, prev, "previous"), (0.2, cur, "current")):
        bottom = [0.0] * len(shapes)
        for verdict, colour in _VERDICT_COLOURS.items():
            heights = [(groups.get(s) or {}).get(f"{verdict}_rate") or 0.0 for s in shapes]
            ax.bar(
                [i + offset for i in range(len(shapes))], heights, width=0.38, bottom=bottom, color=colour,
                alpha=0.45 if label == "previous" else 1.0, edgecolor="white",
                label=f"{verdict} ({label})",
            )
            bottom = [b + h for b, h in zip(bottom, heights)]
    ax.set_xticks(list(range(len(shapes))), [f"{s}\nn={(cur.get(s) or {}).get('n', 0)}" for s in shapes], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of answered items")
    ax.set_title("key-fact correctness by question shape (left: previous, right: current)")
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(plt, fig, out_dir, "correctness_by_shape_vs_previous.png")


def _faithfulness_per_item(plt: Any, out_dir: Path, rows: list[dict]) -> str:
    items = [r for r in rows if r.get("set") == "dev" and r.get("faith") and r["faith"]["n"] and not r.get("rules_verdict")]
    ids = [r["id"] for r in items]
    quote = [r["faith"]["quote"] for r in items]
    written_ok = [r["faith"]["written_supported"] for r in items]
    bad = [r["faith"]["n"] - r["faith"]["supported"] for r in items]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(items) + 1)))
    y = range(len(items))
    ax.barh(y, quote, color=_BLUE, label="verbatim quote")
    ax.barh(y, written_ok, left=quote, color="#3a8f4b", label="written, supported")
    ax.barh(y, bad, left=[q + w for q, w in zip(quote, written_ok)], color="#c44e52", label="unsupported")
    ax.set_yticks(list(y), ids, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("statements")
    ax.set_title("statement-level faithfulness per answered item")
    ax.legend(fontsize=7, loc="lower right")
    return _save(plt, fig, out_dir, "faithfulness_per_item.png")


def _save(plt: Any, fig: Any, out_dir: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=110)
    plt.close(fig)
    return name


def write_plots(out_dir: Path, rows: list[dict], summary: dict, previous: dict | None) -> list[str]:
    """Draw every plot that this run's data supports into ``out_dir``.

    Args:
        out_dir: the report directory.
        rows: this run's results rows.
        summary: this run's summary.
        previous: the compared run's summary (answers aligned with this run's), or ``None``.

    Returns:
        The file names written, in the order the report shows them.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dev = [r for r in rows if r.get("set") == "dev"]
    files = [_score_distributions(plt, out_dir, dev), _by_type(plt, out_dir, summary, previous)]
    if summary.get("correctness"):
        files.append(_correctness_by_shape(plt, out_dir, summary, previous))
    if summary.get("faithfulness", {}).get("n_answers"):
        files.append(_faithfulness_per_item(plt, out_dir, rows))
    return files
