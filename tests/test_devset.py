"""The curated dev set and check set: they load, agree with the real corpus, and cover what they promise.

These run against the real ingest of ``corpus/`` (the session fixture ``units``),
so a chunking change that breaks a gold id or a quote fails here first; repair
with ``python -m eval.devset --fix``.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from eval.devset import (
    CHECKSET_PATH,
    CLASSES,
    DEVSET_PATH,
    ITEM_TYPES,
    NOT_FOUND,
    SHAPES,
    SPLITS,
    VERDICTS,
    CheckItem,
    DevItem,
    DevsetError,
    assign_splits,
    load_checkset,
    load_devset,
    remap_gold_ids,
    validate,
)
from guideqa.settings import PROJECT_ROOT
from ingest.cleaning import squash
from ingest.manifest import load_manifest

CORPUS = PROJECT_ROOT / "corpus"

TYPE_MINIMUMS = {
    "fact": 20,
    "multi_doc": 6,
    "table": 10,
    "procedure": 10,
    "definition": 6,
    "unanswerable": 10,
    "injection": 8,
}
ATTRIBUTES = ["インターネット接続系", "パブリッククラウド", "ISMAP登録", "約款型", "国外サーバ", "LGWAN-ASP", "入力データの学習利用なし"]
_RESTRICTIVENESS = ["不可", "判断できない", "条件付きで可", "可"]


@pytest.fixture(scope="module")
def devset() -> list[DevItem]:
    return load_devset()


@pytest.fixture(scope="module")
def checkset() -> list[CheckItem]:
    return load_checkset()


@pytest.fixture(scope="module")
def doc_ids() -> list[str]:
    return [m.doc_id for m in load_manifest(CORPUS / "manifest.json")]


def test_both_files_load_with_enough_items(devset, checkset):
    assert DEVSET_PATH.name == "devset.jsonl" and CHECKSET_PATH.name == "checkset.jsonl"
    assert len(devset) >= 85
    assert len(checkset) >= 32
    assert all(it.id.startswith("d") for it in devset)
    assert all(it.id.startswith("c") for it in checkset)


def test_devset_agrees_with_the_current_corpus(devset, units):
    assert validate(devset, units, CORPUS) == []


def test_checkset_agrees_with_the_current_corpus(checkset, units):
    assert validate(checkset, units, CORPUS) == []


def test_every_question_type_meets_its_minimum(devset):
    counts = Counter(it.type for it in devset)
    for type_, minimum in TYPE_MINIMUMS.items():
        assert counts[type_] >= minimum, f"{type_}: {counts[type_]} < {minimum}"


def test_every_document_has_at_least_eight_items(devset, doc_ids):
    counts = Counter(d for it in devset for d in set(it.doc_ids))
    for doc in doc_ids:
        assert counts[doc] >= 8, f"{doc}: only {counts[doc]} items"


def test_multi_doc_evidence_comes_from_two_documents(devset, units):
    by_id = {u.id: u for u in units}
    for it in (i for i in devset if i.type == "multi_doc"):
        docs = {
            by_id[g].doc_id
            for q in it.evidence
            for g in it.gold_units
            if squash(q) in squash(by_id[g].text)
        }
        assert len(docs) >= 2, it.id


def test_evidence_quotes_are_short(devset, checkset):
    for it in [*devset, *checkset]:
        for q in it.evidence:
            assert 10 <= len(q) <= 80, f"{it.id}: {q!r}"


def test_unanswerable_items_have_no_gold_and_the_fixed_reference(devset):
    for it in (i for i in devset if i.type == "unanswerable"):
        assert it.gold_units == [] and it.evidence == [] and it.reference == NOT_FOUND, it.id
    for it in (i for i in devset if i.type != "unanswerable"):
        assert it.gold_units and it.evidence and it.reference != NOT_FOUND, it.id


def test_injection_items_name_markers_the_correct_answer_never_contains(devset):
    for it in (i for i in devset if i.type == "injection"):
        assert it.forbidden, it.id
        for marker in it.forbidden:
            assert marker not in it.reference, f"{it.id}: {marker!r} is in the reference"


def test_procedure_gold_is_exactly_the_items_of_its_section(devset, units):
    """Every gold unit lies in the item's section, and every [必須]/[推奨] unit there is gold."""
    marked = re.compile(r"[\[【](必須|推奨)[\]】]")

    def within(unit, section):
        k = len(section)
        return any(list(p[i : i + k]) == section for p in unit.all_paths() for i in range(len(p) - k + 1))

    for it in (i for i in devset if i.type == "procedure"):
        assert it.section, it.id
        in_section = {u.id for u in units if within(u, it.section)}
        assert set(it.gold_units) <= in_section, it.id
        must = {u.id for u in units if u.id in in_section and marked.search(u.text)}
        assert must <= set(it.gold_units), f"{it.id}: missing {sorted(must - set(it.gold_units))}"


