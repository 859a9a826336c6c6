"""``guideqa`` command line: the composition root for scripts.

This module (with ``service.main``) is where settings are read from the
environment and stages are wired together; every stage below it takes its
values as arguments. Errors from the project's tree are turned into a one-line
Japanese message and a non-zero exit code here, never a stack trace.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

import typer
from rich.console import Console
from rich.table import Table

from guideqa.errors import GuideQAError
from guideqa.settings import Settings, get_settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Question answering over Japanese public-sector generative-AI guidelines (offline, cited).",
)
console = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)


def _fail(exc: GuideQAError, code: int = 1) -> None:
    console.print(f"[red]エラー[/red] ({exc.code}): {exc.message}")
    if exc.detail and os.environ.get("GUIDEQA_DEBUG"):
        console.print(f"[dim]{exc.detail}[/dim]")
    raise typer.Exit(code)


def _settings(data_dir: Optional[Path]) -> Settings:
    s = get_settings()
    return s.model_copy(update={"data_dir": data_dir}) if data_dir else s


DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory (default .guideqa/).")]


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


# ----------------------------------------------------------------------------- ingest
@app.command()
def ingest(
    corpus: Annotated[Optional[Path], typer.Option(help="Corpus directory holding manifest.json.")] = None,
    manifest: Annotated[Optional[Path], typer.Option(help="Manifest file (default <corpus>/manifest.json).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Parse only; print units or a summary.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --dry-run: one JSON object per unit.")] = False,
    force: Annotated[bool, typer.Option(help="Rebuild even if nothing changed.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Read the corpus into clause-level units and build the search index."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ingest.pipeline import ingest_corpus

    settings = _settings(data_dir)
    corpus_dir = corpus or settings.corpus_dir
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task("文書を読み込み中", total=None)
            result = ingest_corpus(corpus_dir, manifest, on_document=lambda f: bar.update(task, description=f"読み込み中: {f}"))
    except GuideQAError as exc:
        _fail(exc, 2)
    for rep in result.failed:
        console.print(f"[yellow]スキップ[/yellow] {rep.file}: {rep.error}")
    if dry_run:
        if as_json:
            for u in result.units:
                out.print(json.dumps(_unit_json(u), ensure_ascii=False), highlight=False)
        else:
            _print_summary(result)
        return
    _build(result, settings, force=force)


def _unit_json(u) -> dict:
    return {
        "id": u.id,
        "doc_id": u.doc_id,
        "doc_title": u.doc_title,
        "section_path": u.section_path,
        "kind": u.kind,
        "tags": u.tags,
        "text": u.text,
        "provenance": [p.model_dump() for p in u.provenance],
    }


def _print_summary(result) -> None:
    table = Table(title="取り込み結果（dry run）")
    for col in ("document", "units", "clause", "table_row", "qa", "definition", "paragraph", "merged dups", "noise lines"):
        table.add_column(col, justify="right" if col != "document" else "left", overflow="fold")
    for rep in result.reports:
        if rep.error:
            table.add_row(rep.file, "[red]error[/red]", *[""] * 7)
            continue
        table.add_row(
            rep.file,
            str(rep.units),
            *[str(rep.kinds.get(k, 0)) for k in ("clause", "table_row", "qa", "definition", "paragraph")],
            str(rep.unit_stats.get("merged_duplicates", 0)),
            str(sum(rep.noise_lines.values())),
        )
    out.print(table)
    lengths = sorted(len(u.norm_text) for u in result.units)
    n = len(lengths)
    pct = lambda p: lengths[min(n - 1, int(p * n))]  # noqa: E731
    out.print(f"units: {n}  length chars: min {lengths[0]} / p50 {pct(0.5)} / p90 {pct(0.9)} / max {lengths[-1]}")
    noise: Counter = Counter()
    for rep in result.reports:
        noise.update(rep.noise_lines)
    out.print("noise lines dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(noise.items())))
    merged = sum(r.unit_stats.get("merged_duplicates", 0) for r in result.reports)
    out.print(f"duplicates merged: {merged}")


def _build(result, settings: Settings, *, force: bool) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from index.build import build_index
    from index.embeddings import get_embedding_model
    from index.tokenizer import get_tokenizer

    try:
        embed = get_embedding_model(settings)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task("埋め込み計算中", total=len(result.units))
            report = build_index(
                result.units,
                settings,
                embed_model=embed,
                tokenizer=get_tokenizer(),
                documents=len(result.documents) - len(result.failed),
                force=force,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except GuideQAError as exc:
        _fail(exc, 2)
    m = report.meta
    if report.skipped:
        out.print(f"変更なし: インデックス {m.version} をそのまま使用します（{m.units} 単位）。")
    else:
        out.print(
            f"インデックス {m.version} を作成しました: {m.units} 単位 / {m.documents} 文書 / "
            f"埋め込み {m.embedded} 件（再利用 {m.reused_embeddings} 件） / {m.build_seconds} 秒"
        )


# ----------------------------------------------------------------------------- index
@app.command("index")
def index_cmd(
    status: Annotated[bool, typer.Option("--status", help="Show the live index.")] = True,
    data_dir: DataDir = None,
) -> None:
    """Show the live index: counts, backend, model, build time, corpus hash."""
    from index.status import index_status

    settings = _settings(data_dir)
    try:
        info = index_status(settings)
    except GuideQAError as exc:
        _fail(exc, 2)
    for k, v in info.items():
        out.print(f"{k}: {v}")


# ----------------------------------------------------------------------------- search
@app.command()
def search(
    query: Annotated[Optional[str], typer.Argument(help="質問")] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=50)] = 5,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    questions: Annotated[Optional[Path], typer.Option(help="JSONL of {id, question} for batch mode.")] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Batch output JSONL.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Ranked clauses for a question (no LLM). Batch mode with --questions/--out."""
    from service.components import build_searcher
    from service.search import batch_search, search_units

    settings = _settings(data_dir)
    try:
        searcher = build_searcher(settings)
        if questions:
            if not out_path:
                raise typer.BadParameter("--out is required with --questions")
            n = batch_search(searcher, questions, out_path, top_k=top_k)
            console.print(f"{n} 件を {out_path} に書き出しました。")
            return
        if query is None:
            raise typer.BadParameter("質問を指定してください（または --questions）。")
        result = search_units(searcher, query, top_k=top_k)
    except GuideQAError as exc:
        _fail(exc)
    if as_json:
        out.print(json.dumps(result.model_dump(), ensure_ascii=False, indent=2))
        return
    if not result.results:
        out.print("該当する箇所は見つかりませんでした。")
    for r in result.results:
        out.print(f"[bold]{r.rank}.[/bold] ({r.score:.3f}) {r.doc_title}")
        out.print(f"   [dim]{' > '.join(r.section_path[1:])}[/dim]")
        out.print("   " + _highlight(r.text, r.matched_terms).replace("\n", "\n   "))


