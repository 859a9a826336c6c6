"""``guideqa`` command line: the composition root for scripts.

This module (with ``service.main``) is where settings are read from the
environment and stages are wired together; every stage below it takes its
values as arguments. Errors from the project's tree are turned into a one-line
Japanese message and a non-zero exit code here, never a stack trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
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
    console.print(f"[red]エラー[/red] ({exc.code}): {exc.message}", soft_wrap=True)
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
    add: Annotated[Optional[Path], typer.Option("--add", help="Copy this document into <corpus>/local/, list it in the manifest and rebuild.")] = None,
    remove: Annotated[Optional[str], typer.Option("--remove", help="Take this doc ID out of the manifest (and its file, if under local/) and rebuild.")] = None,
    title: Annotated[Optional[str], typer.Option(help="With --add: the document's title.")] = None,
    issuer: Annotated[Optional[str], typer.Option(help="With --add: who issued it, e.g. 〇〇市総務課.")] = None,
    authority: Annotated[Optional[str], typer.Option(help="With --add: binding | guidance | reference.")] = None,
    issuer_kind: Annotated[Optional[str], typer.Option("--issuer-kind", help="With --add: national | prefecture | municipality | other.")] = None,
    date: Annotated[Optional[str], typer.Option(help="With --add: date of issue.")] = None,
    effective_date: Annotated[Optional[str], typer.Option("--effective-date", help="With --add: date it takes effect.")] = None,
    access: Annotated[Optional[str], typer.Option(help="With --add: access label (default public).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Read the corpus into clause-level units and build the search index.

    --add FILE --title … --issuer … --authority binding adds an office's own rule or guideline; --remove DOC_ID takes one out. Both rebuild the index, embedding only text the embedding cache has not seen.
    """
    from guideqa.errors import IngestError

    settings = _settings(data_dir)
    corpus_dir = corpus or settings.corpus_dir
    entry = {"title": title, "issuer": issuer, "authority": authority, "issuer_kind": issuer_kind, "date": date, "effective_date": effective_date, "access": access}
    given = [f"--{k.replace('_', '-')}" for k, v in entry.items() if v is not None]
    problem = None
    if add is not None and remove is not None:
        problem = "--add と --remove は同時に指定できません。"
    elif (add is not None or remove is not None) and dry_run:
        problem = "--add / --remove は --dry-run と同時に指定できません。"
    elif add is not None and not (title and issuer and authority):
        problem = "--add には --title、--issuer、--authority（binding / guidance / reference）を指定してください。"
    elif add is None and given:
        problem = f"{'、'.join(given)} は --add と一緒に指定してください。"
    if problem:
        _fail(IngestError(problem, code="invalid_arguments"), 2)
    if add is not None or remove is not None:
        _edit_corpus(settings, corpus_dir, manifest, add=add, remove=remove, entry={k: v or "" for k, v in entry.items()})
        return
    try:
        result = _read_corpus(corpus_dir, manifest)
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
    try:
        with _ingest_lock(settings):
            report = _build_index(result, settings, force=force)
    except GuideQAError as exc:
        _fail(exc, 2)
    _print_build(report)


