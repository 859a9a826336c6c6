"""Key-fact correctness, the stratified answer subset, split gaps and the gate's comparison.

The items are the real dev set's and the units the real corpus's; the answers are
written by hand in the forms the answer pipeline produces.
"""

from __future__ import annotations

from collections import Counter

import pytest

from eval.devset import SHAPES, SPLITS, load_devset
from eval.metrics import fact_present, labels_cited, score_key_facts, score_unanswerable
from eval.report import compare, split_gaps, summarize
from eval.runner import score_answer, stratified_subset, strip_answer, unit_source
from index.tokenizer import get_tokenizer


@pytest.fixture(scope="module")
def devset():
    return {d.id: d for d in load_devset()}


@pytest.fixture(scope="module")
def texts(units):
    return {u.id: unit_source(u.model_dump()) for u in units}


def _row(item, answer: str, *, cites: list[str], abstained: bool = False, valid: bool = True) -> dict:
    return {
        "id": item.id, "set": "dev", "type": item.type, "shape": item.shape, "split": item.split, "question": item.question,
        "gold_units": item.gold_units, "answer": answer, "abstained": abstained, "citations_valid": valid,
        "citations": [{"n": i, "unit_id": uid, "quote": "", "section_path": []} for i, uid in enumerate(cites, start=1)],
    }


def _kf(**kw):
    base = dict(answer="", key_facts=[["18府省庁"]], written=[], lead="", citations_valid=True, gold_cited=True)
    return score_key_facts(**{**base, **kw})


def test_every_fact_in_any_spelling_with_a_gold_citation_is_correct():
    r = _kf(answer="２５府省庁中、１８の府省庁です。[1]", key_facts=[["18府省庁", "18の府省庁"]])
    assert r.verdict == "correct" and r.found == (True,) and r.reasons == ()


def test_some_facts_is_partial_and_none_is_wrong():
    facts = [["官報"], ["法令"], ["通達"]]
    partial = _kf(answer="官報と法令を学習します。", key_facts=facts)
    assert partial.verdict == "partial" and partial.recall == pytest.approx(2 / 3)
    assert partial.reasons == ("missing: 通達",)
    assert _kf(answer="議事録を学習します。", key_facts=facts).verdict == "wrong"


def test_all_facts_without_a_gold_unit_cited_is_partial():
    r = _kf(answer="18府省庁です。", gold_cited=False)
    assert r.verdict == "partial" and "no gold unit cited" in r.reasons


def test_an_invalid_citation_or_a_refusal_is_wrong_whatever_the_text():
    assert _kf(answer="18府省庁です。", citations_valid=False).verdict == "wrong"
    refused = _kf(answer="記載が見つかりませんでした。最も近い記載: 「18府省庁」", abstained=True)
    assert refused.verdict == "wrong" and refused.reasons == ("abstained",)


def test_a_figure_the_system_wrote_outside_the_facts_makes_the_answer_wrong():
    r = _kf(answer="18府省庁です。前回から5府省庁増えました。", written=["18府省庁です。", "前回から5府省庁増えました。"])
    assert r.verdict == "wrong" and r.stray_figures == ("5",)


def test_figures_of_quotes_the_question_and_the_gold_units_are_not_stray():
    # 25 stands in the quote (not in `written`), 7 in the question, 12 in the gold unit.
    r = _kf(answer="「25府省庁中、18府省庁において」[1] 令和7年12月末時点です。", written=["令和7年12月末時点です。"], allowed_figures=["7", "12"])
    assert r.verdict == "correct" and r.stray_figures == ()


def test_a_lead_of_the_opposite_stance_to_a_verdict_fact_is_wrong():
    facts = [["取り扱うことはできない", "入力できない"]]
    yes = _kf(answer="はい、入力できます。「原則として要機密情報を取り扱うことはできない。」", key_facts=facts, lead="はい、入力できます。", verdict_facts=facts)
    assert yes.verdict == "wrong" and "lead contradicts「取り扱うことはできない」" in yes.reasons
    no = _kf(answer="いいえ、入力できません。「原則として要機密情報を取り扱うことはできない。」", key_facts=facts, lead="いいえ、入力できません。", verdict_facts=facts)
    assert no.verdict == "correct"


def test_parts_answered_and_figure_ok():
    parts = [[["令和7年12月末"]], [["令和8年2月"]]]
    r = _kf(answer="令和7年12月末時点の状況です。", key_facts=[["令和7年12月末"], ["令和8年2月"]], parts=parts)
    assert r.parts_answered == 0.5 and r.figure_ok is False and r.verdict == "partial"
    assert _kf(answer="透明性", key_facts=[["透明性"]]).figure_ok is None


def test_an_item_without_key_facts_cannot_be_judged_on_them():
    with pytest.raises(ValueError):
        _kf(key_facts=[])


def test_unanswerable_items_are_correct_when_declined():
    assert score_unanswerable(True).verdict == "correct"
    assert score_unanswerable(False).verdict == "wrong"


def test_fact_present_ignores_width_spacing_and_citation_marks():
    assert fact_present(["81件"], "３割弱（８１ 件[1]/306件）")
    assert not fact_present(["81件"], "3割弱")


