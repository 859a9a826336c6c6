"""Which documents a question names, learned from the documents themselves (no fixed list)."""

from __future__ import annotations

import pytest

from index.naming import DocumentInfo, named_documents
from index.tokenizer import get_tokenizer

TOWN = DocumentInfo("town", "〇〇町生成AIの利用に関する要綱", "〇〇町", "municipality", "binding")
TOKYO = DocumentInfo("tokyo", "東京都 AI導入・活用ガイドライン", "東京都デジタルサービス局", "prefecture", "guidance")
DOCS = {d.doc_id: d for d in (TOWN, TOKYO)}


@pytest.mark.parametrize("question", ["町だと何が必要？", "町の研修って何時間？", "うちの町では使える？", "本町の要綱では？", "この資料を町のAIに入れていい？"])
def test_staff_of_a_town_saying_town_mean_their_own_rules(question):
    named = named_documents(question, DOCS)
    assert named.own_office and named.doc_ids == ["town"]


@pytest.mark.parametrize("question", ["市の規程では使える？", "市町村の取組は？", "町民からの相談メールは？", "横浜市の規程では？"])
def test_another_kind_of_body_or_a_word_containing_town_is_not_the_office(question):
    assert not named_documents(question, DOCS).own_office


def test_a_bare_town_still_leaves_what_is_asked_as_the_topic():
    named = named_documents("町だと画像の生成に何が必要？", DOCS)
    assert "町だと" not in named.topic("町だと画像の生成に何が必要？")


def test_everyday_latin_shorthand_is_not_a_name_the_corpus_must_know():
    # 「OK」「HP」 are how staff write, not products or places; a three-letter name still is.
    terms = get_tokenizer().entity_terms("国の資料だと条件付きでOKってなってた。HPに載せていい？Copilotは？")
    assert "ok" not in terms and "hp" not in terms and "copilot" in terms


def test_everyday_it_words_in_latin_letters_are_not_unknown_names():
    # 「SNS」「PDF」 are kinds of thing: a rule that says 「町民向けの媒体」 still answers about SNS.
    terms = get_tokenizer().entity_terms("AIで作った画像を町のSNSに載せたい。PDFで配るのは？DeepSeekは？")
    assert "sns" not in terms and "pdf" not in terms and "deepseek" in terms