@pytest.mark.parametrize("which", ["devset", "checkset"])
def test_remap_recovers_deliberately_blanked_gold_ids(which, devset, checkset, units):
    items = devset if which == "devset" else checkset
    blanked = [it.model_copy(update={"gold_units": []}) for it in items]

    remapped, changes = remap_gold_ids(blanked, units)

    for original, recovered in zip(items, remapped):
        assert set(recovered.gold_units) == set(original.gold_units), original.id
    assert len(changes) == sum(1 for it in items if it.evidence)
    assert all(it.gold_units == [] for it in blanked), "remap must not modify its input"


def test_remap_leaves_correct_ids_alone(devset, units):
    _, changes = remap_gold_ids(devset, units)
    assert changes == []


def test_remap_reports_a_quote_that_matches_nothing(devset, units):
    broken = devset[0].model_copy(update={"evidence": ["この文章はどのガイドラインにもありません"]})

    (kept,), changes = remap_gold_ids([broken], units)

    assert kept.gold_units == devset[0].gold_units
    assert len(changes) == 1 and broken.id in changes[0]


def test_validate_reports_duplicates_bad_quotes_and_missing_ids(devset, units):
    bad = devset[0].model_copy(update={"gold_units": ["tokyo-0000000000"], "evidence": ["存在しない引用文です"]})

    problems = validate([devset[0], bad], units, CORPUS)

    assert any("2 回" in p for p in problems)
    assert any("tokyo-0000000000" in p for p in problems)
    assert any("コーパスに見つかりません" in p for p in problems)
    assert any("gold unit にも含まれていません" in p for p in problems)


def _item(devset, item_id):
    return next(it for it in devset if it.id == item_id)


def test_every_answerable_item_has_key_facts_a_shape_and_a_split(devset):
    for it in devset:
        assert it.split in SPLITS and it.shape in SHAPES, it.id
        if it.type == "unanswerable":
            assert it.key_facts == [], it.id
        else:
            assert it.key_facts and all(fact and all(fact) for fact in it.key_facts), it.id
        if it.shape == "multi_part":
            assert len(it.parts) >= 2, it.id


def test_a_key_fact_absent_from_the_gold_units_fails_with_the_item_id(devset, units):
    item = _item(devset, "d012")
    doctored = item.model_copy(update={"key_facts": [*item.key_facts, ["令和9年4月から全自治体に提供"]]})

    problems = validate([doctored], units, CORPUS)

    assert problems == ["d012: key fact「令和9年4月から全自治体に提供」がどの gold unit にもありません"]


def test_only_the_first_spelling_must_be_in_the_gold_units_compared_after_nfkc(devset, units):
    item = _item(devset, "d001")  # gold: 「25府省庁中、18府省庁において…」
    full_width_first = item.model_copy(update={"key_facts": [["１８府省庁", "十八の府省庁"]]})
    other_spelling_first = item.model_copy(update={"key_facts": [["十八の府省庁", "18府省庁"]]})

    assert validate([full_width_first], units, CORPUS) == []
    assert validate([other_spelling_first], units, CORPUS) == ["d001: key fact「十八の府省庁」がどの gold unit にもありません"]


def test_missing_labels_unknown_shape_and_missing_facts_are_reported(devset, units):
    item = _item(devset, "d026")
    unanswerable = next(it for it in devset if it.type == "unanswerable")

    no_split = validate([item.model_copy(update={"split": None})], units, CORPUS)
    no_shape = validate([item.model_copy(update={"shape": None})], units, CORPUS)
    odd_shape = validate([item.model_copy(update={"shape": "essay"})], units, CORPUS)
    no_facts = validate([item.model_copy(update={"key_facts": []})], units, CORPUS)
    facts_without_answer = validate([unanswerable.model_copy(update={"key_facts": [["何か"]]})], units, CORPUS)

    assert no_split == ["d026: split がありません（tune / holdout）"]
    assert len(no_shape) == 1 and no_shape[0].startswith("d026: shape がありません")
    assert len(odd_shape) == 1 and odd_shape[0].startswith("d026: shape「essay」は未知の値です")
    assert no_facts == ["d026: 答えのある項目なのに key_facts がありません"]
    assert facts_without_answer == [f"{unanswerable.id}: unanswerable に key_facts があります"]


def test_a_key_fact_may_not_hold_an_injection_marker(devset, units):
    item = _item(devset, "d094")  # forbidden: PWNED
    obeying = item.model_copy(update={"key_facts": [["256校", "PWNED 256校"]]})

    assert validate([obeying], units, CORPUS) == ["d094: key fact「256校」に forbidden の「PWNED」が含まれています"]


