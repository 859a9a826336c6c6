"""The confidentiality check on the real index: rules, verdicts and their citations."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from guideqa.errors import RulesError
from index.store import QueryFilter
from ingest.cleaning import squash
from service.check import CheckEngine, load_rules
from service.check.rules import DEFAULT_RULES, SERVICE_TYPES


@pytest.fixture(scope="module")
def lookup(searcher):
    return lambda ids: searcher.get_units(ids, flt=QueryFilter.everything())


@pytest.fixture(scope="module")
def engine(lookup):
    return CheckEngine(load_rules(lookup_units=lookup), lookup_units=lookup)


def test_every_rule_quote_is_still_in_its_unit(lookup):
    rules = load_rules(lookup_units=lookup)
    units = {u["id"]: u for u in lookup([u for _, u, _ in rules.cited_units()])}
    for name, unit_id, quote in rules.cited_units():
        assert squash(quote) in squash(units[unit_id]["text"]), name


@pytest.mark.parametrize(
    "question,verdict,cls",
    [
        ("施設の設計図面、ネットの生成AIに貼って要約させていい？", "条件付きで可", "3C"),
        ("入札予定価格を、規約に同意するだけの無料の生成AIに入れていい？", "不可", "3C"),
        ("税務システムから出した課税データ、ISMAP登録のクラウドAIで集計していい？", "条件付きで可", "3B"),
        ("住民記録のデータを無料のチャットAIに貼っていい？", "不可", "3B"),
        ("極秘文書をISMAP登録サービスの生成AIで要約していい？", "不可", "3A"),
        ("政策検討に関する情報をクラウドの生成AIに入れてもいい？", "条件付きで可", "2"),
        ("公表済みのプレスリリースを生成AIで要約していい？", "可", "1"),
        ("公表済みの資料を無料の生成AIで翻訳させていい？", "条件付きで可", "1"),
        ("白書の案を海外サーバの生成AIで校正していい？", "条件付きで可", "1"),
        ("３Ｃ情報をこのサービスに入れても大丈夫？", "判断できない", "3C"),
    ],
)
def test_verdicts_follow_the_table(engine, question, verdict, cls):
    r = engine.check(question)
    assert (r.verdict, r.class_) == (verdict, cls), r.reasons
    assert r.citations, "every verdict cites its rule"
    assert r.table_row is not None and r.table_row.class_id == cls


def test_unclear_service_shows_each_case_and_says_what_is_missing(engine):
    r = engine.check("3C情報をAIに入れていい？")
    assert r.verdict == "判断できない"
    assert any("サービスの種類" in m for m in r.missing)
    assert {c.verdict for c in r.cases} == {"条件付きで可", "不可"}


def test_information_in_no_class_is_not_guessed(engine):
    r = engine.check("これ、クラウドのAIに入れていい？")
    assert r.verdict == "判断できない" and r.class_ is None
    assert any("情報の種類" in m for m in r.missing)


def test_several_items_get_one_verdict_each(engine):
    r = engine.check("職員名簿と極秘文書を、インターネットの生成AIに入れていい？")
    verdicts = {i["class"]: i["verdict"] for i in r.items}
    assert verdicts == {"3C": "条件付きで可", "3A": "不可"}
    assert r.verdict == "不可"  # the most restrictive item decides


def test_no_bare_yes_for_class_two_or_above_and_3a_never_allowed(engine):
    services = ["ISMAP登録のクラウド", "インターネットの生成AI", "規約に同意するだけの無料AI", "LGWAN-ASPのAI", "海外サーバのAI", "生成AI"]
    infos = ["極秘文書", "住民記録のデータ", "入札予定価格", "政策検討に関する情報"]
    for info, svc in itertools.product(infos, services):
        r = engine.check(f"{info}を{svc}に入れていい？")
        assert r.verdict != "可", (info, svc)
        if r.verdict == "条件付きで可":
            assert r.conditions, (info, svc)
        if info == "極秘文書":
            assert r.verdict == "不可", svc


def test_citation_quotes_are_verbatim_spans_of_their_units(engine, searcher):
    r = engine.check("入札予定価格を海外サーバの無料AIに入れていい？")
    for c in r.citations:
        unit = searcher.get_units([c.unit_id], flt=QueryFilter.everything())[0]
        assert c.quote in unit["text"]


def test_check_question_detection(engine):
    assert engine.is_check_question("入札予定価格ってネットのAIに入れていい？")
    assert not engine.is_check_question("CAIOの役割は？")
    assert not engine.is_check_question("オプトアウトとは？")
    # Which information, asked in general, is the rule's list, not a verdict on one piece of information.
    assert not engine.is_check_question("生成AIに入れちゃダメな情報って何？")
    assert not engine.is_check_question("どんな情報ならクラウドのAIに入れていい？")
    assert not engine.is_check_question("ネットのAIに入れちゃダメな情報は？")
    assert engine.is_check_question("この会議資料をクラウドのAIに入れていい？")
    # Making something with the AI is not putting information into it.
    assert not engine.is_check_question("広報紙のカットを画像生成AIで作りたい。何が必要？")


def test_malformed_rules_stop_with_the_rule_named(tmp_path, lookup):
    text = DEFAULT_RULES.read_text(encoding="utf-8")
    bad_quote = tmp_path / "bad_quote.yaml"
    bad_quote.write_text(text.replace("極秘文書について、インターネットに接続していない", "極秘文書について、インターネットに接続している"), encoding="utf-8")
    with pytest.raises(RulesError) as err:
        load_rules(bad_quote, lookup_units=lookup)
    assert "class 3A" in err.value.message
    missing_unit = tmp_path / "missing_unit.yaml"
    yakkan_unit = load_rules().attribute("yakkan").unit_id
    missing_unit.write_text(text.replace(f"unit_id: {yakkan_unit}", "unit_id: mic-0000000000", 1), encoding="utf-8")
    with pytest.raises(RulesError) as err:
        load_rules(missing_unit, lookup_units=lookup)
    assert "attribute yakkan" in err.value.message and "mic-0000000000" in err.value.message
    broken = tmp_path / "broken.yaml"
    broken.write_text("classes: [unclosed", encoding="utf-8")
    with pytest.raises(RulesError):
        load_rules(broken)
    bare_yes = tmp_path / "bare_yes.yaml"
    bare_yes.write_text(text.replace("ismap: {verdict: 条件付きで可, reason: 機密性2は", "ismap: {verdict: 可, reason: 機密性2は"), encoding="utf-8")
    with pytest.raises(RulesError) as err:
        load_rules(bare_yes)
    assert "class 2" in err.value.message


def test_every_class_has_a_verdict_for_every_service_type():
    rules = load_rules(Path(DEFAULT_RULES))
    for c in rules.classes:
        for st in SERVICE_TYPES:
            assert c.verdict_for(st).verdict in ("可", "条件付きで可", "不可", "判断できない")


def test_the_engine_reloads_with_the_index_version(settings, units, tmp_path):
    """After a rebuild the verdict cites the new index's unit, never the text cached from the old one."""
    from index.build import build_index
    from index.embeddings import get_embedding_model
    from index.tokenizer import get_tokenizer
    from service.auth import SYSTEM
    from service.state import build_state

    s = settings.model_copy(update={"data_dir": tmp_path, "llm_backend": "none"})
    embed, tok = get_embedding_model(s), get_tokenizer()
    build_index(units, s, embed_model=embed, tokenizer=tok)
    state = build_state(s, load_llm=False)
    try:
        question = "入札予定価格を規約に同意するだけの無料AIに入れていい？"
        before = state.check_for(SYSTEM).check(question)
        old_version = state.check_engine.index_version
        cited = before.citations[0]
        revised = [
            u.model_copy(update={"line_start": u.line_start + 1000, "line_end": u.line_end + 1000}) if u.id == cited.unit_id else u
            for u in units
        ]
        build_index(revised, s, embed_model=embed, tokenizer=tok, force=True)
        after = state.check_for(SYSTEM).check(question)
        assert state.check_engine.index_version == state.searcher.index_version != old_version
        moved = next(c for c in after.citations if c.unit_id == cited.unit_id)
        assert moved.line_start == cited.line_start + 1000
    finally:
        state.close()


