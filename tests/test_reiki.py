"""Rules (例規) read as 条・項・号: units, section paths, citation labels and document metadata.

Every rule here is invented (〇〇市, △△町, □□村 …); the layouts follow published 例規集 pages.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from ingest.cleaning import clean_lines, squash
from ingest.loaders import load_document
from ingest.models import DocumentMeta, Unit
from ingest.pipeline import DocumentReport, units_from_document
from ingest.reiki import ITEM_SPLIT_CHARS, detect_legal, kanji_number
from tests.conftest import CORPUS

FIXTURES = Path(__file__).parent / "data" / "reiki"
MARU = "〇〇市生成AI利用規程"
SANKAKU = "△△町職員の生成AI利用に関する規則"


def read(path: Path, title: str) -> tuple[list[Unit], DocumentReport]:
    meta = DocumentMeta(file=path.name, title=title, issuer="テスト", authority="binding", issuer_kind="municipality")
    return units_from_document(load_document(path, meta), meta)


def read_text(tmp_path: Path, text: str, title: str = "規程", name: str = "kitei.txt") -> tuple[list[Unit], DocumentReport]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return read(path, title)


def by_label(units: list[Unit]) -> dict[str, Unit]:
    found = {u.label: u for u in units if u.kind != "table_row"}
    assert len(found) == len([u for u in units if u.kind != "table_row"]), "labels must be unique"
    return found


@pytest.fixture(scope="module")
def maru():
    return read(FIXTURES / "maru_shi_kitei.txt", MARU)


@pytest.fixture(scope="module")
def sankaku():
    return read(FIXTURES / "sankaku_cho_kisoku.md", SANKAKU)


# ----------------------------------------------------------------------------- municipal style (txt)
MARU_PATHS = {
    "第1条": ["第1章 総則", "第1条（趣旨）"],
    "第2条": ["第1章 総則", "第2条（定義）"],
    "第2条第1号": ["第1章 総則", "第2条（定義）", "第1号"],
    "第2条第2号": ["第1章 総則", "第2条（定義）", "第2号"],
    "第2条第3号": ["第1章 総則", "第2条（定義）", "第3号"],
    "第3条第1項": ["第1章 総則", "第3条（基本原則）", "第1項"],
    "第3条第2項": ["第1章 総則", "第3条（基本原則）", "第2項"],
    "第3条第3項": ["第1章 総則", "第3条（基本原則）", "第3項"],
    "第3条の2": ["第1章 総則", "第3条の2（研修）"],
    "第4条": ["第2章 利用", "第1節 申請及び承認", "第4条（利用の申請）"],
    "第5条第1項": ["第2章 利用", "第1節 申請及び承認", "第5条（利用の申請）", "第1項"],
    "第5条第2項": ["第2章 利用", "第1節 申請及び承認", "第5条（利用の申請）", "第2項"],
    "第6条第1項": ["第2章 利用", "第2節 入力及び出力", "第6条（入力の制限）", "第1項"],
    "第6条第2項": ["第2章 利用", "第2節 入力及び出力", "第6条（入力の制限）", "第2項"],
    "第7条": ["第2章 利用", "第2節 入力及び出力", "第7条（出力の取扱い）"],
    "附則": ["附則"],
    "附則（令和7年3月28日訓令第5号）第1項": ["附則（令和7年3月28日訓令第5号）", "第1項（施行期日）"],
    "附則（令和7年3月28日訓令第5号）第2項": ["附則（令和7年3月28日訓令第5号）", "第2項（経過措置）"],
}


def test_every_article_paragraph_and_item_gets_its_label_and_path(maru):
    units, report = maru
    assert report.structure == "legal"
    assert {label: u.section_path[1:] for label, u in by_label(units).items()} == MARU_PATHS
    assert all(u.section_path[0] == MARU and u.doc_title == MARU for u in units)


def test_title_date_and_number_are_metadata_never_units(maru):
    units, report = maru
    assert (report.legal_title, report.enacted, report.number) == (MARU, "令和6年2月14日", "訓令第3号")
    assert all(u.doc_number == "訓令第3号" and u.doc_enacted == "令和6年2月14日" for u in units)
    assert all(u.authority == "binding" and u.issuer_kind == "municipality" for u in units)
    for u in units:
        assert not re.search(r"訓令第3号|令和6年2月14日|生成AI利用規程$", " ".join(u.section_path[1:])), u.section_path
        assert u.text.splitlines()[0] not in ("○〇〇市生成AI利用規程", "令和6年2月14日", "訓令第3号")
    # the 目次 is dropped: its entries carry article ranges
    assert not any("第1条―第3条の2" in u.text or "第4条・第5条" in u.text for u in units)
    assert report.noise_lines["table_of_contents"] == 6


def test_a_paragraph_keeps_its_proviso_and_starts_with_its_number(maru):
    units = by_label(maru[0])
    second = units["第3条第2項"]
    assert second.text.startswith("２　") or second.text.startswith("２ ")
    assert "ただし、誤字の修正その他軽微な用途に用いる場合は、この限りでない。" in second.text
    assert units["第3条第1項"].text.startswith("第3条")
    assert units["第3条の2"].text.startswith("第3条の2")


def test_definition_items_are_glossary_units_with_their_term(maru):
    units = by_label(maru[0])
    terms = {label: (u.kind, u.title) for label, u in units.items() if label.startswith("第2条第")}
    assert terms == {"第2条第1号": ("definition", "生成AI"), "第2条第2号": ("definition", "所属長"), "第2条第3号": ("definition", "機密情報")}
    assert units["第2条"].kind == "clause" and "次の各号に掲げる用語" in units["第2条"].text
    assert units["第2条第1号"].text.startswith("（１）")


def test_a_short_item_list_stays_inside_its_paragraph(maru):
    units = by_label(maru[0])
    first = units["第6条第1項"]
    lines = first.text.splitlines()
    assert lines[0].startswith("第6条") and [ln[:3] for ln in lines[1:]] == ["（１）", "（２）", "（３）", "（４）"]
    assert len(squash(first.text)) <= ITEM_SPLIT_CHARS


def test_a_caption_heads_the_captionless_article_after_it(maru):
    units = by_label(maru[0])
    assert units["第4条"].section_path[-1] == "第4条（利用の申請）"
    assert units["第5条第2項"].section_path[-2] == "第5条（利用の申請）"


def test_numbered_lines_are_never_headings(maru, sankaku):
    for units, _ in (maru, sankaku):
        for u in units:
            for segment in u.section_path[1:]:
                assert not re.match(r"^(?:[0-9０-９]|[(（][0-9０-９]|[一二三四五六七八九十] |[イロハ] )", segment), segment


def test_supplementary_provisions_and_appended_table(maru):
    units, _ = maru
    rows = [u for u in units if u.kind == "table_row"]
    assert [u.label for u in rows] == ["別表第1", "別表第1"]
    assert all(u.section_path[1:] == ["別表第1（第6条関係）"] for u in rows)
    assert rows[0].header == "区分 | 利用できる環境 | 入力できる情報"
    assert rows[0].row == "区分: 区分A | 利用できる環境: 庁内閉域の生成AI環境 | 入力できる情報: 機密性2以下の情報"
    suppl = by_label(units)
    assert suppl["附則"].text == "この訓令は、令和6年4月1日から施行する。"
    assert suppl["附則（令和7年3月28日訓令第5号）第2項"].title == "経過措置"


def test_unit_text_is_the_source_lines(maru):
    source = {squash(line) for line in (FIXTURES / "maru_shi_kitei.txt").read_text(encoding="utf-8").splitlines()}
    for u in maru[0]:
        for line in u.text.splitlines():
            assert squash(line) in source, line


# ----------------------------------------------------------------------------- national style (markdown)
def test_kanji_articles_items_and_iroha(sankaku):
    units, report = sankaku
    assert (report.enacted, report.number) == ("令和5年10月2日", "△△町規則第12号")
    found = by_label(units)
    assert set(found) == {"第1条", "第2条", "第3条第1項", "第3条第2項", "第4条", "第5条", "第5条の2", "附則"}
    assert found["第3条第1項"].section_path[1:] == ["第二章 遵守事項", "第3条（禁止行為）", "第1項"]
    items = found["第3条第1項"].text.splitlines()
    assert [ln.split(" ")[0] for ln in items[1:]] == ["一", "二", "三", "イ", "ロ"]
    assert found["第3条第2項"].text.startswith("２")
    assert found["第5条の2"].text.startswith("第五条の二")
    assert found["第2条"].kind == "definition" and found["第2条"].title == "生成AI"
    assert [u.label for u in units if u.kind == "table_row"] == ["別表", "別表"]


# ----------------------------------------------------------------------------- other layouts
COMPANY_STYLE = """\
☆☆市生成AI活用要領
令和7年1月10日
要領第2号
第1条（目的）
1. この要領は、☆☆市における生成AIの活用方針を定める。
2. 前項の方針は、毎年度見直すものとする。
（基本方針）
第2条
生成AIの活用は、次の方針に基づき行うものとする。
1 業務の効率化と職員の負担軽減
2 住民サービスの質の向上
3 情報の適正な管理
（報告）
第3条　職員は、生成AIの不適切な出力を発見したときは、所属長に報告しなければならない。
2
前項の報告を受けた所属長は、情報政策課長に通知するものとする。
(令8要領1・一部改正)
附則
この要領は、令和7年2月1日から施行する。
"""


def test_company_style_numbered_first_paragraph_bare_list_and_number_alone(tmp_path):
    units, report = read_text(tmp_path, COMPANY_STYLE, "☆☆市生成AI活用要領")
    found = by_label(units)
    assert set(found) == {"第1条第1項", "第1条第2項", "第2条", "第3条第1項", "第3条第2項", "附則"}
    assert found["第1条第1項"].section_path[1:] == ["第1条（目的）", "第1項"]
    # 「1 …」 after the article's own sentence is a list of 号, not 項 1
    assert found["第2条"].text.splitlines() == ["第2条 生成AIの活用は、次の方針に基づき行うものとする。", "1 業務の効率化と職員の負担軽減", "2 住民サービスの質の向上", "3 情報の適正な管理"]
    # a 項 number alone on its line (a page-number lookalike) is joined to its text
    assert found["第3条第2項"].text == "2 前項の報告を受けた所属長は、情報政策課長に通知するものとする。"
    assert report.noise_lines["amendment_note"] == 1
    assert not any("一部改正" in u.text for u in units)


PREFECTURE_PRELUDE = """\
○職員の生成AI利用手続規程
令和六年三月二十九日
◎◎県訓令甲第七号
庁中一般
各出先機関
職員の生成AI利用手続規程を次のように定め、令和六年四月一日から施行する。
職員の生成AI利用手続規程
（趣旨）
第一条　職員が生成AIを利用する手続については、別に定めるもののほか、この規程の定めるところによる。
（届出）
第二条　職員は、生成AIを初めて利用するときは、あらかじめ所属長に届け出なければならない。
（平成三十年訓令甲四・一部改正）
"""


def test_prefecture_prelude_number_with_prefix_and_promulgation_text(tmp_path):
    units, report = read_text(tmp_path, PREFECTURE_PRELUDE, "職員の生成AI利用手続規程")
    assert (report.number, report.enacted) == ("◎◎県訓令甲第7号", "令和6年3月29日")
    preamble = [u for u in units if not u.label]
    assert len(preamble) == 1 and preamble[0].kind == "paragraph" and preamble[0].section_path == ["職員の生成AI利用手続規程"]
    assert "次のように定め" in preamble[0].text and "職員の生成AI利用手続規程" not in preamble[0].text.splitlines()
    assert {u.label for u in units if u.label} == {"第1条", "第2条"}


def test_a_long_item_list_gives_one_unit_per_item(tmp_path):
    topics = ["入札及び契約", "職員の人事評価", "税の賦課及び徴収", "福祉サービスの利用者", "庁舎の警備体制", "情報システムの構成"]
    items = "".join(
        f"（{n}）　{topic}に関する情報であって、公表前のもの又は公表の予定がないもの（当該情報を加工し、又は要約して作成したものを含む。）\n"
        for n, topic in enumerate(topics, start=1)
    )
    text = (
        "○□□村生成AI入力基準\n令和7年4月1日\n告示第9号\n（目的）\n第1条　この告示は、生成AIに入力してはならない情報の基準を定める。\n"
        "（入力の禁止）\n第2条　職員は、生成AIに個人情報を入力してはならない。\n２　職員は、生成AIに次に掲げる情報を入力してはならない。\n"
        f"{items}（7）　村長指定\n"
    )
    units, _ = read_text(tmp_path, text, "□□村生成AI入力基準")
    found = by_label(units)
    assert found["第2条第2項"].text == "２ 職員は、生成AIに次に掲げる情報を入力してはならない。"
    assert found["第2条第2項"].section_path[1:] == ["第2条（入力の禁止）", "第2項"]
    for n in range(1, 7):
        unit = found[f"第2条第2項第{n}号"]
        assert unit.section_path[1:] == ["第2条（入力の禁止）", "第2項", f"第{n}号"]
        assert unit.kind == "clause" and unit.text.startswith(f"（{n}）")
    # 「(7) 村長指定」 alone would be a fragment: it stays with the 号 before it
    assert "第2条第2項第7号" not in found and found["第2条第2項第6号"].text.endswith("村長指定")


def test_a_rule_without_articles(tmp_path):
    text = "○◇◇町生成AI利用の指針\n令和7年6月2日\n告示第30号\n生成AIを業務に利用する職員は、機密性2以上の情報を入力しないこととする。\n附　則\nこの告示は、公布の日から施行する。\n"
    units, report = read_text(tmp_path, text, "◇◇町生成AI利用の指針")
    assert report.structure == "legal" and report.number == "告示第30号"
    assert [(u.label, u.section_path[1:], u.kind) for u in units] == [("", [], "paragraph"), ("附則", ["附則"], "clause")]


NUMBERED_HEADINGS = """\
○△△町生成AI利用要領
令和6年8月1日
総務課長決定
第1　趣旨
　この要領は、職員が業務において生成AIを利用する際に遵守すべき事項を定めるものとする。
第2　利用の手続
1　生成AIを利用しようとする職員は、所属長の承認を得なければならない。
2　所属長は、前項の承認をしたときは、総務課長に報告するものとする。
第3　入力の禁止
　職員は、次に掲げる情報を生成AIに入力してはならない。
(1)　個人情報
(2)　機密性2以上の情報
　ア　非公開の会議資料
　イ　入札に関する情報
第3の2　記録の保存
　総務課長は、利用記録を1年間保存する。
附　則
この要領は、令和6年8月1日から施行する。
"""


def test_a_rule_numbered_by_headings_reads_its_articles_paragraphs_and_items(tmp_path):
    # Many 要綱・要領 number their articles 「第1　趣旨」 with the 見出し beside the number.
    units, report = read_text(tmp_path, NUMBERED_HEADINGS, "△△町生成AI利用要領")
    assert report.structure == "legal"
    found = by_label(units)
    assert set(found) == {"第1", "第2第1項", "第2第2項", "第3", "第3の2", "附則"}
    assert found["第2第2項"].section_path[1:] == ["第2（利用の手続）", "第2項"]
    assert found["第3"].text.splitlines()[-2:] == ["ア 非公開の会議資料", "イ 入札に関する情報"]
    assert found["第3の2"].section_path[1:] == ["第3の2（記録の保存）"]
    assert not any(u.text.startswith("○") for u in units)


def test_a_report_with_numbered_chapters_is_not_a_rule(tmp_path):
    text = "生成AI活用の検討報告\n第1　はじめに\n本報告は検討の経過をまとめたものである。\n第2　現状\n導入団体は増えている。\n第3　課題\n人材が不足している。\n"
    _, report = read_text(tmp_path, text, "生成AI活用の検討報告")
    assert report.structure == "general"


def test_katakana_sub_items_of_a_guide_are_kept_under_their_item(tmp_path):
    # Not a rule: the general parser reads it; 「ア …」 once became a heading with nothing under it, and was lost.
    text = "〇〇市生成AI活用の手引き\n\n1　入力してはいけない情報\n　次の情報は入力しないでください。\n(1)　個人情報\n(2)　機密性2以上の情報\n　ア　非公開の会議資料\n　イ　入札に関する情報\n\n2　生成物の確認\n　生成物は必ず職員が確認してください。\n"
    units, report = read_text(tmp_path, text, "〇〇市生成AI活用の手引き")
    assert report.structure == "general"
    joined = "\n".join(u.text for u in units)
    assert "ア 非公開の会議資料" in joined and "イ 入札に関する情報" in joined
    assert not any("会議資料" in seg for u in units for seg in u.section_path)


# ----------------------------------------------------------------------------- detection and fallback
def test_the_bundled_guidelines_are_not_read_as_rules(ingest_result):
    for report in ingest_result.reports:
        assert report.structure == "general", report.file
        text = (CORPUS / report.file).read_text(encoding="utf-8")
        assert detect_legal(clean_lines(text).lines) == "none", report.file
    assert all(u.label == "" for u in ingest_result.units)


def test_an_unreadable_rule_falls_back_to_paragraphs_with_a_warning(tmp_path, caplog):
    text = "○〇〇市生成AI試行要領\n令和7年5月1日\n要領第4号\n生成AIの試行は、情報政策課が選んだ職員が行う。\n試行の期間は、令和7年度末までとする。\n"
    with caplog.at_level(logging.WARNING, logger="ingest.reiki"):
        units, report = read_text(tmp_path, text, "〇〇市生成AI試行要領", name="shiko.txt")
    assert report.structure == "general" and units
    assert any("shiko.txt" in r.getMessage() and "構造を認識できません" in r.getMessage() for r in caplog.records)


def test_two_articles_are_enough_and_references_are_not_articles():
    def detected(text: str) -> str:
        return detect_legal(clean_lines(text).lines)

    assert detected("第1条　この要綱は、目的を定める。\n第2条　この要綱は、公布の日から施行する。\n") == "legal"
    assert detected("第3条の規定により申請する。\n第5条に定める手続による。\n") == "none"
    assert detected("第1条　ひとつだけの条。\n") == "none"


@pytest.mark.parametrize("token,value", [("1", 1), ("１２", 12), ("十", 10), ("十二", 12), ("二十", 20), ("百五", 105), ("一〇五", 105), ("条", None)])
def test_kanji_numbers(token, value):
    assert kanji_number(token) == value


def test_kanji_counts_compare_as_numbers_and_other_kanji_stay():
    from ingest.cleaning import arabic_counts

    assert arabic_counts("その記録を五年間保存する") == "その記録を5年間保存する"
    assert arabic_counts("研修を年二回以上、令和七年四月一日から") == "研修を年2回以上、令和7年4月1日から"
    assert arabic_counts("一部を改正し、十分に確認する") == "一部を改正し、十分に確認する"
