"""Batch mode: JSON Lines in, one result per line out, bad lines reported in place."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from guideqa.cli import app
from ingest.cleaning import nfkc

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


def test_cli_commands_take_the_api_request_path(settings, built_index):
    """search, ask and check run the same guard, limits and audit as the API."""
    from service.audit import AuditLog

    data = ["--data-dir", str(settings.data_dir)]
    blocked = runner.invoke(app, ["search", "マイナンバー 1234 5678 9018 の扱いは？", *data])
    assert blocked.exit_code == 1 and "pii_detected" in blocked.output and "9018" not in blocked.output
    too_long = runner.invoke(app, ["check", "㍿" * 700, *data])
    assert too_long.exit_code == 1 and "query_too_long" in too_long.output
    masked = runner.invoke(app, ["search", "０３－１２３４－５６７８の職員にCAIOの役割を説明したい", "--json", *data])
    assert masked.exit_code == 0, masked.output
    assert json.loads(masked.stdout)["query"].startswith("〔電話番号〕")
    asked = runner.invoke(app, ["ask", "オプトアウトとは？", "--mode", "clauses", "--json", *data])
    assert asked.exit_code == 0, asked.output
    log = AuditLog(settings.audit_url)
    try:
        rows = {r["key_id"]: r for r in log.rows() if str(r["key_id"]).startswith("cli:")}
        answer = [r for r in log.rows(key_id="cli:ask") if r["id"] == json.loads(asked.stdout)["answer_id"]]
    finally:
        log.close()
    assert {"cli:search", "cli:check", "cli:ask"} <= set(rows) and len(answer) == 1
    # The text a row keeps (not its IDs, timestamps and timings, where these digits can turn up by chance).
    kept = [str(r.get(f) or "") for r in rows.values() for f in ("question_masked", "answer", "feedback_comment", "error_code")]
    assert not any("9018" in text or "5678" in nfkc(text) for text in kept)