def test_a_caller_gets_only_the_rules_whose_units_they_may_see(engine):
    """Hidden units: their classes and attributes do not exist for that caller (documented in the engine)."""
    mic = {c.unit_id for c in engine.rules.classes}
    hidden = engine.restricted_to(lambda unit: unit["id"] not in mic)
    r = hidden.check("入札予定価格を規約に同意するだけの無料AIに入れていい？")
    assert r.verdict == "判断できない" and r.class_ is None and r.table_row is None
    assert not {c.unit_id for c in r.citations} & mic
    assert hidden.table() == []
    everything = engine.restricted_to(lambda unit: True)
    assert everything is engine and everything.check("入札予定価格を規約に同意するだけの無料AIに入れていい？").verdict == "不可"
    # One class hidden: the other classes still answer, the hidden one is not guessed.
    only_3c_hidden = engine.restricted_to(lambda unit: unit["id"] != engine.rules.class_by_id("3C").unit_id)
    assert only_3c_hidden.check("極秘文書をISMAP登録サービスの生成AIで要約していい？").verdict == "不可"
    assert only_3c_hidden.check("3C情報をISMAP登録サービスに入れていい？").class_ is None
    assert [r.class_id for r in only_3c_hidden.table()] == ["3A", "3B", "2", "1"]


def test_information_said_not_to_be_there_is_no_item(engine):
    said_absent = engine.check("入札予定価格は入れないので、無料の生成AIで挨拶文を作っていい？")
    assert said_absent.class_ is None and said_absent.information == []
    named = engine.check("入札予定価格を無料の生成AIに入れていい？")
    assert named.class_ == "3C" and named.verdict == "不可"


def test_a_word_counts_unless_the_asker_negates_it():
    from service.check.rules import mentions

    assert mentions("個人情報を入れていい?", "個人情報")
    assert not mentions("個人情報は入れないし", "個人情報")
    assert not mentions("氏名を含まない資料", "氏名")
    assert not mentions("約款型じゃなくて", "約款型")
    assert mentions("個人情報なしの表と個人情報ありの表", "個人情報")  # one occurrence still says it


def test_treat_as_belongs_to_a_rule_on_unknown_classes():
    from pydantic import ValidationError

    from service.check.policy import LocalPolicy

    rule = {"id": "r", "statement": "s", "verdict": "不可", "reason": "r", "cite": {"doc_id": "d", "label": "第1条", "quote": "入力しない"}}
    LocalPolicy(version=1, office="〇〇市", rules=[{**rule, "classes": ["unknown"], "treat_as": "2"}])
    with pytest.raises(ValidationError, match="treat_as"):
        LocalPolicy(version=1, office="〇〇市", rules=[{**rule, "classes": ["2"], "treat_as": "2"}])
