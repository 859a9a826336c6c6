"""Answers composed from the documents' structure, on the real corpus and a real Qdrant Edge shard."""

from __future__ import annotations

import pytest

from index.store import QueryFilter
from index.tokenizer import get_tokenizer
from ingest.cleaning import squash
from service.answer.compose import Composer

PUBLIC = QueryFilter(access=["public"])


@pytest.fixture(scope="module")
def composer(searcher):
    return Composer(searcher, get_tokenizer())


def _verbatim(piece) -> bool:
    if piece.unit["kind"] == "table_row" or piece.role == "definition":
        # Rows are shown cell by cell: every cell shown is a cell of the row.
        cells = [c.split(": ", 1)[-1] for c in piece.text.split(" / ")]
        return all(squash(c) in squash(piece.unit["text"] + (piece.unit.get("row") or "")) for c in cells)
    return piece.text.rstrip("…") in piece.unit["text"] or squash(piece.text.rstrip("…")) in squash(piece.unit["text"])


def test_a_named_section_is_listed_whole_in_document_order(composer):
    [part] = composer.compose("都の職員内部業務で、情報検索・定型業務補助の設計開発フェーズの必須事項は？", flt=PUBLIC)
    assert part.shape == "enumeration" and part.covered
    items = [p for p in part.pieces if p.role == "item"]
    assert part.total == len(items) == 5
    assert all("[必須]" in p.text for p in items)
    lines = [p.unit["line_start"] for p in items]
    assert lines == sorted(lines)
    assert all("設計開発" in p.unit["section_path"] for p in items)


def test_a_list_is_called_required_only_when_its_items_are_marked_so(composer):
    # The phase description under 「フェーズ > 設計開発」 marks none of its lines [必須]: the heading must not say so.
    [part] = composer.compose("東京都のガイドラインの設計開発フェーズの必須事項は？", flt=PUBLIC)
    marked = [p for p in part.pieces if "必須" in (p.unit.get("tags") or [])]
    assert ("[必須]" in part.heading) == bool(marked)


def test_the_most_specific_sections_named_decide_the_list(composer):
    # 「都民サービス関連業務」+「運用」 (the domain's checklist) over 「フェーズ」+「運用」 (the process description).
    [part] = composer.compose("都民サービス関連業務の運用フェーズの必須事項は？", flt=PUBLIC)
    assert "[必須]" in part.heading and part.total >= 2
    assert all("都民サービス関連業務" in "".join(p.unit["section_path"]) for p in part.pieces)


def test_a_definition_is_the_glossary_entry(composer):
    [part] = composer.compose("オプトアウトって何のこと？", flt=PUBLIC)
    assert part.shape == "definition" and part.pieces[0].role == "definition"
    assert "再学習に利用されない" in part.pieces[0].text


def test_a_figure_is_the_sentence_or_row_holding_it(composer):
    [part] = composer.compose("府省庁内全体で生成AI使い始めてるところって、いま何府省庁ある？", flt=PUBLIC)
    assert part.shape == "figure" and "18府省庁" in squash(part.pieces[0].text)


def test_a_price_nobody_wrote_down_is_not_covered(composer):
    [part] = composer.compose("国・地方AI共通サービスの自治体負担金、1団体あたり年間いくら？", flt=PUBLIC)
    assert not part.covered and all(p.role == "nearest" for p in part.pieces)


def test_a_figure_about_something_else_does_not_answer_a_one_word_question(composer):
    # The corpus holds hours (年間労働時間 in a table) but none about training: 「研修」 is the topic.
    [part] = composer.compose("研修は何時間？", flt=PUBLIC)
    assert not part.covered


def test_each_part_of_a_two_part_question_is_answered_on_its_own(composer):
    parts = composer.compose("オプトアウトとは？また、源内ってどこのモデル使ってるの？", flt=PUBLIC)
    assert [p.shape for p in parts] == ["definition", "open_fact"]
    assert all(p.covered for p in parts)
    assert "Claude" in " ".join(p.text for p in parts[1].pieces)


def test_a_place_with_no_document_is_not_covered(composer):
    [part] = composer.compose("大阪府の生成AIガイドラインだと3C情報の扱いってどうなってる？", flt=PUBLIC)
    assert not part.covered and any("大阪府" in n for n in part.notes)


@pytest.mark.parametrize(
    "question",
    [
        "都民サービス関連業務の判断支援で、設計開発フェーズの必須項目と推奨項目は？",
        "生成AIの回答をそのまま使っていい？",
        "利用廃止になった案件って合計何件？",
        "CAIOって国ではどういう役割？",
    ],
)
def test_every_piece_is_a_verbatim_span_of_the_unit_it_cites(composer, question):
    for part in composer.compose(question, flt=PUBLIC):
        for piece in part.pieces:
            assert _verbatim(piece), (piece.text, piece.unit["text"])


def test_nothing_outside_the_callers_access_is_read(composer):
    nobody = QueryFilter(access=["no-such-group"])
    parts = composer.compose("都の職員内部業務で、情報検索・定型業務補助の設計開発フェーズの必須事項は？", flt=nobody)
    assert all(not p.pieces for p in parts)


def test_a_proviso_is_read_with_the_sentence_it_qualifies():
    from service.answer.compose import _sentence_before
    from service.answer.polarity import polarity

    text = "3 約款型サービスは、許可サービスとすることができない。ただし、翻訳の用途に限り、CIOが特に認めたものについては、この限りでない。"
    proviso = "ただし、翻訳の用途に限り、CIOが特に認めたものについては、この限りでない。"
    assert _sentence_before(text, proviso).startswith("3 約款型サービスは")
    assert polarity(proviso) == {"condition"}  # alone it still says the rule has an exception
