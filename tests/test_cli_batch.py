"""Batch mode: JSON Lines in, one result per line out, bad lines reported in place."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from guideqa.cli import app

runner = CliRunner()


def test_search_batch_writes_one_line_per_question(settings, built_index, tmp_path):
    questions = tmp_path / "in.jsonl"
    questions.write_text('{"id": "q1", "question": "オプトアウトとは？"}\nnot json\n{"id": "q3"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["search", "--questions", str(questions), "--out", str(out), "--top-k", "3", "--data-dir", str(settings.data_dir)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["q1", 2, "q3"]
    assert len(rows[0]["results"]) == 3 and set(rows[0]["results"][0]) == {"id", "text", "score", "doc_title", "section_path", "kind"}
    assert rows[1]["error"]["code"] == "invalid_json" and rows[2]["error"]["code"] == "query_invalid"


def test_ask_batch_in_clauses_mode(settings, built_index, tmp_path):
    questions = tmp_path / "in.jsonl"
    questions.write_text('{"id": 1, "question": "CAIOの役割は？"}\n{"id": 2, "question": ""}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["ask", "--mode", "clauses", "--questions", str(questions), "--out", str(out), "--data-dir", str(settings.data_dir)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows[0]["id"] == 1 and rows[0]["mode"] == "clauses" and rows[0]["citations"]
    assert rows[1]["error"]["code"] == "query_empty"
