"""The same rules through every loader: a 例規集 HTML page, a PDF with page furniture and
lines broken mid-sentence, and a Word file whose numbers are automatic (``w:numPr``)."""

from __future__ import annotations

from pathlib import Path

import docx
import pytest
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls, qn

from ingest.cleaning import squash
from ingest.loaders import read_text
from tests.data.reiki.japanese_pdf import japanese_pdf, wrap
from tests.test_reiki import MARU, MARU_PATHS, by_label, read

FIXTURES = Path(__file__).parent / "data" / "reiki"


# ----------------------------------------------------------------------------- HTML 例規集 page
@pytest.fixture(scope="module")
def shikaku():
    return read(FIXTURES / "shikaku_son_yoko.html", "□□村生成AI活用要綱")


def test_html_page_articles_items_and_paragraphs(shikaku):
    units, report = shikaku
    assert (report.structure, report.legal_title, report.enacted, report.number) == ("legal", "□□村生成AI活用要綱", "令和6年9月30日", "告示第45号")
    found = by_label(units)
    assert {label: u.section_path[1:] for label, u in found.items()} == {
        "第1条": ["第1条（趣旨）"],
        "第2条": ["第2条（定義）"],
        "第2条第1号": ["第2条（定義）", "第1号"],
        "第2条第2号": ["第2条（定義）", "第2号"],
        "第3条第1項": ["第3条（情報の漏えいの防止）", "第1項"],
        "第3条第2項": ["第3条（情報の漏えいの防止）", "第2項"],
        "第3条第3項": ["第3条（情報の漏えいの防止）", "第3項"],
        "第4条": ["第4条（補則）"],
        "附則": ["附則"],
        "附則（令和7年3月31日告示第12号）": ["附則（令和7年3月31日告示第12号）"],
    }
    assert [(u.kind, u.title) for u in (found["第2条第1号"], found["第2条第2号"])] == [("definition", "生成AI"), ("definition", "プロンプト")]


def test_html_number_elements_links_and_ruby_read_as_the_page_shows_them(shikaku):
    found = by_label(shikaku[0])
    # 「<span>第２条</span><span>この告示…」 has no space in the markup
    assert found["第2条"].text.startswith("第２条 この告示において")
    # a source line break inside a sentence is no space; a link's text stays in its sentence
    assert found["第1条"].text == "第１条 この告示は、□□村における生成AIの活用に関し、必要な事項を定めるものとする。"
    assert "□□村個人情報保護条例の規定を遵守" in found["第3条第1項"].text
    assert "ろう" not in found["第3条第1項"].section_path[-2]
    assert "ただし、緊急の必要があるときは" in found["第3条第2項"].text
    text = read_text(FIXTURES / "shikaku_son_yoko.html")
    assert "例規集トップ" not in text and "印刷" not in text and "fileDownloadAction2" not in text
    assert not any("一部改正" in u.text for u in shikaku[0])


def test_html_table_becomes_rows_with_header(shikaku):
    rows = [u for u in shikaku[0] if u.kind == "table_row"]
    assert [(u.label, u.row) for u in rows] == [("別表第1", "利用区分: 庁内業務 | 承認者: 所属長"), ("別表第1", "利用区分: 住民向けの公表 | 承認者: 村長")]
    assert all(u.section_path[1:] == ["別表第1（第3条関係）"] for u in rows)


# ----------------------------------------------------------------------------- PDF
@pytest.fixture(scope="module")
def maru_pdf(tmp_path_factory):
    """The 〇〇市 rule as a 3-page PDF: lines wrapped at 30 characters, a running header,
    「- n -」 footers, and the 別表 as plain text (a PDF table has no cell markers)."""
    source = (FIXTURES / "maru_shi_kitei.txt").read_text(encoding="utf-8").splitlines()
    lines = [ln.strip("| ").replace(" | ", "　") for ln in source if ln.strip() and not ln.startswith("|---")]
    visual = wrap(lines, 30)
    pages = [visual[i : i + 36] for i in range(0, len(visual), 36)]
    path = tmp_path_factory.mktemp("pdf") / "maru_shi_kitei.pdf"
    path.write_bytes(japanese_pdf(pages, header=MARU))
    return path, len(pages)


def test_pdf_page_furniture_is_removed(maru_pdf):
    path, pages = maru_pdf
    assert pages >= 3
    text = read_text(path)
    assert "- 1 -" not in text and "- 2 -" not in text
    assert text.splitlines()[0] == "○〇〇市生成AI利用規程"  # the running header went, the title line stayed


def test_pdf_gives_the_same_units_as_the_text_file(maru_pdf):
    units, report = read(maru_pdf[0], MARU)
    txt = by_label(read(FIXTURES / "maru_shi_kitei.txt", MARU)[0])
    found = by_label([u for u in units if not u.label.startswith("別表")])
    assert {label: u.section_path[1:] for label, u in found.items()} == MARU_PATHS
    for label, unit in found.items():
        # lines broken mid-sentence are joined back: the text is the text file's, byte for byte
        assert unit.text == txt[label].text, label
    assert report.number == "訓令第3号"
    appendix = [u for u in units if u.label == "別表第1"]
    assert len(appendix) == 1 and appendix[0].kind == "paragraph" and "区分A" in appendix[0].text and "区分B" in appendix[0].text