def _highlight(text: str, terms: list[str]) -> str:
    from rich.markup import escape

    s = escape(text)
    for t in terms:
        s = s.replace(escape(t), f"[reverse]{escape(t)}[/reverse]")
    return s



# ----------------------------------------------------------------------------- ask
def _app_state(settings: Settings, *, load_llm: bool):
    from service.state import build_state

    return build_state(settings, load_llm=load_llm)


def _print_answer(resp) -> None:
    out.print("[bold]回答[/bold] [dim](AI生成 — 必ず引用元の原文を確認してください)[/dim]" if resp.ai_generated else "[bold]回答[/bold]")
    out.print(resp.answer)
    if resp.notice:
        out.print(f"[yellow]{resp.notice}[/yellow]")
    if resp.check is not None:
        c = resp.check
        out.print(f"[bold]判定[/bold]: {c.verdict}  分類: {c.class_ or '不明'}  条件: {'、'.join(c.conditions) or 'なし'}")
        for case in c.cases:
            out.print(f"  - {case.service}: {case.verdict}")
    for c in resp.citations:
        out.print(f"[{c.n}] {c.doc_title} > {' > '.join(c.section_path[1:])}  ({c.source_file}:{c.line_start}-{c.line_end})")
        out.print("    " + c.quote.replace("\n", "\n    ")[:400])
    for r in resp.removed:
        out.print(f"[dim]除外した文 ({r.reason}): {r.sentence}[/dim]")


@app.command()
def ask(
    question: Annotated[Optional[str], typer.Argument(help="質問")] = None,
    mode: Annotated[str, typer.Option(help="answer | clauses")] = "answer",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    questions: Annotated[Optional[Path], typer.Option(help="JSONL of {id, question} for batch mode.")] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Batch output JSONL.")] = None,
    data_dir: DataDir = None,
) -> None:
    """A short Japanese answer with verified citations (or ranked clauses only with --mode clauses)."""
    from service.guard import check_question

    if mode not in ("answer", "clauses"):
        raise typer.BadParameter("--mode は answer か clauses です。")
    settings = _settings(data_dir)
    try:
        state = _app_state(settings, load_llm=mode == "answer")
        answerer = state.answerer()
        guard = state.guard

        def one(q: str):
            return answerer.ask(check_question(guard, q).text, mode=mode)

        if questions:
            if not out_path:
                raise typer.BadParameter("--out is required with --questions")
            from service.batch import run_batch

            n = run_batch(questions, out_path, lambda q: one(q).model_dump(mode="json", by_alias=True))
            console.print(f"{n} 件を {out_path} に書き出しました。")
            return
        if question is None:
            raise typer.BadParameter("質問を指定してください（または --questions）。")
        resp = one(question)
    except GuideQAError as exc:
        _fail(exc)
    if as_json:
        out.print(json.dumps(resp.model_dump(mode="json", by_alias=True), ensure_ascii=False, indent=2))
    else:
        _print_answer(resp)


