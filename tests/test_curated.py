"""Registered answers (登録済みの回答) as ingest reads them: the YAML registry, quotes resolved against the real corpus."""

from __future__ import annotations

import logging

import pytest

from guideqa.errors import IngestError
from guideqa.settings import PROJECT_ROOT
from index.search import CuratedCandidate
from ingest.curated import (
    CURATED_FILE,
    CuratedItem,
    load_curated,
    read_curated,
    render_curated,
    restore_curated,
    verbatim_span,
    write_curated,
)
from service.curated import MatchParams, best_match

EVAL_REGISTRY = PROJECT_ROOT / "eval" / "data" / "curated" / "curated.yaml"
MIC = "mic_local-gov-ai-wg_reference-materials_2025-07"


def item(**fields) -> CuratedItem:
    base = {
        "id": "t-1", "question": "約款型サービスで要機密情報を扱える？", "answer": "原則として扱えません。",
        "citations": [{"doc_id": MIC, "quote": "約款型サービスに関し、原則として要機密情報を取り扱うことはできない。"}],
        "author": "情報政策課", "date": "2026-12-01", "group": "public",
    }
    return CuratedItem.model_validate({**base, **fields})


def test_verbatim_span_ignores_width_and_spaces_but_returns_the_units_own_text():
    text = "生成AIを　導入している団体への要機密情報(個人情報を含む。)の取扱い"
    span = verbatim_span(text, "生成ＡＩを導入している団体への要機密情報（個人情報を含む。）")
    assert span == "生成AIを　導入している団体への要機密情報(個人情報を含む。)"
    assert span in text
    assert verbatim_span(text, "書かれていない一節") is None


def test_every_evaluation_item_resolves_and_cites_verbatim_text(units):
    load = load_curated(EVAL_REGISTRY, units)
    assert load.skipped == [] and len(load.units) == 25
    by_id = {u.id: u for u in units}
    for unit in load.units:
        assert unit.kind == "curated" and unit.access == "public" and unit.curated is not None
        assert unit.curated.citations, unit.id
        for cite in unit.curated.citations:
            cited = by_id[cite.unit_id]
            assert cited.doc_id == cite.doc_id
            assert cite.quote in cited.text  # the invariant: every quote is a verbatim substring of its unit


def test_an_item_whose_quote_is_gone_is_left_out_with_a_warning(tmp_path, units, caplog):
    path = tmp_path / "curated.yaml"
    write_curated(path, [item(), item(id="t-gone", citations=[{"doc_id": MIC, "quote": "この文は文書のどこにも書かれていない。"}])])
    with caplog.at_level(logging.WARNING):
        load = load_curated(path, units)
    assert [u.curated.item_id for u in load.units] == ["t-1"]
    assert [name for name, _ in load.skipped] == ["t-gone"]
    assert "t-gone" in caplog.text


def test_an_item_without_citation_is_refused(tmp_path, units):
    path = tmp_path / "curated.yaml"
    no_citation = "- id: t-none\n  question: 質問\n  answer: 回答\n  citations: []\n  date: '2026-12-01'\n"
    path.write_text(no_citation + render_curated([item()], header=""), encoding="utf-8")
    load = load_curated(path, units)
    assert [u.curated.item_id for u in load.units] == ["t-1"]
    assert load.skipped[0][0] == "t-none" and "citations" in load.skipped[0][1]


def test_a_unit_the_items_group_may_not_see_cannot_be_cited(tmp_path, units):
    hidden = [u.model_copy(update={"access": "hr"}) if u.doc_id == MIC else u for u in units]
    path = tmp_path / "curated.yaml"
    write_curated(path, [item(), item(id="t-hr", group="hr")])
    load = load_curated(path, hidden)
    assert [u.curated.item_id for u in load.units] == ["t-hr"] and load.units[0].access == "hr"
    assert load.skipped[0][0] == "t-1"


def test_drafts_are_kept_in_the_file_and_never_indexed(tmp_path, units):
    path = tmp_path / "curated.yaml"
    write_curated(path, [item(), item(id="t-draft", status="draft")])
    load = load_curated(path, units)
    assert [u.curated.item_id for u in load.units] == ["t-1"] and load.drafts == 1


def test_writing_keeps_the_header_and_restoring_puts_the_old_text_back(tmp_path):
    path = tmp_path / "curated.yaml"
    path.write_text((PROJECT_ROOT / "corpus" / CURATED_FILE).read_text(encoding="utf-8"), encoding="utf-8")
    shipped = path.read_text(encoding="utf-8")
    assert read_curated(path) == ([], [])  # shipped empty: the answers are the office's
    previous = write_curated(path, [item(), item(id="t-2", question="２つ目？")])
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# 登録済みの回答") and previous == shipped
    entries, problems = read_curated(path)
    assert problems == [] and [e.item for e in entries] == [item(), item(id="t-2", question="２つ目？")]
    assert entries[0].line_start < entries[0].line_end < entries[1].line_start
    restore_curated(path, previous)
    assert path.read_text(encoding="utf-8") == shipped


@pytest.mark.parametrize("text", ["- [broken", "id: not-a-list\n", "\xff"])
def test_a_file_that_is_not_a_yaml_list_stops_the_ingest_with_a_clear_error(tmp_path, units, text):
    path = tmp_path / "curated.yaml"
    path.write_bytes(text.encode("latin-1") if text == "\xff" else text.encode())
    with pytest.raises(IngestError) as err:
        load_curated(path, units)
    assert "curated.yaml" in err.value.message


def test_malformed_items_and_repeated_ids_are_reported_and_left_out(tmp_path):
    path = tmp_path / "curated.yaml"
    bad_date = render_curated([item(id="t-bad")], header="").replace("2026-12-01", "2026-13-45")
    path.write_text(bad_date + render_curated([item(), item(question="同じ id の二つ目")], header=""), encoding="utf-8")
    entries, problems = read_curated(path)
    assert [e.item.question for e in entries] == [item().question]
    assert [name for name, _ in problems] == ["t-bad", "t-1"]


def candidate(item_id: str, cosine: float, overlap: float = 0.2, cited: tuple[str, ...] = ("u2",)) -> CuratedCandidate:
    unit = {"text": item_id, "curated": {"item_id": item_id, "citations": [{"unit_id": u} for u in cited]}}
    return CuratedCandidate(unit=unit, cosine=cosine, overlap=overlap)


def test_a_match_needs_the_threshold_a_clear_lead_and_the_documents_or_the_same_wording():
    params = MatchParams(threshold=0.88, margin=0.01, same_wording=0.5, similar_floor=0.86)
    ranked = ["u1", "u2", "u3"]
    assert best_match([candidate("a", 0.93), candidate("b", 0.90)], ranked, params).unit["text"] == "a"
    assert best_match([candidate("a", 0.93)], ranked, params).unit["text"] == "a"
    assert best_match([candidate("a", 0.87)], ranked, params) is None  # below the threshold
    assert best_match([candidate("a", 0.93), candidate("b", 0.925)], ranked, params) is None  # two about as close
    assert best_match([candidate("a", 0.93, cited=("u9",))], ranked, params) is None  # the documents do not agree
    assert best_match([candidate("a", 0.93, overlap=1.0, cited=("u9",))], ranked, params).unit["text"] == "a"  # asked word for word
    assert best_match([], ranked, params) is None