def _read_corpus(corpus_dir: Path, manifest: Optional[Path]):
    """Ingest the corpus with a progress line; errors propagate."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ingest.pipeline import ingest_corpus

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("文書を読み込み中", total=None)
        return ingest_corpus(corpus_dir, manifest, on_document=lambda f: bar.update(task, description=f"読み込み中: {f}"))


@contextmanager
def _ingest_lock(settings: Settings):
    """One writer of the corpus and the index at a time (``<data_dir>/ingest.lock``)."""
    import fcntl

    from guideqa.errors import IngestError

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.data_dir / "ingest.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IngestError("別の取り込み（guideqa ingest）が実行中です。終わってから再実行してください。", code="ingest_busy") from None
        yield


def _edit_corpus(settings: Settings, corpus_dir: Path, manifest: Optional[Path], *, add: Optional[Path], remove: Optional[str], entry: dict[str, str]) -> None:
    """``--add`` / ``--remove``: change the manifest, re-ingest and rebuild, or change nothing.

    A document that yields no unit, or a failed rebuild, puts the manifest (and the
    corpus folder) back as it was.
    """
    from guideqa.errors import DocumentLoadError
    from ingest.manifest import add_document, remove_document

    try:
        with _ingest_lock(settings):
            if add is not None:
                change = add_document(corpus_dir, add, entry, manifest_path=manifest)
            else:
                change = remove_document(corpus_dir, str(remove), manifest_path=manifest)
            try:
                result = _read_corpus(corpus_dir, manifest)
                report = next((r for r in result.reports if r.doc_id == change.meta.doc_id), None)
                if add is not None and (report is None or report.error):
                    raise DocumentLoadError(report.error if report and report.error else f"{add.name}: 取り込めませんでした。")
                build = _build_index(result, settings, force=False)
            except BaseException:
                change.rollback()
                raise
            change.commit()
    except GuideQAError as exc:
        _fail(exc, 2)
    meta = change.meta
    if add is not None:
        details = [meta.file, f"{report.units} 単位"]
        if report.structure == "legal":
            details.append(" ".join(["例規として読みました", *(x for x in (report.number, report.enacted) if x)]))
        out.print(f"追加しました: {meta.doc_id}（{'、'.join(details)}）")
    else:
        note = "、ファイルも削除" if change.obsolete is not None else ""
        out.print(f"削除しました: {meta.doc_id}（{meta.file}{note}）")
    _print_build(build)


def _unit_json(u) -> dict:
    return {
        "id": u.id,
        "doc_id": u.doc_id,
        "doc_title": u.doc_title,
        "section_path": u.section_path,
        "label": u.label,
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
    for rep in result.reports:
        if rep.structure == "legal":
            out.print(f"例規として読みました: {rep.file} — {rep.legal_title or rep.title} {rep.number} {rep.enacted}".rstrip())
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


def _build_index(result, settings: Settings, *, force: bool):
    """Embed (cache first) and write a new index version; errors propagate.

    An embedded (Edge) build also leaves a snapshot of its units next to its shard, and
    says what changed since the version it replaces and what depends on that (the
    curated answers, confidentiality rules and evaluation items that cite a changed unit).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from index.build import build_index
    from index.embeddings import get_embedding_model
    from index.tokenizer import get_tokenizer
    from index.versions import current_meta

    embed = get_embedding_model(settings)
    previous = current_meta(settings.index_root) if settings.backend_name == "qdrant-edge" else None
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
    if settings.backend_name == "qdrant-edge" and not report.skipped:
        _record_changes(settings, previous.version if previous else None, report.meta.version, result.units)
    return report


def _record_changes(settings: Settings, previous: Optional[str], version: str, units) -> None:
    """Snapshot this version's units, and print what changed since ``previous`` and what depends on it."""
    try:
        from eval.diff import UNITS_SNAPSHOT, diff_units, find_dependents, read_units_file, write_units_snapshot
        from eval.run import dependent_sources
    except ImportError:  # the API image has no eval extra: nothing to compare with
        return
    versions = settings.index_root / "versions"
    write_units_snapshot(versions / version, units)
    old = versions / previous / UNITS_SNAPSHOT if previous else None
    if old is None or not old.is_file():
        return
    diff = diff_units(read_units_file(old), [u.model_dump(mode="json") for u in units], old_label=previous, new_label=version)
    counts = {label: len(diff.of_kind(kind)) for label, kind in (("追加", "added"), ("削除", "removed"), ("変更", "changed"), ("移動", "moved"))}
    if not any(counts.values()):
        return
    out.print("前のバージョンからの変更: " + " / ".join(f"{k} {v}" for k, v in counts.items()) + f"（詳細: guideqa diff {previous} {version}）")
    item_sets, files = dependent_sources()
    for dep in find_dependents(diff, item_sets=item_sets, data_files=files)[:20]:
        out.print(f"  [yellow]要確認[/yellow] {dep.source}: {dep.item}（{dep.unit_id} {dep.change}） {dep.detail}")


def _print_build(report) -> None:
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
# The CLI asks as a local user of these access groups, through the API's request path
# (service.request): the same guard, limits, access rule and audit log.
Groups = Annotated[Optional[list[str]], typer.Option("--group", "-g", help="Access group to read as (repeatable; default: public).")]


@contextmanager
def _opened_state(settings: Settings, *, load_llm: bool) -> Iterator:
    """The service's state for one command, closed after it (the shard and the audit queue released)."""
    from service.state import build_state

    state = build_state(settings, load_llm=load_llm)
    try:
        yield state
    finally:
        state.close()


def _cli_caller(command: str, groups: Optional[list[str]]):
    from service.auth import local_caller

    return local_caller(f"cli:{command}", tuple(groups or ("public",)))