# ----------------------------------------------------------------------------- check
@app.command()
def check(
    question: Annotated[Optional[str], typer.Argument(help="例: 入札予定価格をネットの生成AIに入れていい？")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    list_table: Annotated[bool, typer.Option("--list", help="Show the confidentiality class table.")] = False,
    data_dir: DataDir = None,
) -> None:
    """「この情報を、このサービスに入れていい？」 as a cited verdict (no LLM)."""
    from service.guard import check_question

    settings = _settings(data_dir)
    try:
        state = _app_state(settings, load_llm=False)
        engine = state.check_engine
        if list_table:
            rows = engine.table()
            if as_json:
                out.print(json.dumps([r.model_dump() for r in rows], ensure_ascii=False, indent=2))
                return
            table = Table(title="地方公共団体が取り扱う情報の機密性の分類（総務省 参考資料11）")
            for col in ("分類", "国", "情報の例", "パブリッククラウドの範囲"):
                table.add_column(col, overflow="fold")
            for r in rows:
                table.add_row(r.label, r.national_class, "、".join(r.examples), r.cloud_rule)
            out.print(table)
            return
        if not question:
            raise typer.BadParameter("質問を指定してください（または --list）。")
        result = engine.check(check_question(state.guard, question).text)
    except GuideQAError as exc:
        _fail(exc)
    if as_json:
        out.print(json.dumps(result.model_dump(mode="json", by_alias=True), ensure_ascii=False, indent=2))
        return
    out.print(f"[bold]判定: {result.verdict}[/bold]  （分類: {('機密性' + result.class_) if result.class_ else '特定できません'}）")
    for r in result.reasons:
        out.print(f"理由: {r}")
    for c in result.conditions:
        out.print(f"条件: {c}")
    for m in result.missing:
        out.print(f"[yellow]不足している情報: {m}[/yellow]")
    for case in result.cases:
        out.print(f"  場合分け — {case.service}: {case.verdict}")
    for c in result.citations:
        out.print(f"[{c.n}] {c.doc_title} > {' > '.join(c.section_path[1:])}")
        out.print(f"    「{c.quote}」")


# ----------------------------------------------------------------------------- eval
@app.command("eval")
def eval_cmd(
    mode: Annotated[str, typer.Option(help="clauses: retrieval, abstention, check set (no LLM); answer: also generate answers.")] = "clauses",
    subset: Annotated[Optional[int], typer.Option(help="Answer only N items (stratified by type) in answer mode.")] = None,
    judge: Annotated[str, typer.Option(help="ragas judge: none | local | openai (answer mode only).")] = "none",
    judge_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible judge endpoint for --judge openai.")] = None,
    judge_model: Annotated[Optional[str], typer.Option(help="Judge model name for --judge openai.")] = None,
    judge_samples: Annotated[int, typer.Option(help="How many answered items ragas scores (minutes each with the local judge).")] = 5,
    compare: Annotated[Optional[Path], typer.Option(help="Previous report dir or summary.json (default: eval/reports/baseline).")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Finish an interrupted run in this report dir.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Report directory (default eval/reports/<timestamp>).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Run the curated dev and check sets, write a report, and fail on a regression."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from eval.run import EvalOptions, run_eval

    if mode not in ("clauses", "answer") or judge not in ("none", "local", "openai"):
        raise typer.BadParameter("--mode は clauses|answer、--judge は none|local|openai です。")
    settings = _settings(data_dir)
    opts = EvalOptions(mode=mode, subset=subset, judge=judge, judge_url=judge_url, judge_model=judge_model, judge_samples=judge_samples, compare_to=compare, resume=resume, out_dir=out_dir)
    command = "guideqa eval " + " ".join(sys.argv[2:])
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task("評価中", total=None)
            outcome = run_eval(settings, opts, command=command, on_item=lambda item_id, n, total: bar.update(task, completed=n, total=total, description=f"評価中 {item_id}"))
    except GuideQAError as exc:
        _fail(exc, 2)
    s = outcome.summary
    r = s["retrieval"]
    out.print(f"report: {outcome.out_dir / 'report.md'}")
    out.print(f"retrieval hit@5 {r['hit@5']} · MRR@10 {r['mrr@10']} · recall@10 {r['recall@10']} · evidence@2000 {r['evidence_recall@2000']}")
    if "check" in s:
        c = s["check"]
        out.print(f"check class {c['class_accuracy']} · verdict {c['verdict_accuracy']} · unsafe {c['unsafe']}")
    if "answer" in s:
        a = s["answer"]
        out.print(f"answers correct {a['correct_rate']} · invented citations {a['invented_citations']} · TTFT p50 {a['ttft_ms_p50']} ms")
    if outcome.regressed:
        for c in outcome.regressed:
            console.print(f"[red]regression[/red] {c['metric']}: {c['previous']} → {c['current']} (tolerance {c['tolerance']})")
        raise typer.Exit(1)

# ----------------------------------------------------------------------------- serve
@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default 8000).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Serve the API, the widget (/widget.js) and the demo page (/) with uvicorn."""
    import uvicorn

    from service.main import create_app

    settings = _settings(data_dir)
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_level="info",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