def test_labels_cited_ignores_captions():
    path = ["〇〇市生成AI利用規程", "第3章 利用", "第8条（入力の制限）", "第2項"]
    assert labels_cited(["第8条第2項"], [path]) == 1.0
    assert labels_cited(["第8条第2項", "第9条"], [path]) == 0.5


def test_score_answer_on_a_real_item_and_its_gold_unit(devset, texts, units):
    item = devset["d001"]  # key fact 18府省庁; gold: 「25府省庁中、18府省庁において…」
    gold = item.gold_units[0]
    quote = next(line for line in texts[gold].splitlines() if "18府省庁" in line).lstrip("- ")
    row = _row(item, f"府省庁内全体で利用開始済みは25府省庁中18府省庁です。[1]\n「{quote}」[1]", cites=[gold])

    scored = score_answer(row, item, texts, get_tokenizer())

    assert scored["answer_verdict"] == "correct" and scored["answer_correct"] is True
    assert scored["faith"]["n"] == 2 and scored["faith"]["quote"] == 1 and scored["faith"]["written_supported"] == 1
    wrong = score_answer(_row(item, "利用開始済みは25府省庁中19府省庁です。[1]", cites=[gold]), item, texts, get_tokenizer())
    assert wrong["answer_verdict"] == "wrong" and wrong["kf"]["stray_figures"] == ["19"]
    assert wrong["faith"]["unsupported"][0]["reason"] == "number_missing"


def test_score_answer_on_an_unanswerable_item(devset, texts):
    item = next(d for d in devset.values() if d.type == "unanswerable")
    declined = score_answer(_row(item, "ガイドラインに記載が見つかりませんでした。", cites=[], abstained=True), item, texts, get_tokenizer())
    assert declined["answer_verdict"] == "correct" and declined["faith"] is None


def test_the_answer_subset_covers_every_shape_and_type_from_both_halves_and_is_fixed(devset):
    items = list(devset.values())
    ids = stratified_subset(items, 20, seed=20261123)
    chosen = [devset[i] for i in ids]

    assert 20 <= len(ids) <= 22
    assert {d.shape for d in chosen} == set(SHAPES) & {d.shape for d in items}
    assert {d.type for d in chosen} == {d.type for d in items}
    halves = Counter(d.split for d in chosen)
    assert set(halves) == set(SPLITS) and abs(halves["tune"] - halves["holdout"]) <= 2
    assert ids == stratified_subset(items, 20, seed=20261123)
    assert ids != stratified_subset(items, 20, seed=1)
    assert stratified_subset(items, 500, seed=1) == [d.id for d in items]


def test_strip_answer_restores_the_clauses_mode_row(devset):
    row = {**_row(devset["d001"], "18府省庁[1]", cites=["x"], abstained=True), "abstained_before_llm": False, "hit5": 1.0}
    stripped = strip_answer(row)
    assert "answer" not in stripped and "citations" not in stripped and stripped["abstained"] is False and stripped["hit5"] == 1.0


def _split_rows(tune_hits: list[float], holdout_hits: list[float]) -> list[dict]:
    rows = []
    for split, hits in (("tune", tune_hits), ("holdout", holdout_hits)):
        for i, h in enumerate(hits):
            rows.append({
                "id": f"{split}{i}", "set": "dev", "type": "fact", "split": split, "shape": "figure", "abstained_before_llm": False,
                "hit1": h, "hit3": h, "hit5": h, "hit10": h, "rr10": h, "ndcg10": h, "recall10": h, "evidence_recall_2000": h, "context_chars_top5": 100,
            })
    return rows


def test_the_summary_shows_both_halves_and_flags_a_tuned_half_that_does_better():
    tol = {"split_gap": {"retrieval.hit@5": 0.08}}
    flagged = summarize(_split_rows([1.0] * 10, [1.0] * 8 + [0.0] * 2), meta={}, tolerances=tol)
    assert flagged["splits"]["tune"]["retrieval"]["hit@5"] == 1.0 and flagged["splits"]["holdout"]["retrieval"]["hit@5"] == 0.8
    assert flagged["split_gaps"] == [{"metric": "retrieval.hit@5", "tune": 1.0, "holdout": 0.8, "gap": 0.2, "tolerance": 0.08, "flagged": True}]
    # The held-out half doing better is not a sign of tuning to the items.
    reverse = summarize(_split_rows([1.0] * 8 + [0.0] * 2, [1.0] * 10), meta={}, tolerances=tol)
    assert reverse["split_gaps"][0]["flagged"] is False
    assert split_gaps({"tune": {}, "holdout": {}}, {"retrieval.hit@5": 0.1}) == []


def test_compare_gates_only_the_listed_directions_and_skips_split_gap():
    tolerances = {"higher_is_better": {"splits.holdout.retrieval.hit@5": 0.03}, "lower_is_better": {"check.unsafe": 0}, "split_gap": {"retrieval.hit@5": 0.0}}
    before = {"splits": {"holdout": {"retrieval": {"hit@5": 0.9}}}, "check": {"unsafe": 0}}
    after = {"splits": {"holdout": {"retrieval": {"hit@5": 0.85}}}, "check": {"unsafe": 1}, "retrieval": {"hit@5": 0.1}}
    out = {c["metric"]: c["regressed"] for c in compare(after, before, tolerances)}
    assert out == {"splits.holdout.retrieval.hit@5": True, "check.unsafe": True}
