"""eval.diff and ``guideqa diff``: a bundled guideline revised, ingested into a new index version.

Two of the bundled documents are copied into a temporary corpus and indexed (a real Edge
shard in a temporary data dir); then the copy is edited as a yearly revision would edit
it (a date changed, a rule reworded, a paragraph inserted, a line deleted) and indexed
again. The diff must find each change, and the dependents the curated items and rules
that stand on them.
"""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from eval.devset import load_checkset, load_devset
from eval.diff import (
    UNITS_SNAPSHOT,
    DiffSourceError,
    char_diff,
    diff_units,
    find_dependents,
    load_units,
    read_units_file,
    render_markdown,
    write_units_snapshot,
)
from guideqa.settings import Settings
from tests.conftest import CORPUS, SHARED_CACHE, SHARED_MODELS

OVERVIEW = "digital-agency_genai-guideline-overview_2025-10-09.md"
MIC = "mic_local-gov-ai-wg_reference-materials_2025-07.txt"
RULES = CORPUS.parent / "service" / "data" / "check_rules.yaml"
INSERTED = "▶ 令和8年度からは、全府省庁で生成AIの利用状況を四半期ごとに報告する。"
DELETED = "※サプライチェーンリスクも考慮"  # the last line of the CAIO unit


def _corpus(root, files):
    root.mkdir(parents=True, exist_ok=True)
    manifest = [m for m in json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8")) if m["file"] in files]
    (root / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    for f in files:
        shutil.copy(CORPUS / f, root / f)
    return root


def _revise(root) -> None:
    """A yearly revision: a date, a reworded rule, an inserted paragraph, a deleted line."""
    ov = root / OVERVIEW
    text = ov.read_text(encoding="utf-8")
    assert "令和7年5月に運用開始" in text and DELETED in text
    text = text.replace("令和7年5月に運用開始", "令和7年6月に運用開始")
    text = text.replace(DELETED + "\n", "")
    anchor = "## (2) 政府における生成AIの推進・ガバナンス体制の構築\n"
    text = text.replace(anchor, anchor + "\n" + INSERTED + "\n")
    ov.write_text(text, encoding="utf-8")
    mic = root / MIC
    text = mic.read_text(encoding="utf-8")
    old = "- 約款型サービスに関し、原則として要機密情報を取り扱うことはできない。"
    assert old in text
    mic.write_text(text.replace(old, "- 約款型サービスに関し、要機密情報は許可権限者の承認を得た場合に限り取り扱うことができる。"), encoding="utf-8")


def _build(settings: Settings) -> str:
    from index.build import build_index
    from index.embeddings import get_embedding_model
    from index.tokenizer import get_tokenizer
    from ingest.pipeline import ingest_corpus

    units = ingest_corpus(settings.corpus_dir).units
    return build_index(units, settings, embed_model=get_embedding_model(settings), tokenizer=get_tokenizer()).meta.version


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """(settings, old version, new version): the same two documents before and after a revision."""
    corpus = _corpus(tmp_path_factory.mktemp("corpus"), [OVERVIEW, MIC])
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("diff-data"), corpus_dir=corpus, cache_dir=SHARED_CACHE, models_path=SHARED_MODELS,
        qdrant_url=None, qdrant_api_key=None, qdrant_local_path=None, llm_backend="none",
    )
    old = _build(settings)
    _revise(corpus)
    new = _build(settings)
    assert old != new
    return settings, old, new


@pytest.fixture(scope="module")
def diff(versions):
    settings, old, new = versions
    (old_label, old_units), (new_label, new_units) = (load_units(v, index_root=settings.index_root) for v in (old, new))
    return diff_units(old_units, new_units, old_label=old_label, new_label=new_label)


def _texts(changes, side):
    return [getattr(c, side)["text"] for c in changes]


def test_each_edit_is_found_and_nothing_else(diff):
    changed = {c.text_diff: c for c in diff.of_kind("changed")}
    date = next(c for d, c in changed.items() if "令和7年[-5-]{+6+}月に運用開始" in d)
    rule = next(c for d, c in changed.items() if "{+は許可権限者の承認+}" in d)
    trimmed = next(c for d, c in changed.items() if f"[-{DELETED}-]" in d.replace("[- ", "[-"))
    assert date.old_id == date.new_id and rule.old_id == rule.new_id
    # The deleted line closed a unit that stands after the inserted paragraph: edited, and under a new ID.
    assert trimmed.old_id != trimmed.new_id and trimmed.similarity > 0.6
    assert len(changed) == 3
    # The same date stands in the MIC copy too, which was left as it was.
    assert sum("運用開始" in d for d in changed) == 1
    assert [INSERTED] == _texts(diff.of_kind("added"), "new")
    assert diff.of_kind("removed") == []
    assert diff.n_new == diff.n_old + 1


def test_units_shifted_by_the_inserted_paragraph_are_moved_not_removed_and_added(diff):
    moved = diff.of_kind("moved")
    assert moved, "the inserted paragraph shifts its section's ordinals, so later IDs change"
    for c in moved:
        assert c.old_id != c.new_id and c.old["text"] == c.new["text"]


def test_dependents_name_the_items_and_rules_on_changed_units(diff):
    dev, checks = load_devset(), load_checkset()
    dependents = find_dependents(diff, item_sets={"dev set": dev, "check set": checks}, data_files=[RULES])
    by_item = {(d.source, d.item.split(" ")[0]): d for d in dependents}

    d006 = by_item[("dev set", "d006")]  # 「国の生成AIガイドラインって、いつから運用してるんだっけ？」
    assert d006.change == "changed" and "evidence「令和7年5月に運用開始」" in d006.detail and "key fact「令和7年5月」" in d006.detail
    rule = by_item[("check_rules.yaml", "yakkan")]
    assert rule.change == "changed" and "quote「約款型サービスに関し" in rule.detail
    # The check items citing the reworded rule's unit are flagged too.
    assert any(d.source == "check set" and d.unit_id == rule.unit_id for d in dependents)
    # Nothing that cites only unchanged units is listed.
    affected = diff.affected_old_ids
    assert all(d.unit_id in affected for d in dependents)


def test_curated_data_that_quotes_a_changed_unit_is_flagged_and_a_moved_one_is_not(diff, tmp_path):
    moved = diff.of_kind("moved")[0].old["text"]
    curated = tmp_path / "curated.yaml"
    curated.write_text(
        "- id: cur-x\n  question: 約款型のサービスで要機密情報を扱える？\n  citations:\n"
        "    - doc_id: mic_local-gov-ai-wg_reference-materials_2025-07\n      quote: 原則として要機密情報を取り扱うことはできない\n"
        f"- id: cur-y\n  question: 動いただけの条文\n  citations:\n    - quote: {json.dumps(moved, ensure_ascii=False)}\n"
        "- id: cur-z\n  question: 別の文書を名指しした引用\n  citations:\n"
        "    - doc_id: tokyo_ai-guideline_2026-03-30\n      quote: 原則として要機密情報を取り扱うことはできない\n",
        encoding="utf-8",
    )
    dependents = find_dependents(diff, item_sets={}, data_files=[curated])

    assert [d.item.split(" ")[0] for d in dependents] == ["cur-x"]
    assert dependents[0].change == "changed" and "quote「原則として要機密情報を取り扱うことはできない」が新しい本文にありません" in dependents[0].detail


def test_every_curated_source_of_the_project_is_scanned():
    from eval.run import dependent_sources

    items, files = dependent_sources()
    assert {"dev set", "check set"} <= set(items)
    names = {p.name for p in files}
    assert "check_rules.yaml" in names
    assert "devset.jsonl" not in names and "checkset.jsonl" not in names


def test_a_snapshot_gives_the_same_diff_as_the_shard(versions, diff, tmp_path):
    settings, old, new = versions
    for v in (old, new):
        vdir = settings.index_root / "versions" / v
        write_units_snapshot(vdir, load_units(v, index_root=settings.index_root)[1])
        assert (vdir / UNITS_SNAPSHOT).is_file()
    again = diff_units(load_units(old, index_root=settings.index_root)[1], load_units("current", index_root=settings.index_root)[1])
    assert again.counts() == diff.counts()
    assert sorted((c.kind, c.old_id, c.new_id) for c in again.changes) == sorted((c.kind, c.old_id, c.new_id) for c in diff.changes)


def test_the_command_prints_the_changes_and_what_depends_on_them(versions):
    from guideqa.cli import app

    settings, old, new = versions
    runner = CliRunner()
    result = runner.invoke(app, ["diff", old, new, "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    assert "令和7年[-5-]{+6+}月に運用開始" in result.output
    assert "| dev set | `d006` |" in result.output and "check_rules.yaml" in result.output

    as_json = runner.invoke(app, ["diff", old, "current", "--data-dir", str(settings.data_dir), "--json"])
    data = json.loads(as_json.output)
    assert data["counts"] == {"added": 1, "removed": 0, "changed": 3, "moved": 1}
    assert any(d["item"] == "d006" for d in data["dependents"])


def test_an_unknown_version_is_a_clear_error(versions):
    from guideqa.cli import app

    settings, old, _ = versions
    with pytest.raises(DiffSourceError, match=old):  # the message lists the versions there are
        load_units("v19990101T000000-000000-deadbeef", index_root=settings.index_root)
    result = CliRunner().invoke(app, ["diff", "v19990101T000000-000000-deadbeef", "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 2 and "diff_source_invalid" in result.output and "Traceback" not in result.output


def test_a_malformed_units_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "units.jsonl"
    bad.write_text('{"id": "a", "text": "x"}\nnot json\n', encoding="utf-8")
    with pytest.raises(DiffSourceError, match="units.jsonl:2"):
        read_units_file(bad)
    bad.write_text('{"text": "no id"}\n', encoding="utf-8")
    with pytest.raises(DiffSourceError, match="unit"):
        read_units_file(bad)


def test_a_corpus_directory_and_a_units_file_can_be_compared(tmp_path, units):
    path = tmp_path / "units.jsonl"
    path.write_text("\n".join(json.dumps(u.model_dump(mode="json"), ensure_ascii=False) for u in units), encoding="utf-8")
    label, same = load_units(str(CORPUS), index_root=tmp_path / "index")
    result = diff_units(read_units_file(path), same, old_label=str(path), new_label=label)
    assert result.changes == [] and result.n_old == result.n_new == len(units)
    assert render_markdown(result, [])[-1] == "No unit changed."


def test_char_diff_shortens_unchanged_runs():
    old = "あ" * 50 + "令和7年5月" + "い" * 50
    new = "あ" * 50 + "令和7年6月" + "い" * 50
    out = char_diff(old, new, context=5)
    assert out == "…あ令和7年[-5-]{+6+}月いいいい…"
