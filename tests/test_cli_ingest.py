"""``guideqa ingest`` as a user runs it: dry runs, bad input, exit codes."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from guideqa.cli import app
from tests.conftest import CORPUS

runner = CliRunner()


def test_dry_run_json_prints_one_object_per_unit(units):
    res = runner.invoke(app, ["ingest", "--dry-run", "--json", "--corpus", str(CORPUS)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == len(units)
    assert set(rows[0]) == {"id", "doc_id", "doc_title", "section_path", "kind", "tags", "text", "provenance"}


def test_dry_run_summary_names_every_document():
    res = runner.invoke(app, ["ingest", "--dry-run", "--corpus", str(CORPUS)])
    assert res.exit_code == 0, res.output
    assert "tokyo" in res.stdout and "duplicates merged" in res.stdout and "noise lines dropped" in res.stdout


def test_nothing_ingestible_exits_non_zero(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"")
    (tmp_path / "manifest.json").write_text(json.dumps([{"file": "a.txt", "title": "空"}]), encoding="utf-8")
    res = runner.invoke(app, ["ingest", "--dry-run", "--corpus", str(tmp_path)])
    assert res.exit_code == 2
    assert "a.txt" in res.output and "Traceback" not in res.output


def test_malformed_manifest_exits_with_a_message(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    res = runner.invoke(app, ["ingest", "--corpus", str(tmp_path), "--data-dir", str(tmp_path / "data")])
    assert res.exit_code == 2
    assert "manifest_invalid" in res.output and "Traceback" not in res.output
