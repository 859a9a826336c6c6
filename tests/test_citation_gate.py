"""The gate decides what of the model's words reach the user; these are the cases it must get right."""

from __future__ import annotations

import pytest

from index.tokenizer import get_tokenizer
from service.answer.lead import apply_lead, check_lead, parse_lead
from service.answer.compose import ComposedPart, Piece
from service.answer.gate import check_statement, split_sentences
from service.answer.polarity import contradicts, polarity

OPT_OUT = "オプトアウト\t利用者が入力したデータがAIの再学習に利用されないよう設定すること"
COUNTS = "1. 利用開始済み\t212\t30\t30\t2\t8\t282"
BAN = "職員は、機密性2以上の情報を生成AIに入力してはならない。"
ALLOW_IF = "自治体機密性3C情報は、β'モデルの対策を実施することで、インターネット接続系における取扱いが可能"


def test_sentences_keep_the_marks_that_follow_them():
    assert split_sentences("Aです。[1]Bです[2]。") == [("Aです。", [1]), ("Bです。", [2])]


def test_supported_statement_passes():
    r = check_statement(get_tokenizer(), "オプトアウトとは、入力したデータがAIの再学習に利用されないよう設定することです。", OPT_OUT)
    assert r.supported and r.reason == "supported"


def test_unsupported_claim_fails():
    r = check_statement(get_tokenizer(), "生成AIの導入には必ず国の許可が必要で、違反すると罰金が科されます。", OPT_OUT)
    assert not r.supported and r.reason == "not_supported"


def test_numbers_must_appear_in_the_source():
    assert check_statement(get_tokenizer(), "利用開始済みは282件です。", COUNTS).supported
    assert check_statement(get_tokenizer(), "利用開始済みは383件です。", COUNTS).reason == "number_missing"


def test_a_statement_permitting_what_the_source_forbids_fails():
    r = check_statement(get_tokenizer(), "機密性2以上の情報を生成AIに入力できる。", BAN)
    assert not r.supported and r.reason == "contradicts"


@pytest.mark.parametrize(
    "text,stance",
    [
        (BAN, {"forbid"}),
        ("職員は、利用する前に所属長の承認を得なければならない。", {"oblige", "condition"}),
        ("個人情報を入力しないこと。", {"forbid"}),
        ("判断できない", set()),
        ("不可欠である", set()),
        (ALLOW_IF, {"permit", "condition"}),
        ("原則として禁止する。ただし、所属長の承認を得た場合はこの限りでない。", {"forbid", "condition"}),
    ],
)
def test_polarity_of_rule_wording(text, stance):
    assert polarity(text) == stance


def test_contradiction_in_both_directions_and_overstatement():
    assert contradicts("はい、入力できます。", BAN)
    assert contradicts("いいえ、扱えません。", "要機密情報を取り扱うことができる。")
    assert contradicts("はい、使えます。", "原則として禁止する。ただし、承認を得た場合に限り利用できる。")
    assert not contradicts("はい、条件付きで可能です。", ALLOW_IF)
    assert not contradicts("5項目あります。", BAN)


def test_lead_gate_keeps_a_consistent_conclusion_and_drops_the_rest():
    tok = get_tokenizer()
    assert check_lead(tok, "いいえ、機密性2以上の情報は入力できません。", [BAN]) == (True, "supported")
    assert check_lead(tok, "はい、機密性2の情報も入力できます。", [BAN])[1] == "contradicts"
    assert check_lead(tok, "ガイドラインに記載が見つかりませんでした。", [BAN])[1] == "abstain"
    assert check_lead(tok, "令和9年から入力できなくなります。", [BAN])[1] == "invented_number"
    assert check_lead(tok, "いいえ。入力は禁止です。罰則もあります。", [BAN])[1] == "too_long"
    assert check_lead(tok, "いいえ、情報政策課の許可と年次監査が要ります。", [BAN])[1] == "not_supported"


@pytest.mark.parametrize("raw", ["", "はい", "{\"choice\": [1]}", "[1, 2]", "{\"lead\": 3}"])
def test_a_reply_that_does_not_parse_gives_no_lead(raw):
    assert parse_lead(raw) is None


def _part(shape: str) -> ComposedPart:
    unit = {"id": "u1", "doc_title": "〇〇市規程", "section_path": ["〇〇市規程", "第5条"], "text": BAN, "kind": "clause"}
    other = {**unit, "id": "u2", "text": "生成AIの利用に当たっては、所属長の承認を得るものとする。"}
    pieces = [Piece(unit, BAN, role="rule"), Piece(other, other["text"], role="rule")]
    return ComposedPart(question="機密性2を入れていい？", shape=shape, covered=True, pieces=list(pieces))


def test_an_unparsed_reply_leaves_the_pieces_and_no_lead():
    part = _part("may_i")
    before = [p.unit_id for p in part.pieces]
    assert apply_lead(part, parse_lead("not json"), get_tokenizer()) == "unparsed"
    assert [p.unit_id for p in part.pieces] == before and part.lead is None and part.covered


def test_a_gated_lead_is_attached_and_the_pieces_stay():
    part = _part("may_i")
    before = [p.unit_id for p in part.pieces]
    reason = apply_lead(part, parse_lead('{"lead": "いいえ、機密性2以上の情報は入力できません。"}'), get_tokenizer())
    assert reason is None and part.lead.startswith("いいえ") and [p.unit_id for p in part.pieces] == before


def test_a_lead_contradicting_the_pieces_is_dropped():
    part = _part("may_i")
    assert apply_lead(part, parse_lead('{"lead": "はい、機密性2の情報も入力できます。"}'), get_tokenizer()) == "contradicts"
    assert part.lead is None


def test_only_may_i_answers_get_a_lead():
    part = _part("open_fact")
    apply_lead(part, parse_lead('{"lead": "機密性2以上の情報は入力してはならない。"}'), get_tokenizer())
    assert part.lead is None
