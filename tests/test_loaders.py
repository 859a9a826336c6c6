"""Loaders for the formats offices hold, on small files the tests generate."""

from __future__ import annotations

import json

import pytest

from guideqa.errors import DocumentLoadError, ManifestError
from ingest.loaders import read_text
from ingest.manifest import load_manifest
from ingest.pipeline import ingest_corpus


def _minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with Helvetica text, written by hand (no PDF writer needed)."""
    content = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({t}) Tj T*" for t in lines) + " ET"
    objs = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_pdf_text_is_extracted(tmp_path):
    path = tmp_path / "policy.pdf"
    path.write_bytes(_minimal_pdf(["Security policy", "Confidential data must not be entered."]))
    text = read_text(path)
    assert "Security policy" in text and "must not be entered" in text


def test_docx_headings_lists_and_tables_become_markdown(tmp_path):
    import docx

    d = docx.Document()
    d.add_heading("生成AI利用規程", level=1)
    d.add_heading("第1条 目的", level=2)
    d.add_paragraph("この規程は、生成AIの安全な利用について定める。")
    d.add_paragraph("機密情報を入力しないこと", style="List Bullet")
    t = d.add_table(rows=2, cols=2)
    t.cell(0, 0).text, t.cell(0, 1).text = "区分", "取扱い"
    t.cell(1, 0).text, t.cell(1, 1).text = "機密性3", "入力禁止"
    path = tmp_path / "rules.docx"
    d.save(path)
    text = read_text(path)
    assert "# 生成AI利用規程" in text and "## 第1条 目的" in text
    assert "- 機密情報を入力しないこと" in text
    assert "| 機密性3 | 入力禁止 |" in text


def test_html_block_elements_become_lines(tmp_path):
    path = tmp_path / "reiki.html"
    path.write_text(
        "<body><div><div>（目的）</div><div><span>第１条</span><span>この規程は、生成AIの利用について\n定める。</span></div>"
        "<div>本文<div>入れ子</div>続き<br>改行の後</div></div></body>",
        encoding="utf-8",
    )
    assert [ln for ln in read_text(path).splitlines() if ln] == ["（目的）", "第１条 この規程は、生成AIの利用について定める。", "本文", "入れ子", "続き", "改行の後"]


def test_pdf_page_numbers_and_running_headers_are_removed(tmp_path):
    from tests.data.reiki.japanese_pdf import japanese_pdf

    path = tmp_path / "kitei.pdf"
    path.write_bytes(japanese_pdf([["第1条　この規程は、生成AIの利用について定める。"], ["第2条　職員は、所属長の承認を得なければならない。"]], header="〇〇市生成AI利用規程"))
    assert [ln for ln in read_text(path).splitlines() if ln] == ["第1条　この規程は、生成AIの利用について定める。", "第2条　職員は、所属長の承認を得なければならない。"]


def test_html_keeps_structure_and_drops_navigation(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><body><nav>ホーム | サイトマップ</nav><h1>AI利用の手引き</h1><h2>入力の注意</h2>"
        "<p>個人情報は入力しないでください。</p><ul><li>氏名</li><li>住所</li></ul>"
        "<table><tr><th>用語</th><th>説明</th></tr><tr><td>RAG</td><td>検索拡張生成</td></tr></table>"
        "<script>alert(1)</script></body></html>",
        encoding="utf-8",
    )
    text = read_text(path)
    assert "# AI利用の手引き" in text and "## 入力の注意" in text
    assert "- 氏名" in text and "| RAG | 検索拡張生成 |" in text
    assert "サイトマップ" not in text and "alert" not in text


@pytest.mark.parametrize(
    "name,content,needle",
    [
        ("empty.md", b"   \n", "空"),
        ("binary.txt", b"\x00\x01\x02PK\x00", "バイナリ"),
        ("sheet.xlsx", b"PK\x03\x04", "対応していない"),
        ("broken.pdf", b"%PDF-1.4 this is not a pdf", "PDF"),
        ("broken.docx", b"not a zip", "DOCX"),
    ],
)
def test_bad_files_are_reported_by_name(tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DocumentLoadError) as err:
        read_text(path)
    assert name in err.value.message and needle in err.value.message


def test_shift_jis_text_is_decoded(tmp_path):
    path = tmp_path / "sjis.txt"
    path.write_bytes("生成AIの利用に関する規程です。".encode("cp932"))
    assert "生成AI" in read_text(path)


@pytest.mark.parametrize(
    "content",
    ["not json", "{}", "[]", '[{"file": "a.md"}]', '[{"file": "a.md", "title": "A", "access": "bad label!"}]', '["a.md"]',
     '[{"file": "a.md", "title": "A"}, {"file": "a.md", "title": "B"}]'],
)
def test_malformed_manifest_gets_a_clear_error(tmp_path, content):
    path = tmp_path / "manifest.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert "manifest.json" in err.value.message


def test_a_bad_document_is_skipped_and_the_rest_ingested(tmp_path):
    (tmp_path / "good.md").write_text("# 規程\n\n## 第1条\n\n生成AIに機密情報を入力してはならない。\n", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"\x00\x00binary")
    (tmp_path / "manifest.json").write_text(
        json.dumps([{"file": "good.md", "title": "規程", "access": "soumu"}, {"file": "bad.txt", "title": "壊れた文書"}]),
        encoding="utf-8",
    )
    result = ingest_corpus(tmp_path)
    assert {r.file for r in result.failed} == {"bad.txt"}
    assert len(result.units) == 1
    unit = result.units[0]
    assert unit.access == "soumu"
    assert unit.section_path == ["規程", "規程", "第1条"]
    assert unit.kind == "paragraph" and unit.label == ""
    assert (unit.authority, unit.issuer_kind) == ("guidance", "other")  # the defaults


def test_a_listed_file_that_is_missing_stops_ingestion(tmp_path):
    (tmp_path / "good.md").write_text("生成AIに機密情報を入力してはならない。\n", encoding="utf-8")
    (tmp_path / "manifest.json").write_text(
        json.dumps([{"file": "good.md", "title": "規程"}, {"file": "missing.md", "title": "無い文書"}]), encoding="utf-8"
    )
    with pytest.raises(ManifestError) as err:
        ingest_corpus(tmp_path)
    assert "manifest.json の 2 番目の項目（file: missing.md）" in err.value.message


@pytest.mark.parametrize(
    "entries,needle",
    [
        ([{"file": "a.md", "title": "A"}, {"file": "x.md", "title": "X", "authority": "mandatory"}], "2 番目の項目（file: x.md）に誤りがあります: authority は binding / guidance / reference"),
        ([{"file": "x.md", "title": "X", "issuer_kind": "city"}], "1 番目の項目（file: x.md）に誤りがあります: issuer_kind は national / prefecture / municipality / other"),
        ([{"file": "../secret.md", "title": "X"}], "1 番目の項目（file: ../secret.md）に誤りがあります: file は corpus"),
        ([{"file": "a.md", "title": "A"}, {"file": "a.txt", "title": "A2"}], "2 番目の項目（file: a.txt）の文書 ID「a」が a.md と重複"),
        ([{"file": "a.md", "title": "A", "supersedes": "old"}], "1 番目の項目（file: a.md）の supersedes「old」"),
    ],
)
def test_manifest_errors_name_the_entry(tmp_path, entries, needle):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert needle in err.value.message


def test_doc_ids_come_from_the_path_so_same_titles_stay_apart(tmp_path):
    rule = "○生成AI利用規程\n令和7年4月1日\n訓令第1号\n第1条　この規程は、生成AIの利用について定める。\n第2条　この規程は、令和7年4月1日から施行する。\n"
    for folder, issuer in (("a-city", "A市"), ("b-town", "B町")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "kitei.txt").write_text(rule.replace("利用について", f"{issuer}での利用について"), encoding="utf-8")
    (tmp_path / "manifest.json").write_text(
        json.dumps([{"file": f"{f}/kitei.txt", "title": "生成AI利用規程", "issuer": i} for f, i in (("a-city", "A市"), ("b-town", "B町"))]),
        encoding="utf-8",
    )
    result = ingest_corpus(tmp_path)
    assert [m.doc_id for m in result.documents] == ["a-city__kitei", "b-town__kitei"]
    first = {u.label: u for u in result.units if u.doc_id == "a-city__kitei"}
    second = {u.label: u for u in result.units if u.doc_id == "b-town__kitei"}
    assert set(first) == set(second) == {"第1条", "第2条"}
    assert first["第1条"].id != second["第1条"].id and first["第1条"].issuer == "A市"
    assert all("/" not in u.id for u in result.units)  # unit IDs travel in /v1/units/{id}
