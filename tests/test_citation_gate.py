"""The citation gate decides what reaches the user; these are the cases it must get right."""

from __future__ import annotations

from index.tokenizer import get_tokenizer
from service.answer.gate import split_sentences, verify_answer
from service.answer.prompt import SYSTEM_PROMPT

OPT_OUT = "オプトアウト\t利用者が入力したデータがAIの再学習に利用されないよう設定すること"
COUNTS = "1. 利用開始済み\t212\t30\t30\t2\t8\t282"


def gate(answer, sources=None):
    return verify_answer(answer, sources or {1: OPT_OUT, 2: COUNTS}, get_tokenizer())


def test_sentences_keep_the_marks_that_follow_them():
    assert split_sentences("Aです。[1]Bです[2]。") == [("Aです。", [1]), ("Bです。", [2])]


def test_supported_sentence_with_its_citation_is_kept():
    r = gate("オプトアウトとは、入力したデータがAIの再学習に利用されないよう設定することです。[1]")
    assert [s.cites for s in r.sentences] == [[1]] and not r.removed


def test_citation_to_a_clause_that_was_not_given_is_removed():
    r = gate("オプトアウトとは、入力したデータが再学習に利用されない設定です。[7]")
    assert not r.sentences and r.removed[0][1] == "unknown_citation"


def test_unsupported_claim_is_removed_even_with_a_citation():
    r = gate("生成AIの導入には必ず国の許可が必要で、違反すると罰金が科されます。[1]")
    assert not r.sentences and r.removed[0][1] == "not_supported"


def test_numbers_must_appear_in_the_cited_clause():
    ok = gate("利用開始済みは282件です。[2]")
    bad = gate("利用開始済みは383件です。[2]")
    assert ok.sentences and not bad.sentences


def test_a_figure_no_clause_has_is_reported_as_invented():
    r = gate("次回の報告は令和9年3月31日に公表されます。[1]")
    assert not r.sentences and r.removed[0][1] == "invented_number"


def test_uncited_but_supported_sentence_gets_its_citation():
    r = gate("入力したデータがAIの再学習に利用されないよう設定することをオプトアウトといいます。")
    assert r.sentences[0].cites == [1]


def test_uncited_unsupported_sentence_is_removed():
    r = gate("詳しくは担当課にお問い合わせください。")
    assert not r.sentences and r.removed[0][1] == "no_citation"


def test_wrong_number_of_the_given_clauses_is_corrected_when_another_supports_it():
    r = gate("オプトアウトとは、入力したデータがAIの再学習に利用されないよう設定することです。[2]")
    assert r.sentences and r.sentences[0].cites == [1]


def test_abstention_phrase_is_recognised():
    assert gate("ガイドラインに記載が見つかりませんでした。").abstained


def test_system_prompt_echo_is_removed():
    leaked = SYSTEM_PROMPT.split("\n")[2]
    r = gate(leaked + "[1]")
    assert not r.sentences and r.removed and r.removed[0][1] in ("prompt_leak", "not_supported")


def test_quote_fallback_picks_the_verbatim_sentence_that_answers():
    from service.answer.prompt import best_sentence

    text = "- 全府省庁において、生成AIシステムを利用開始済み\n- 令和7年12月末時点まで、リスクケースの発生事例はなし"
    terms = set(get_tokenizer().tokens("R7年12月末までにリスクケースって起きてる？", query=True))
    quote = best_sentence(text, terms, get_tokenizer())
    assert quote == "令和7年12月末時点まで、リスクケースの発生事例はなし" and quote in text
    assert best_sentence(text, set(get_tokenizer().tokens("天気")), get_tokenizer()) is None