@app.command()
def search(
    query: Annotated[Optional[str], typer.Argument(help="質問")] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=50)] = 5,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    questions: Annotated[Optional[Path], typer.Option(help="JSONL of {id, question} for batch mode.")] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Batch output JSONL.")] = None,
    groups: Groups = None,
    data_dir: DataDir = None,
) -> None:
    """Ranked clauses for a question (no LLM). Batch mode with --questions/--out."""
    from service.batch import run_batch
    from service.request import run_search

    settings = _settings(data_dir)
    caller = _cli_caller("search", groups)
    try:
        with _opened_state(settings, load_llm=False) as state:
            if questions:
                if not out_path:
                    raise typer.BadParameter("--out is required with --questions")

                def row(q: str) -> dict:
                    res = run_search(state, caller, q, top_k=top_k, endpoint="guideqa search")
                    return {"results": [{"id": r.id, "text": r.text, "score": r.score, "doc_title": r.doc_title, "section_path": r.section_path, "kind": r.kind} for r in res.results]}

                n = run_batch(questions, out_path, row)
                console.print(f"{n} 件を {out_path} に書き出しました。")
                return
            if query is None:
                raise typer.BadParameter("質問を指定してください（または --questions）。")
            result = run_search(state, caller, query, top_k=top_k, endpoint="guideqa search")
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
def _print_answer(resp) -> None:
    if resp.curated is not None:
        cur = resp.curated
        out.print(f"[bold]登録済みの回答[/bold] [dim]（{cur.author}、{cur.date}）[/dim]")
        out.print(f"  {cur.answer}")
        for c in cur.citations:
            out.print(f"  [dim][{c.n}] {c.doc_title} {c.label}[/dim]")
        out.print("")
    out.print(
        "[bold]回答[/bold] [dim](引用で構成。「AI生成」の一文を含みます — 必ず引用元の原文を確認してください)[/dim]"
        if resp.ai_generated else "[bold]回答[/bold] [dim](文書の該当箇所の引用で構成)[/dim]"
    )
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
    if resp.similar:
        out.print("よく似た質問: " + " / ".join(s.question for s in resp.similar))


@app.command()
def ask(
    question: Annotated[Optional[str], typer.Argument(help="質問")] = None,
    mode: Annotated[str, typer.Option(help="answer | clauses")] = "answer",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    questions: Annotated[Optional[Path], typer.Option(help="JSONL of {id, question} for batch mode.")] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Batch output JSONL.")] = None,
    groups: Groups = None,
    data_dir: DataDir = None,
) -> None:
    """A short Japanese answer with verified citations (or ranked clauses only with --mode clauses)."""
    from service.request import run_ask

    if mode not in ("answer", "clauses"):
        raise typer.BadParameter("--mode は answer か clauses です。")
    settings = _settings(data_dir)
    caller = _cli_caller("ask", groups)
    try:
        with _opened_state(settings, load_llm=mode == "answer") as state:

            def one(q: str):
                return run_ask(state, caller, q, mode=mode, endpoint="guideqa ask")

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
    groups: Groups = None,
    data_dir: DataDir = None,
) -> None:
    """「この情報を、このサービスに入れていい？」 as a cited verdict (no LLM)."""
    from service.request import check_table, run_check

    settings = _settings(data_dir)
    caller = _cli_caller("check", groups)
    try:
        with _opened_state(settings, load_llm=False) as state:
            if list_table:
                rows = check_table(state, caller)
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
            result = run_check(state, caller, question=question, endpoint="guideqa check")
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


