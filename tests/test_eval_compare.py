"""The comparison section of ``guideqa eval`` on a slice: three real questions through the answer
pipeline on the real index (no LLM), scored against the clauses the answer actually shows — the
oracle here reads the cited units from the index itself, not from the row."""

from __future__ import annotations

import pytest

from eval.compare import (
    ComparisonItem,
    check_comparisons,
    load_comparisons,
    run_comparisons,
    summarize_comparisons,
)
from eval.report import load_tolerances
from index.store import QueryFilter
from ingest.cleaning import squash
from service.state import build_state

SLICE = ("cmp01", "cmp03", "cmp10")  # one document silent on the topic; two with clauses each


@pytest.fixture(scope="module")
def items() -> list[ComparisonItem]:
    return [it for it in load_comparisons() if it.id in SLICE]


@pytest.fixture(scope="module")
def state(settings, built_index):
    st = build_state(settings.model_copy(update={"llm_backend": "none"}), load_llm=False)
    yield st
    st.close()


@pytest.fixture(scope="module")
def rows(state, items, tmp_path_factory):
    path = tmp_path_factory.mktemp("compare") / "compare_results.jsonl"
    out = run_comparisons(state, items, results_path=path)
    assert len(path.read_text(encoding="utf-8").splitlines()) == len(items)
    return {r["id"]: r for r in out}


def test_the_comparison_file_agrees_with_the_corpus(units):
    assert check_comparisons(load_comparisons(), [u.model_dump() for u in units]) == []


def test_right_clause_and_honesty_are_read_off_the_real_answer(rows, items, state):
    for it in items:
        row = rows[it.id]
        assert row["latency_ms"] > 0 and "error" not in row
        units = {u["id"]: u for u in state.searcher.get_units([p["unit_id"] for p in row["pieces"]], flt=QueryFilter.everything())}
        assert set(units) == {p["unit_id"] for p in row["pieces"]}
        for doc_id, exp in it.docs.items():
            mine = [units[p["unit_id"]] for p in row["pieces"] if units[p["unit_id"]]["doc_id"] == doc_id]
            scored = row["docs"][doc_id]
            if exp.says_nothing:
                title = state.searcher.documents(flt=QueryFilter.everything())[doc_id].title
                assert scored["honest"] == (not mine and any(title in n for n in row["notes"]))
            else:
                assert scored["right"] == any(squash(q) in squash(u["text"]) for u in mine for q in exp.evidence)
        assert row["all_right"] == all(d["right"] for d in row["docs"].values() if not d["says_nothing"])
        assert row["detected"] == (row["shape"] == "comparison" and all(d["pieces"] or d["noted"] for d in row["docs"].values()) and not row["extra_docs"])
        assert bool(row["why"]) == (not row["detected"] or not row["all_right"] or row["honest"] is False)


def test_the_summary_counts_documents_and_halves(rows):
    section = summarize_comparisons(list(rows.values()), gap_tolerances=load_tolerances()["compare_split_gap"])
    docs = [d for r in rows.values() for d in r["docs"].values() if not d["says_nothing"]]
    assert section["n"] == len(SLICE) and section["n_documents"] == len(docs)
    assert section["right_clause"] == round(sum(d["right"] for d in docs) / len(docs), 4)
    assert section["splits"]["tune"]["n"] + section["splits"]["holdout"]["n"] == len(SLICE)
    assert 0 < section["latency_ms_p50"] <= section["latency_ms_p95"]


def test_a_quote_from_no_unit_of_its_document_is_a_data_problem(units):
    item = ComparisonItem.model_validate(
        {
            "id": "cmpX", "question": "国と都でログの保存はどう違う？", "split": "tune",
            "docs": {
                "tokyo_ai-guideline_2026-03-30": {"evidence": ["ログは永久に保存しなければならない"]},
                "digital-agency_genai-guideline-overview_2025-10-09": {"evidence": ["x"], "says_nothing": True},
            },
        }
    )
    problems = check_comparisons([item], [u.model_dump() for u in units])
    assert any("cmpX" in p and "ログは永久に保存" in p for p in problems)
    assert any("cmpX" in p and "says_nothing" in p for p in problems)