# ----------------------------------------------------------------------------- Word with automatic numbering
def _numbered_document(levels: list[tuple[str, str, int]]) -> tuple[docx.Document, str]:
    document = docx.Document()
    numbering = document.part.numbering_part.element
    lvls = "".join(
        f'<w:lvl w:ilvl="{i}"><w:start w:val="{start}"/><w:numFmt w:val="{fmt}"/><w:lvlText w:val="{text}"/></w:lvl>'
        for i, (fmt, text, start) in enumerate(levels)
    )
    abstract = parse_xml(f'<w:abstractNum {nsdecls("w")} w:abstractNumId="90">{lvls}</w:abstractNum>')
    first_num = numbering.find(qn("w:num"))
    if first_num is not None:
        first_num.addprevious(abstract)  # the schema wants every abstractNum before the nums
    else:
        numbering.append(abstract)
    numbering.append(parse_xml(f'<w:num {nsdecls("w")} w:numId="90"><w:abstractNumId w:val="90"/></w:num>'))
    return document, "90"


def _numbered(document: docx.Document, text: str, level: int, num_id: str = "90") -> None:
    paragraph = document.add_paragraph(text)
    paragraph._p.get_or_add_pPr().append(
        parse_xml(f'<w:numPr {nsdecls("w")}><w:ilvl w:val="{level}"/><w:numId w:val="{num_id}"/></w:numPr>')
    )


@pytest.fixture(scope="module")
def word_rule(tmp_path_factory):
    # 条 「第%1条」, 項 「%2」 starting at 2 (the first 項 has no number), 号 「(%3)」 full width, イロハ.
    document, _ = _numbered_document([("decimal", "第%1条", 1), ("decimal", "%2", 2), ("decimalFullWidth", "（%3）", 1), ("iroha", "%4", 1)])
    for text in ("○◇◇市生成AI運用規程", "令和7年5月1日", "訓令第8号", "（目的）"):
        document.add_paragraph(text)
    _numbered(document, "この訓令は、生成AIの運用に関し必要な事項を定める。", 0)
    _numbered(document, "前項の運用は、情報政策課が行う。", 1)
    document.add_paragraph("（遵守事項）")
    _numbered(document, "職員は、次に掲げる事項を守らなければならない。", 0)
    _numbered(document, "出力の内容を確認すること。", 2)
    _numbered(document, "次の情報を入力しないこと。", 2)
    _numbered(document, "個人情報", 3)
    _numbered(document, "非公開の会議資料", 3)
    _numbered(document, "前項の規定に違反した職員は、所属長に報告しなければならない。", 1)
    _numbered(document, "所属長は、前項の報告を受けたときは、情報政策課長に通知する。", 1)
    document.add_paragraph("附則")
    document.add_paragraph("この訓令は、令和7年6月1日から施行する。")
    path = tmp_path_factory.mktemp("docx") / "kitei.docx"
    document.save(path)
    return path


def test_word_automatic_numbers_reach_the_text(word_rule):
    lines = read_text(word_rule).splitlines()
    for line in ("第1条 この訓令は、生成AIの運用に関し必要な事項を定める。", "2 前項の運用は、情報政策課が行う。", "（１） 出力の内容を確認すること。", "ﾛ 非公開の会議資料", "3 所属長は、前項の報告を受けたときは、情報政策課長に通知する。"):
        assert line in lines, line


def test_word_rule_units_and_labels(word_rule):
    units, report = read(word_rule, "◇◇市生成AI運用規程")
    assert (report.structure, report.number, report.enacted) == ("legal", "訓令第8号", "令和7年5月1日")
    found = by_label(units)
    assert {label: u.section_path[1:] for label, u in found.items()} == {
        "第1条第1項": ["第1条（目的）", "第1項"],
        "第1条第2項": ["第1条（目的）", "第2項"],
        "第2条第1項": ["第2条（遵守事項）", "第1項"],
        "第2条第2項": ["第2条（遵守事項）", "第2項"],
        "第2条第3項": ["第2条（遵守事項）", "第3項"],
        "附則": ["附則"],
    }
    assert [squash(line)[:3] for line in found["第2条第1項"].text.splitlines()[1:]] == ["(1)", "(2)", "イ個人", "ロ非公"]


@pytest.mark.parametrize(
    "fmt,text,expected",
    [("japaneseCounting", "%1", ["一 a", "二 b", "十一 k"]), ("aiueoFullWidth", "%1", ["ア a", "イ b", "サ k"]), ("decimalEnclosedParen", "%1", ["⑴ a", "⑵ b", "⑾ k"])],
)
def test_word_number_formats(tmp_path, fmt, text, expected):
    document, _ = _numbered_document([(fmt, text, 1)])
    for letter in "abcdefghijk":
        _numbered(document, letter, 0)
    path = tmp_path / "formats.docx"
    document.save(path)
    lines = [ln for ln in read_text(path).splitlines() if ln]
    assert [lines[0], lines[1], lines[10]] == expected
