"""The failure-analysis notebook runs top to bottom on a real report."""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

from eval.run import EvalOptions, run_eval
from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def report(settings, built_index, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    run_eval(settings.model_copy(update={"llm_backend": "none"}), EvalOptions(out_dir=out, compare_to=out / "none"), command="pytest")
    return out


def test_notebook_executes_against_a_report(report):
    nb = nbformat.read(PROJECT_ROOT / "notebooks" / "failure_analysis.ipynb", as_version=4)
    os.environ["GUIDEQA_REPORT"] = str(report)
    os.environ["GUIDEQA_PREVIOUS"] = str(report)
    os.environ["GUIDEQA_ROOT"] = str(PROJECT_ROOT)
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(PROJECT_ROOT / "notebooks")}}).execute()
    finally:
        for k in ("GUIDEQA_REPORT", "GUIDEQA_PREVIOUS", "GUIDEQA_ROOT"):
            os.environ.pop(k, None)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "unsafe" in text
