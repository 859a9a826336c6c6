"""The evaluation as CI runs it: the full dev and check sets in clauses mode, gated against the baseline,
and the failure-analysis notebook executed on the fresh report."""

from __future__ import annotations

import json
import os

import nbformat
import pytest
from nbclient import NotebookClient

from eval.report import compare, load_tolerances
from eval.run import BASELINE_DIR, EvalOptions, run_eval
from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def outcome(settings, built_index, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return run_eval(settings.model_copy(update={"llm_backend": "none"}), EvalOptions(out_dir=out), command="pytest")


def test_report_files_are_written(outcome):
    for name in ("report.md", "summary.json", "results.jsonl", "score_distributions.png", "by_type_vs_previous.png"):
        assert (outcome.out_dir / name).is_file(), name
    rows = (outcome.out_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) == outcome.summary["meta"]["n_dev"] + outcome.summary["meta"]["n_check"]


def test_no_deterministic_metric_regresses_against_the_baseline(outcome):
    baseline = BASELINE_DIR / "summary.json"
    if not baseline.is_file():
        pytest.skip("no committed baseline yet")
    comparison = compare(outcome.summary, json.loads(baseline.read_text(encoding="utf-8")), load_tolerances())
    assert comparison, "the baseline shares no gated metric with this run"
    assert not [c for c in comparison if c["regressed"]], [c for c in comparison if c["regressed"]]


def test_no_unsafe_confidentiality_verdict(outcome):
    assert outcome.summary["check"]["unsafe"] == 0


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
    assert "unsafe" in text