# ----------------------------------------------------------------------------- compare
@app.command()
def compare(
    topic: Annotated[str, typer.Argument(help="比べるテーマ 例: ログの保存")],
    docs: Annotated[Optional[list[str]], typer.Option("--doc", help="Document ID to compare (repeatable; default: every document).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    groups: Groups = None,
    data_dir: DataDir = None,
) -> None:
    """A topic side by side across the documents (the office's own rules first), no LLM."""
    from service.request import run_compare

    settings = _settings(data_dir)
    caller = _cli_caller("compare", groups)
    try:
        with _opened_state(settings, load_llm=False) as state:
            result = run_compare(state, caller, topic, doc_ids=docs or None, endpoint="guideqa compare")
    except GuideQAError as exc:
        _fail(exc)
    if as_json:
        out.print(json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    pieces = {p.unit_id: p for part in result.parts for p in part.pieces}
    for col in result.comparison:
        out.print(f"[bold]■ {col.doc_title}[/bold] [dim]（{col.issuer} / {col.authority}）[/dim]")
        if not col.covered:
            out.print("  該当する記載が見つかりませんでした。")
            continue
        for c in col.clauses:
            shown = pieces[c.unit_id].text if c.unit_id in pieces else c.quote
            out.print(f"  「{shown}」 [{c.n}] [dim]{c.label}[/dim]")


# ----------------------------------------------------------------------------- eval
@app.command("eval")
def eval_cmd(
    mode: Annotated[str, typer.Option(help="answer: retrieval over all items, answers for a stratified subset, check set, faithfulness; clauses: no LLM (CI).")] = "answer",
    subset: Annotated[int, typer.Option(min=1, help="How many dev items get an answer (a fixed choice covering every shape and type, from both halves).")] = 20,
    full: Annotated[bool, typer.Option("--full", help="Answer every dev item (about 10 s each on 2 cores).")] = False,
    judge: Annotated[str, typer.Option(help="ragas judge: none | local (1.5B, advisory) | openai (--judge-url, --judge-model).")] = "none",
    judge_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible judge endpoint for --judge openai, e.g. https://host/v1.")] = None,
    judge_model: Annotated[Optional[str], typer.Option(help="Judge model name for --judge openai.")] = None,
    judge_samples: Annotated[Optional[int], typer.Option(min=1, help="How many answered items ragas scores (default: 5 with the local judge, all with openai).")] = None,
    compare: Annotated[Optional[Path], typer.Option(help="Previous report dir or summary.json (default: eval/reports/baseline).")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Finish an interrupted run in this report dir (or add ragas to it).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Report directory (default eval/reports/<timestamp>).")] = None,
    devset: Annotated[Optional[Path], typer.Option(help="Dev set JSON Lines (default eval/data/devset.jsonl).")] = None,
    checkset: Annotated[Optional[Path], typer.Option(help="Check set JSON Lines (default eval/data/checkset.jsonl).")] = None,
    office: Annotated[bool, typer.Option("--office/--no-office", help="Office regulations: each office's questions on its own deployment (index built under <data-dir>/eval/offices).")] = True,
    curated: Annotated[bool, typer.Option("--curated/--no-curated", help="Curated answers: paraphrases that must match their registered answer, unrelated questions that must not (eval/data/curated).")] = True,
    comparisons: Annotated[bool, typer.Option("--comparisons/--no-comparisons", help="Comparison questions (several documents named), composed without the LLM.")] = True,
    data_dir: DataDir = None,
) -> None:
    """Evaluate: retrieval, answers (key facts, faithfulness), check set, office regulations, comparisons; write a report, fail on a regression.

    The judge's API key, if it needs one, is read from GUIDEQA_JUDGE_API_KEY.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from eval.run import EvalOptions, run_eval

    if mode not in ("clauses", "answer") or judge not in ("none", "local", "openai"):
        raise typer.BadParameter("--mode は clauses|answer、--judge は none|local|openai です。")
    settings = _settings(data_dir)
    opts = EvalOptions(
        mode=mode, subset=None if full else subset, judge=judge, judge_url=judge_url, judge_model=judge_model,
        judge_api_key=os.environ.get("GUIDEQA_JUDGE_API_KEY"), judge_samples=judge_samples,
        compare_to=compare, resume=resume, out_dir=out_dir, office=office, compare=comparisons, curated=curated,
        **{k: v for k, v in (("devset", devset), ("checkset", checkset)) if v is not None},
    )
    command = "guideqa eval " + " ".join(sys.argv[2:])
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task("評価中", total=None)
            outcome = run_eval(settings, opts, command=command, on_item=lambda item_id, n, total: bar.update(task, completed=n, total=total, description=f"評価中 {item_id}"))
    except GuideQAError as exc:
        _fail(exc, 2)
    for note in outcome.notes:
        console.print(f"[yellow]注意[/yellow] {note}")
    s = outcome.summary
    r = s["retrieval"]
    out.print(f"report: {outcome.out_dir / 'report.md'}")
    out.print(f"retrieval hit@5 {r['hit@5']} · MRR@10 {r['mrr@10']} · recall@10 {r['recall@10']} · evidence@2000 {r['evidence_recall@2000']}")
    if "check" in s:
        c = s["check"]
        out.print(f"check class {c['class_accuracy']} · verdict {c['verdict_accuracy']} · unsafe {c['unsafe']}")
    if "answer" in s:
        a = s["answer"]
        ttft = f" · TTFT p50 {a['ttft_ms_p50']} ms" if a["ttft_ms_p50"] else ""
        out.print(f"answers ({a['n']}) correct {a['correct_rate']} · partial {a['partial_rate']} · wrong {a['wrong_rate']} · invented citations {a['invented_citations']}{ttft}")
    if "faithfulness" in s:
        f = s["faithfulness"]
        written = f" · written by the system {f['written_supported_share']}" if f["written_supported_share"] is not None else ""
        out.print(f"faithfulness (gates): statements supported {f['supported_share']}{written} · unsupported {f['unsupported_statements']}")
    if "office" in s:
        o = s["office"]["all"]
        out.print(
            f"offices ({o['n']}) correct {o['correct_rate']} · right 条・項 {o['labels_right']} · local rule first {o['local_first']}"
            f" · unanswerable declined {o['unanswerable_declined']} · written supported {o['written_supported_share']}"
        )
    if "compare" in s:
        c = s["compare"]
        out.print(
            f"comparisons ({c['n']}) detected {c['detected']} · right clause per document {c['right_clause']} · all documents right {c['all_right']}"
            f" · says-nothing honest {c['says_nothing_honest']} · p95 {c['latency_ms_p95']} ms"
        )
    metrics = (s.get("ragas") or {}).get("metrics") or {}
    if metrics:
        out.print("ragas (advisory): " + " · ".join(f"{k} {v.get('mean_failures_as_zero')}" for k, v in metrics.items()))
    for g in s.get("split_gaps", []):
        if g["flagged"]:
            console.print(f"[yellow]tune/holdout gap[/yellow] {g['metric']}: tune {g['tune']} / holdout {g['holdout']} (tolerance {g['tolerance']})")
    if outcome.regressed:
        for c in outcome.regressed:
            console.print(f"[red]regression[/red] {c['metric']}: {c['previous']} → {c['current']} (tolerance {c['tolerance']})")
        raise typer.Exit(1)


# ----------------------------------------------------------------------------- diff
@app.command("diff")
def diff_cmd(
    old: Annotated[str, typer.Argument(help="Old version: index version name, report dir, units JSONL or corpus dir.")],
    new: Annotated[str, typer.Argument(help="New version (same kinds; 'current' = the live index).")] = "current",
    as_json: Annotated[bool, typer.Option("--json", help="Every change and dependent as JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Units added, removed, changed and moved between two versions, and the curated items and rules that depend on them."""
    from eval.devset import DevsetError
    from eval.diff import dependents_as_dicts, diff_units, find_dependents, load_units, render_markdown
    from eval.run import dependent_sources

    settings = _settings(data_dir)
    try:
        old_label, old_units = load_units(old, index_root=settings.index_root)
        new_label, new_units = load_units(new, index_root=settings.index_root)
        result = diff_units(old_units, new_units, old_label=old_label, new_label=new_label)
        item_sets, data_files = dependent_sources()
        dependents = find_dependents(result, item_sets=item_sets, data_files=data_files)
    except GuideQAError as exc:
        _fail(exc, 2)
    except DevsetError as exc:
        console.print(f"[red]エラー[/red]: {exc}")
        raise typer.Exit(2)
    if as_json:
        out.print(json.dumps({**result.to_dict(), "dependents": dependents_as_dicts(dependents)}, ensure_ascii=False, indent=2))
        return
    for line in render_markdown(result, dependents):
        out.print(line, markup=False)


# ----------------------------------------------------------------------------- curated
curated_app = typer.Typer(no_args_is_help=True, help="Registered answers (登録済みの回答): add, list, export.")
app.add_typer(curated_app, name="curated")


def _curated_caller():
    from service.auth import Caller

    # Whoever runs this can edit the corpus folder, so the registry is theirs to change: an admin,
    # through the same path as the admin API (guard, audit log, index rebuild).
    return Caller("cli:curated", "admin", ())


def _curated_bodies(file: Optional[Path], fields: dict) -> list:
    """The items to add: those of a YAML file (one item or a list), or one item from the flags."""
    import yaml
    from pydantic import ValidationError

    from service.models import CuratedCreate

    try:
        if file is not None:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
            rows = data if isinstance(data, list) else [data]
            # The registry's own format may carry a date as a YAML date.
            return [CuratedCreate.model_validate({**r, "date": str(r["date"])} if isinstance(r, dict) and r.get("date") else r) for r in rows]
        cites = []
        for cite in fields.pop("cite") or []:
            doc_id, sep, quote = cite.partition("=")
            if not sep:
                raise typer.BadParameter(f"--cite は 文書ID=引用 の形で指定してください: {cite}")
            cites.append({"doc_id": doc_id.strip(), "quote": quote})
        return [CuratedCreate.model_validate({**{k: v for k, v in fields.items() if v is not None}, "citations": cites})]
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"{file} を読めません: {exc}") from exc
    except ValidationError as exc:
        where = "、".join(".".join(str(x) for x in e.get("loc", ())) or "(item)" for e in exc.errors()[:5])
        raise typer.BadParameter(f"登録する内容に誤りがあります（{where}）。") from exc


@curated_app.command("add")
def curated_add(
    file: Annotated[Optional[Path], typer.Option("--file", help="YAML with one item or a list, in the registry's format.")] = None,
    item_id: Annotated[Optional[str], typer.Option("--id", help="Item ID (default: a new cur-… ID).")] = None,
    question: Annotated[Optional[str], typer.Option(help="登録する質問")] = None,
    answer: Annotated[Optional[str], typer.Option(help="登録する回答（引用した箇所が述べることだけ）")] = None,
    cite: Annotated[Optional[list[str]], typer.Option("--cite", help="文書ID=引用 (repeatable, at least one).")] = None,
    author: Annotated[str, typer.Option(help="e.g. 情報政策課")] = "",
    date: Annotated[Optional[str], typer.Option(help="YYYY-MM-DD (default today).")] = None,
    group: Annotated[str, typer.Option(help="Access label of who may be shown it.")] = "public",
    draft: Annotated[bool, typer.Option("--draft", help="Keep it as a draft (never shown).")] = False,
    data_dir: DataDir = None,
) -> None:
    """Register answers (from flags or a YAML file), check their quotes against the corpus and rebuild the index."""
    from service.curated import create_curated

    if file is None and not (question and answer and cite):
        raise typer.BadParameter("--file か、--question・--answer・--cite（1つ以上）を指定してください。")
    fields = {"id": item_id, "question": question, "answer": answer, "cite": cite, "author": author, "date": date, "group": group,
              "status": "draft" if draft else "published"}
    bodies = _curated_bodies(file, fields)
    settings = _settings(data_dir)
    try:
        with _opened_state(settings, load_llm=False) as state:
            created = create_curated(state, _curated_caller(), bodies, endpoint="guideqa curated add")
    except GuideQAError as exc:
        _fail(exc, 2)
    for item in created:
        out.print(f"登録しました: {item.id}（{'下書き' if item.status == 'draft' else '公開'}、group {item.group}）{item.question}")


@curated_app.command("list")
def curated_list(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    data_dir: DataDir = None,
) -> None:
    """Every registered answer, drafts included, and whether each is shown now."""
    from service.curated import list_curated

    settings = _settings(data_dir)
    try:
        with _opened_state(settings, load_llm=False) as state:
            listed = list_curated(state, _curated_caller())
    except GuideQAError as exc:
        _fail(exc, 2)
    if as_json:
        out.print(json.dumps(listed.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    if not listed.items:
        out.print("登録済みの回答はありません。")
        return
    table = Table(title="登録済みの回答")
    for col in ("id", "状態", "group", "表示", "日付", "質問"):
        table.add_column(col, overflow="fold")
    shown = {True: "表示中", False: "表示されない", None: "不明"}
    for item in listed.items:
        status = "公開" if item.status == "published" else "下書き"
        table.add_row(item.id, status, item.group, shown[item.indexed] if item.status == "published" else "—", item.date, item.question)
    out.print(table)
    for item in listed.items:
        for problem in item.problems:
            console.print(f"[yellow]{item.id}[/yellow]: {problem}")


@curated_app.command("export")
def curated_export(
    out_path: Annotated[Optional[Path], typer.Option("--out", help="YAML file to write (default: standard output).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Write the registry as YAML (the registry's own format, drafts included)."""
    from ingest.curated import render_curated
    from service.curated import export_curated

    settings = _settings(data_dir)
    try:
        with _opened_state(settings, load_llm=False) as state:
            items = export_curated(state, _curated_caller())
    except GuideQAError as exc:
        _fail(exc, 2)
    text = render_curated(items)
    if out_path is None:
        out.print(text, end="", markup=False, highlight=False)
        return
    out_path.write_text(text, encoding="utf-8")
    console.print(f"{len(items)} 件を {out_path} に書き出しました。")


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
