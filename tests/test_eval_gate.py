"""The evaluation as CI runs it: the full dev and check sets in clauses mode, the deterministic
metrics of the holdout half gated against the baseline, and the failure-analysis notebook
executed on the fresh report. Also: bad dev data stops the run before any item runs."""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

from eval.devset import load_checkset, load_devset
from eval.diff import UNITS_SNAPSHOT, read_units_file
from eval.run import BASELINE_DIR, EvalDataInvalid, EvalOptions, run_eval
from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def outcome(settings, built_index, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    # The office section builds four more indexes (tests/test_eval_office.py runs a slice of it);
    # the comparison section needs none and takes seconds, so CI gates on it.
    return run_eval(settings.model_copy(update={"llm_backend": "none"}), EvalOptions(mode="clauses", out_dir=out, compare=True), command="pytest")


def test_report_files_are_written(outcome):
    for name in ("report.md", "summary.json", "results.jsonl", "run.json", UNITS_SNAPSHOT, "score_distributions.png", "by_type_vs_previous.png"):
        assert (outcome.out_dir / name).is_file(), name
    rows = (outcome.out_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) == outcome.summary["meta"]["n_dev"] + outcome.summary["meta"]["n_check"]
    assert len(read_units_file(outcome.out_dir / UNITS_SNAPSHOT)) > 500


def test_both_halves_are_reported_side_by_side(outcome):
    splits = outcome.summary["splits"]
    assert splits["tune"]["n"] + splits["holdout"]["n"] == outcome.summary["meta"]["n_dev"]
    for half in ("tune", "holdout"):
        assert splits[half]["retrieval"]["n"] > 30 and splits[half]["retrieval"]["hit@5"] is not None
    gaps = {g["metric"] for g in outcome.summary["split_gaps"]}
    assert "retrieval.hit@5" in gaps
    report = (outcome.out_dir / "report.md").read_text(encoding="utf-8")
    assert "## Tune vs. holdout" in report and "| retrieval hit@5 |" in report


def test_the_comparison_section_is_reported_and_the_office_section_left_out(outcome):
    cmp_ = outcome.summary["compare"]
    assert cmp_["n"] == outcome.summary["meta"]["n_compare"] > 20 and cmp_["splits"]["holdout"]["right_clause"] is not None
    assert "office" not in outcome.summary and (outcome.out_dir / "compare_results.jsonl").is_file()
    assert {g["metric"] for g in outcome.summary["split_gaps"]} >= {"compare.right_clause", "retrieval.hit@5"}
    report = (outcome.out_dir / "report.md").read_text(encoding="utf-8")
    assert "## Comparison questions" in report and "## Office regulations" not in report


def test_no_deterministic_metric_of_the_holdout_half_regresses_against_the_baseline(outcome):
    baseline = BASELINE_DIR / "summary.json"
    if not baseline.is_file():
        pytest.skip("no committed baseline yet")
    # The run compares with the baseline scored again with today's dev set (its splits).
    comparison = outcome.comparison
    gated = {c["metric"] for c in comparison}
    assert "splits.holdout.retrieval.hit@5" in gated and "check.verdict_accuracy" in gated, gated
    assert not any(m.startswith("retrieval.") for m in gated)  # the tune half never gates
    assert not [c for c in comparison if c["regressed"]], [c for c in comparison if c["regressed"]]


def test_no_unsafe_confidentiality_verdict(outcome):
    assert outcome.summary["check"]["unsafe"] == 0


def test_a_key_fact_absent_from_the_gold_units_stops_the_run_before_any_item(settings, built_index, tmp_path):
    dev = load_devset()
    doctored = [d.model_copy(update={"key_facts": [*d.key_facts, ["令和9年4月から全自治体に提供"]]}) if d.id == "d012" else d for d in dev]
    devset = tmp_path / "dev.jsonl"
    devset.write_text("\n".join(d.model_dump_json(exclude_unset=True) for d in doctored), encoding="utf-8")
    checkset = tmp_path / "check.jsonl"
    checkset.write_text("\n".join(c.model_dump_json(by_alias=True) for c in load_checkset()[:2]), encoding="utf-8")
    out = tmp_path / "report"

    with pytest.raises(EvalDataInvalid) as err:
        run_eval(settings.model_copy(update={"llm_backend": "none"}), EvalOptions(mode="clauses", devset=devset, checkset=checkset, out_dir=out), command="pytest")

    assert "d012" in err.value.message and "令和9年4月から全自治体に提供" in err.value.message
    assert not (out / "results.jsonl").exists()


def test_a_malformed_dev_file_is_a_clear_error(settings, built_index, tmp_path):
    devset = tmp_path / "dev.jsonl"
    devset.write_text('{"id": "x1", "type": "fact"}\n', encoding="utf-8")
    with pytest.raises(EvalDataInvalid, match="dev.jsonl:1"):
        run_eval(settings, EvalOptions(mode="clauses", devset=devset, out_dir=tmp_path / "r"), command="pytest")


def test_notebook_executes_against_the_report(outcome):
    nb = nbformat.read(PROJECT_ROOT / "notebooks" / "failure_analysis.ipynb", as_version=4)
    env = {"GUIDEQA_REPORT": str(outcome.out_dir), "GUIDEQA_PREVIOUS": str(outcome.out_dir), "GUIDEQA_ROOT": str(PROJECT_ROOT)}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(PROJECT_ROOT / "notebooks")}}).execute()
    finally:
        for k in env:
            os.environ.pop(k, None)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "unsafe" in text and "holdout" in text
