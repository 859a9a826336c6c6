"""``guideqa ingest`` as a user runs it: dry runs, bad input, exit codes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from guideqa.cli import app
from tests.conftest import CORPUS, SHARED_CACHE, SHARED_MODELS

runner = CliRunner()
REIKI = Path(__file__).parent / "data" / "reiki"


def test_dry_run_json_prints_one_object_per_unit(units):
    res = runner.invoke(app, ["ingest", "--dry-run", "--json", "--corpus", str(CORPUS)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == len(units)
    assert set(rows[0]) == {"id", "doc_id", "doc_title", "section_path", "label", "kind", "tags", "text", "provenance"}


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


# ----------------------------------------------------------------------------- --add / --remove
@pytest.fixture
def office(tmp_path, monkeypatch):
    """A copy of the bundled corpus and an empty data dir; embeddings come from the shared cache."""
    from guideqa.settings import get_settings

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    monkeypatch.setenv("GUIDEQA_CACHE_DIR", str(SHARED_CACHE))
    monkeypatch.setenv("GUIDEQA_MODELS_PATH", str(SHARED_MODELS))
    monkeypatch.delenv("GUIDEQA_QDRANT_URL", raising=False)
    get_settings.cache_clear()
    yield corpus, tmp_path / "data"
    get_settings.cache_clear()


def _ingest(corpus, data, *args):
    return runner.invoke(app, ["ingest", "--corpus", str(corpus), "--data-dir", str(data), *args])


ADD = ["--add", str(REIKI / "maru_shi_kitei.txt"), "--title", "〇〇市生成AI利用規程", "--issuer", "〇〇市デジタル推進課", "--authority", "binding", "--issuer-kind", "municipality", "--effective-date", "2024-04-01"]


def test_add_then_remove_a_rule(office, units):
    from guideqa.settings import Settings
    from index.status import index_status

    corpus, data = office
    before = (corpus / "manifest.json").read_bytes()
    res = _ingest(corpus, data, *ADD)
    assert res.exit_code == 0, res.output
    assert "追加しました: local__maru_shi_kitei" in res.stdout and "訓令第3号" in res.stdout
    # only the new rule's units needed embedding: everything else came from the cache
    embedded, reused = map(int, re.search(r"埋め込み (\d+) 件（再利用 (\d+) 件）", res.stdout).groups())
    new_units = int(re.search(r"、(\d+) 単位、例規として読みました", res.stdout).group(1))
    assert reused >= len(units) and embedded <= new_units and embedded + reused == len(units) + new_units
    after = (corpus / "manifest.json").read_bytes()
    head = before.rstrip()[:-1].rstrip()  # everything up to the closing bracket
    assert after.startswith(head), "the other entries keep their bytes"
    entries = json.loads(after)
    assert entries[-1] == {
        "file": "local/maru_shi_kitei.txt", "title": "〇〇市生成AI利用規程", "issuer": "〇〇市デジタル推進課",
        "issuer_kind": "municipality", "authority": "binding", "effective_date": "2024-04-01",
    }
    assert (corpus / "local" / "maru_shi_kitei.txt").read_bytes() == (REIKI / "maru_shi_kitei.txt").read_bytes()
    status = index_status(Settings(data_dir=data, qdrant_url=None))
    assert (status["documents"], status["units"]) == (6, len(units) + new_units)

    dry = _ingest(corpus, data, "--dry-run", "--json")
    rows = [json.loads(line) for line in dry.stdout.splitlines() if line.startswith("{")]
    labels = {r["label"]: r["section_path"] for r in rows if r["doc_id"] == "local__maru_shi_kitei"}
    assert labels["第3条第2項"][1:] == ["第1章 総則", "第3条（基本原則）", "第2項"]

    res = _ingest(corpus, data, "--remove", "local__maru_shi_kitei")
    assert res.exit_code == 0, res.output
    assert "削除しました: local__maru_shi_kitei" in res.stdout
    assert (corpus / "manifest.json").read_bytes() == before
    assert not (corpus / "local" / "maru_shi_kitei.txt").exists()
    assert index_status(Settings(data_dir=data, qdrant_url=None))["documents"] == 5


def test_removing_a_bundled_document_keeps_its_file(office):
    corpus, data = office
    doc = "ai-advisory-board_ministry-genai-report_2026-03-10"
    res = _ingest(corpus, data, "--remove", doc)
    assert res.exit_code == 0, res.output
    assert (corpus / f"{doc}.md").exists()
    assert doc not in (corpus / "manifest.json").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--add", "nothere.txt", "--title", "t", "--issuer", "i", "--authority", "binding"], "追加するファイルが見つかりません"),
        ([*ADD[:-6], "--authority", "mandatory"], "authority は binding / guidance / reference のいずれかです（指定値: mandatory）"),
        (["--add", str(REIKI / "maru_shi_kitei.txt"), "--title", "t"], "--add には --title、--issuer、--authority"),
        (["--remove", "no-such-doc"], "文書 ID「no-such-doc」は manifest.json にありません"),
        (["--title", "t"], "--title は --add と一緒に指定してください"),
    ],
)
def test_add_and_remove_errors_are_one_line_and_change_nothing(office, args, needle):
    corpus, data = office
    before = (corpus / "manifest.json").read_bytes()
    res = _ingest(corpus, data, *args)
    assert res.exit_code == 2
    assert needle in res.output and "Traceback" not in res.output
    assert len([ln for ln in res.output.splitlines() if ln.strip()]) == 1
    assert (corpus / "manifest.json").read_bytes() == before
    assert not (corpus / "local").exists()


def test_adding_twice_and_adding_an_empty_document_are_refused(office, tmp_path):
    corpus, data = office
    assert _ingest(corpus, data, *ADD).exit_code == 0
    manifest = (corpus / "manifest.json").read_bytes()
    again = _ingest(corpus, data, *ADD)
    assert again.exit_code == 2 and "既に登録されています: local/maru_shi_kitei.txt" in again.output
    empty = tmp_path / "empty.md"
    empty.write_text("   \n", encoding="utf-8")
    res = _ingest(corpus, data, "--add", str(empty), "--title", "空", "--issuer", "総務課", "--authority", "guidance")
    assert res.exit_code == 2 and "empty.md" in res.output
    assert (corpus / "manifest.json").read_bytes() == manifest  # put back as it was
    assert not (corpus / "local" / "empty.md").exists()


def test_a_file_already_put_in_local_is_added_where_it_is(office):
    corpus, data = office
    (corpus / "local").mkdir()
    placed = corpus / "local" / "sankaku_cho_kisoku.md"
    shutil.copyfile(REIKI / "sankaku_cho_kisoku.md", placed)
    res = _ingest(corpus, data, "--add", str(placed), "--title", "△△町職員の生成AI利用に関する規則", "--issuer", "△△町総務課", "--authority", "binding")
    assert res.exit_code == 0, res.output
    assert "local__sankaku_cho_kisoku" in res.stdout and placed.exists()
