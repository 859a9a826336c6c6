"""eval.faithfulness: statement-level faithfulness of answers against the real corpus's units.

Answers here are written by hand in the forms the answer pipeline produces (verbatim
quotes with labels, list lines, a lead sentence); the units are the real ones.
"""

from __future__ import annotations

import pytest

from eval.faithfulness import FRAME_MAX_WORDS, figures, is_verbatim, statement_faithfulness
from index.tokenizer import get_tokenizer


@pytest.fixture(scope="module")
def tok():
    return get_tokenizer()


def _unit(units, needle: str):
    return next(u for u in units if needle in u.text)


@pytest.fixture(scope="module")
def start(units):
    """The national guideline's overview clause: 「…適用開始時期：令和7年5月に運用開始。」"""
    return _unit(units, "令和7年5月に運用開始")


@pytest.fixture(scope="module")
def ban(units):
    """「約款型サービスに関し、原則として要機密情報を取り扱うことはできない。」"""
    return _unit(units, "原則として要機密情報を取り扱うことはできない")


def test_a_verbatim_quote_is_supported_by_construction_and_counted_as_a_quote(tok, start):
    f = statement_faithfulness("該当箇所: 「適用開始時期：令和7年5月に運用開始。」[1]", {1: start.text}, tok)

    assert [(s.kind, s.supported, s.reason) for s in f.statements] == [("quote", True, "verbatim_quote")]
    assert f.share == 1.0 and f.written_share is None  # nothing written by the system


def test_whitespace_and_full_width_do_not_break_a_quote(tok, start):
    f = statement_faithfulness("「適用開始時期： 令和７年５月に 運用開始」[1]", {1: start.text}, tok)

    assert f.statements[0].kind == "quote" and f.statements[0].supported


def test_a_written_statement_with_a_figure_the_clause_lacks_is_unsupported(tok, start):
    f = statement_faithfulness("国のガイドラインは令和7年9月に運用開始されました。[1]", {1: start.text}, tok)

    (s,) = f.statements
    assert s.kind == "written" and not s.supported and s.reason == "number_missing"
    assert f.to_row()["unsupported"] == [{"statement": "国のガイドラインは令和7年9月に運用開始されました。", "cites": [1], "reason": "number_missing", "support": round(s.support, 3)}]


def test_a_lead_that_permits_what_the_clause_forbids_is_unsupported(tok, ban):
    answer = "約款型サービスでも要機密情報を取り扱うことができる。[1] 「原則として要機密情報を取り扱うことはできない。」[1]"
    f = statement_faithfulness(answer, {1: ban.text}, tok)

    lead, quote = f.statements
    assert (lead.kind, lead.supported, lead.reason) == ("written", False, "contradicts")
    assert (quote.kind, quote.supported) == ("quote", True)
    assert f.share == 0.5 and f.written_share == 0.0
    assert f.lead == lead.text


def test_a_faithful_lead_without_marks_is_checked_against_every_cited_clause(tok, start, ban):
    answer = "国のガイドラインは令和7年5月に運用開始。\n「原則として要機密情報を取り扱うことはできない。」[1]\n「令和7年5月に運用開始」[2]"
    f = statement_faithfulness(answer, {1: ban.text, 2: start.text}, tok)

    assert [(s.kind, s.supported) for s in f.statements] == [("written", True), ("quote", True), ("quote", True)]
    assert f.statements[0].cites == ()


def test_a_quote_that_is_not_verbatim_is_the_systems_own_words(tok, start):
    f = statement_faithfulness("「令和7年9月から全府省庁で運用を開始した」[1]", {1: start.text}, tok)

    (s,) = f.statements
    assert s.kind == "written" and not s.supported
    assert "令和7年9月" in s.own


def test_a_quote_the_splitter_cuts_at_its_full_stop_stays_a_quote(tok, start):
    quote = start.text.split("\n")[-1]  # 「適用開始時期：令和7年5月に運用開始。」, ends in 「。」
    f = statement_faithfulness(f"「対象外\n{quote}」[1]", {1: start.text}, tok)

    assert f.n >= 1 and all(s.kind == "quote" and s.supported for s in f.statements)


def test_a_frame_with_a_claim_of_its_own_is_written(tok, start):
    # More than FRAME_MAX_WORDS content words outside the brackets: a claim, checked as one.
    frame = "デジタル庁の担当課が全国の自治体へ通知した文書によれば"
    assert len({t for t in tok.tokens(frame)}) > FRAME_MAX_WORDS
    f = statement_faithfulness(f"{frame}「令和7年5月に運用開始」[1]", {1: start.text}, tok)

    assert f.statements[0].kind == "written"


def test_headings_questions_and_refusals_are_left_out(tok, units):
    item = _unit(units, "定期的なAIの品質の監視")
    labels = {1: [item.doc_title, *item.section_path]}
    heading = f"「{item.section_path[-2]} > {item.section_path[-1]}」の項目（6件）:"
    answer = f"（1）運用で必須なのは？\n{heading}\n・{item.text.splitlines()[0].lstrip('-✓ ')}[1]\nこの点はガイドラインに記載が見つかりませんでした。"
    f = statement_faithfulness(answer, {1: item.text}, tok, labels=labels, allowed_figures=["6"])

    assert f.skipped == 3
    assert [(s.kind, s.supported) for s in f.statements] == [("quote", True)]


def test_a_heading_with_a_count_the_composer_did_not_compute_is_a_claim(tok, units):
    item = _unit(units, "定期的なAIの品質の監視")
    labels = {1: [item.doc_title, *item.section_path]}
    answer = f"「{item.section_path[-1]}」の項目（9件）:[1]"
    f = statement_faithfulness(answer, {1: item.text}, tok, labels=labels, allowed_figures=["6"])

    assert f.skipped == 0 and f.statements[0].kind == "written" and not f.statements[0].supported


def test_a_statement_citing_nothing_given_has_no_source(tok, start):
    f = statement_faithfulness("令和7年5月に運用開始。[3]", {1: start.text}, tok)

    assert [(s.supported, s.reason) for s in f.statements] == [(False, "no_source")]


def test_an_empty_answer_has_no_statements(tok):
    f = statement_faithfulness("", {}, tok)

    assert f.n == 0 and f.share is None and f.written_share is None and f.lead == ""


def test_figures_are_numbers_not_codes_or_list_numbers():
    assert figures("約４，０００戸、2.5倍") == ["4000", "2.5"]
    assert figures("機密性３Ａの情報とGPT-4oとNo.24") == []
    assert figures("(2) 令和7年5月") == ["7", "5"]


def test_is_verbatim_accepts_elisions_and_table_cells_each_verbatim():
    source = "国: 機密性2 / 自治体: 自治体機密性2 / パブリッククラウドサービスの範囲: 可"
    assert is_verbatim("国: 機密性2 / パブリッククラウドサービスの範囲: 可", source)
    assert is_verbatim("国: 機密性2…範囲: 可", source)
    assert not is_verbatim("国: 機密性3A", source)
    assert not is_verbatim("   ", source)
