"""Retrieval benchmark: ablations, latency, lifecycle timings, Edge vs. qdrant-client local mode,
and the data behind the citation gate's threshold.

    .venv/bin/python -m eval.bench [--skip-local] [--out eval/bench_retrieval.md]

It builds its own indexes in a temporary data directory (sharing only the
embedding cache, so "cold ingest" is measured with an empty cache copy), never
touching the live ``.guideqa/index``.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from eval.devset import load_devset, remap_gold_ids
from eval.metrics import hit_at, recall_at, reciprocal_rank
from guideqa.settings import PROJECT_ROOT, Settings
from index.build import build_index
from index.embeddings import get_embedding_model
from index.search import Searcher
from index.store import QueryFilter
from index.tokenizer import get_tokenizer
from ingest.pipeline import ingest_corpus
from service.answer.gate import support

__all__ = ["main"]


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _metrics(searcher: Searcher, items, strategy: str) -> dict[str, float]:
    h1, h5, rr, rec = [], [], [], []
    for d in items:
        ids = [h.unit_id for h in searcher.search(d.question, top_k=10, strategy=strategy, flt=QueryFilter(access=["public"])).hits]
        h1.append(hit_at(ids, d.gold_units, 1))
        h5.append(hit_at(ids, d.gold_units, 5))
        rr.append(reciprocal_rank(ids, d.gold_units, 10))
        rec.append(recall_at(ids, d.gold_units, 10))
    n = len(items)
    return {"hit@1": sum(h1) / n, "hit@5": sum(h5) / n, "mrr@10": sum(rr) / n, "recall@10": sum(rec) / n}


def _latency(searcher: Searcher, questions: list[str]) -> dict[str, tuple[float, float]]:
    """p50/p95 ms of ``Searcher.search``: every question new (its embedding computed), and asked again (cached)."""
    for q in questions[:5]:
        searcher.search(q + "（準備）", top_k=5, flt=QueryFilter(access=["public"]))  # warm-up: tokenizer, shard pages, model threads
    out = {}
    searcher.clear_query_cache()
    for label in ("new question", "repeated question"):
        times = []
        for q in questions:
            t = time.perf_counter()
            searcher.search(q, top_k=5, flt=QueryFilter(access=["public"]))
            times.append((time.perf_counter() - t) * 1000)
        out[label] = (round(_pct(times, 0.5), 2), round(_pct(times, 0.95), 2))
    return out


def _gate_table(units, items) -> list[tuple[float, float, float]]:
    """Support of each reference answer in its gold unit (should pass) vs. in a random other unit (should fail)."""
    tok = get_tokenizer()
    by_id = {u.id: u for u in units}
    rng = random.Random(7)
    pos, neg = [], []
    for d in items:
        gold = [by_id[g] for g in d.gold_units if g in by_id]
        if not gold:
            continue
        pos.append(max(support(tok, d.reference, g.text + "\n" + g.row) for g in gold))
        other = rng.choice([u for u in units if u.id not in d.gold_units])
        neg.append(support(tok, d.reference, other.text + "\n" + other.row))
    rows = []
    for t in (0.3, 0.4, 0.5, 0.6, 0.7):
        rows.append((t, sum(p >= t for p in pos) / len(pos), sum(n >= t for n in neg) / len(neg)))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--skip-local", action="store_true", help="skip the (slow) qdrant-client local-mode comparison")
    ap.add_argument("--out", type=Path, default=PROJECT_ROOT / "eval" / "bench_retrieval.md")
    args = ap.parse_args(argv)

    base = Settings()
    tmp = Path(tempfile.mkdtemp(prefix="guideqa-bench-"))
    lines = ["# Retrieval benchmark", "", f"Command: `.venv/bin/python -m eval.bench{' --skip-local' if args.skip_local else ''}`", ""]
    try:
        t = time.perf_counter()
        result = ingest_corpus(base.corpus_dir)
        parse_s = time.perf_counter() - t
        units = result.units
        items = [d for d in remap_gold_ids(load_devset(), units)[0] if d.gold_units]
        questions = [d.question for d in load_devset()]

        # Cold ingest: an empty embedding cache. Re-ingest: nothing changed.
        cold = base.model_copy(update={"data_dir": tmp / "edge", "cache_dir": tmp / "cold-cache"})
        embed = get_embedding_model(cold)
        tok = get_tokenizer()
        t = time.perf_counter()
        build_index(units, cold, embed_model=embed, tokenizer=tok)
        cold_s = time.perf_counter() - t + parse_s
        t = time.perf_counter()
        ingest_corpus(base.corpus_dir)
        again = build_index(units, cold, embed_model=embed, tokenizer=tok)
        reingest_s = time.perf_counter() - t
        assert again.skipped
        t = time.perf_counter()
        searcher = Searcher(cold, embed_model=embed, tokenizer=tok)
        searcher.index_version
        startup_s = time.perf_counter() - t

        lines += ["## Lifecycle (bundled corpus, %d units)" % len(units), "", "| step | seconds |", "|---|---|",
                  f"| cold ingest (parse + embed all units + build Edge shard) | {cold_s:.1f} |",
                  f"| no-change re-ingest | {reingest_s:.2f} |",
                  f"| start-up with an existing index (open shard, read vocabulary) | {startup_s:.2f} |", ""]

        lines += ["## Ablations on the dev set (%d answerable items with gold units)" % len(items), "", "| retriever | hit@1 | hit@5 | MRR@10 | recall@10 |", "|---|---|---|---|---|"]
        for strategy in ("hybrid", "bm25", "dense", "bigram"):
            m = _metrics(searcher, items, strategy)
            lines.append(f"| {strategy} | {m['hit@1']:.3f} | {m['hit@5']:.3f} | {m['mrr@10']:.3f} | {m['recall@10']:.3f} |")
        lat = _latency(searcher, questions)
        lines += ["", f"Warm search latency, Qdrant Edge, end to end in `Searcher.search` (tokenise, embed the query, hybrid query, explain scores), {len(questions)} dev questions:", "",
                  "| | p50 ms | p95 ms |", "|---|---|---|"] + [f"| {k} | {v[0]} | {v[1]} |" for k, v in lat.items()] + [""]
        searcher.close()

        if not args.skip_local:
            local = base.model_copy(update={"data_dir": tmp / "local", "qdrant_local_path": tmp / "qlocal"})
            t = time.perf_counter()
            build_index(units, local, embed_model=embed, tokenizer=tok)
            local_build = time.perf_counter() - t
            t = time.perf_counter()
            ls = Searcher(local, embed_model=embed, tokenizer=tok)
            ls.index_version
            local_open = time.perf_counter() - t
            lm = _metrics(ls, items, "hybrid")
            lp50, lp95 = _latency(ls, questions[:30])["new question"]
            ls.close()
            lines += ["## Qdrant Edge vs. qdrant-client local mode (same units, same query shape)", "", "| | build (embeddings cached) | open | hybrid hit@5 | MRR@10 | search p50 / p95 ms |", "|---|---|---|---|---|---|",
                      f"| qdrant-client local | {local_build:.1f} s | {local_open:.2f} s | {lm['hit@5']:.3f} | {lm['mrr@10']:.3f} | {lp50} / {lp95} |", ""]

        lines += ["## Citation gate threshold", "", "Share of content words of each dev item's reference answer found in its gold unit (a grounded sentence)",
                  "vs. in a random other unit (an unsupported one). The gate keeps a sentence at support ≥ threshold.", "",
                  "| threshold | grounded kept | unsupported kept |", "|---|---|---|"]
        for thr, kept_pos, kept_neg in _gate_table(units, items):
            lines.append(f"| {thr} | {kept_pos:.2f} | {kept_neg:.2f} |")
        lines.append("")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