def test_a_multi_part_item_has_the_union_of_its_parts_facts(devset, units):
    item = next(it for it in devset if it.shape == "multi_part" and it.type != "unanswerable")
    assert {tuple(f) for f in item.key_facts} == {tuple(f) for p in item.parts for f in p.key_facts}
    dropped = item.model_copy(update={"parts": item.parts[:1]})

    problems = validate([dropped], units, CORPUS)

    assert f"{item.id}: multi_part には 2 つ以上の parts が必要です" in problems
    assert f"{item.id}: key_facts が parts の key_facts の和になっていません" in problems


def test_each_type_is_split_roughly_in_half(devset):
    for type_ in ITEM_TYPES:
        halves = Counter(it.split for it in devset if it.type == type_)
        n = sum(halves.values())
        if n == 0:
            continue
        assert all(halves[h] >= 0.4 * n for h in SPLITS), f"{type_}: {dict(halves)}"
    halves = Counter(it.split for it in devset)
    assert abs(halves["tune"] - halves["holdout"]) <= 0.1 * len(devset)


def test_assign_splits_rederives_a_stratified_split_and_keeps_existing_ones(devset):
    blank = [it.model_copy(update={"split": None}) for it in devset]

    first, again = assign_splits(blank), assign_splits(blank)

    assert [it.split for it in first] == [it.split for it in again], "the split must be reproducible"
    for type_ in {it.type for it in devset}:
        halves = Counter(it.split for it in first if it.type == type_)
        assert abs(halves["tune"] - halves["holdout"]) <= 1, type_
    strata = Counter((it.type, tuple(sorted(it.doc_ids)), it.split) for it in first)
    for type_, docs, _ in strata:
        assert abs(strata[type_, docs, "tune"] - strata[type_, docs, "holdout"]) <= 1, (type_, docs)
    assert all(it.split is None for it in blank), "assign_splits must not modify its input"

    new = devset[0].model_copy(update={"id": "d999", "split": None})
    placed = assign_splits([*devset, new])
    assert [it.split for it in placed[:-1]] == [it.split for it in devset]
    assert placed[-1].split in SPLITS


def test_check_verdicts_and_classes_are_valid(checkset):
    for it in checkset:
        assert it.expected_verdict in VERDICTS, it.id
        assert it.expected_class is None or it.expected_class in CLASSES, it.id
        if it.expected_class is None:
            assert it.expected_verdict == "判断できない", it.id
        if it.expected_class == "3A":
            assert it.expected_verdict == "不可", it.id
        for sub in it.items:
            assert sub.expected_verdict in VERDICTS and (sub.expected_class is None or sub.expected_class in CLASSES)


def test_checkset_covers_every_class_attribute_and_unclear_case(checkset):
    classes = Counter(it.expected_class for it in checkset if not it.items)
    for cls in CLASSES:
        assert classes[cls] >= 4, f"class {cls}: {classes[cls]}"
    attributes = Counter(a for it in checkset for a in it.attributes)
    for attr in ATTRIBUTES:
        assert attributes[attr] >= 1, attr
    unclear = [it for it in checkset if it.expected_verdict == "判断できない"]
    assert len(unclear) >= 4
    assert sum(1 for it in checkset if it.expected_class is None) >= 2


def test_questions_naming_two_items_take_the_most_restrictive_verdict(checkset):
    multi = [it for it in checkset if it.items]
    assert len(multi) >= 2
    for it in multi:
        assert len(it.items) >= 2, it.id
        worst = min((sub.expected_verdict for sub in it.items), key=_RESTRICTIVENESS.index)
        assert it.expected_verdict == worst, it.id


def test_malformed_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "devset.jsonl"
    good = '{"id": "d001", "type": "fact", "question": "q", "reference": "r"}'
    path.write_text(good + "\n" + '{"id": "d002", "type": ' + "\n", encoding="utf-8")

    with pytest.raises(DevsetError, match=r"devset\.jsonl:2:"):
        load_devset(path)


def test_unknown_fields_are_kept_and_bad_types_rejected(tmp_path):
    path = tmp_path / "devset.jsonl"
    path.write_text(
        '{"id": "d001", "type": "fact", "question": "q", "reference": "r", "difficulty": "hard"}\n'
        '{"id": "d002", "type": "essay", "question": "q", "reference": "r"}\n',
        encoding="utf-8",
    )

    with pytest.raises(DevsetError, match=r":2:.*type"):
        load_devset(path)
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    (item,) = load_devset(path)
    assert item.model_extra == {"difficulty": "hard"}
