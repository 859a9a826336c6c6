"""An office's own rules beside the bundled guidance: the local rule first, in answers and in the check.

A real Qdrant Edge index of the bundled corpus plus one invented municipal regulation
(eval/data/office, a 訓令 in plain text), with that office's confidentiality policy.
"""

from __future__ import annotations

import json
import shutil

import pytest

from guideqa.errors import RulesError
from guideqa.settings import PROJECT_ROOT
from index.store import QueryFilter
from service.auth import local_caller
from service.request import run_ask, run_compare

OFFICE = PROJECT_ROOT / "eval" / "data" / "office"
CITY = "shiomino-city_genai-use-regulation_2025-04-01"
STAFF = local_caller("test", ("public",))


@pytest.fixture(scope="module")
def office_settings(settings, tmp_path_factory):
    root = tmp_path_factory.mktemp("office")
    corpus = root / "corpus"
    shutil.copytree(PROJECT_ROOT / "corpus", corpus, ignore=shutil.ignore_patterns("curated"))
    entries = json.loads((corpus / "manifest.json").read_text(encoding="utf-8"))
    city = next(e for e in json.loads((OFFICE / "manifest.json").read_text(encoding="utf-8")) if e["file"].startswith(CITY))
    shutil.copy(OFFICE / city["file"], corpus / city["file"])
    (corpus / "manifest.json").write_text(json.dumps(entries + [city], ensure_ascii=False), encoding="utf-8")
    return settings.model_copy(update={"data_dir": root / "data", "corpus_dir": corpus, "local_policy_file": OFFICE / "policy-shiomino.yaml"})


@pytest.fixture(scope="module")
def office_state(office_settings):
    from index.build import build_index
    from index.embeddings import get_embedding_model
    from index.tokenizer import get_tokenizer
    from ingest.pipeline import ingest_corpus
    from service.state import build_state

    result = ingest_corpus(office_settings.corpus_dir)
    build_index(result.units, office_settings, embed_model=get_embedding_model(office_settings), tokenizer=get_tokenizer())
    state = build_state(office_settings, load_llm=False)
    yield state
    state.close()


def test_the_local_policy_decides_the_check_and_cites_its_article(office_state):
    resp = run_ask(office_state, STAFF, "機密性2の情報ってネットの生成AIに入れていい？", record=False)
    assert resp.check is not None and resp.check.verdict == "不可"
    assert resp.check.decided_by == "local_policy"
    first = resp.check.citations[0]
    assert first.doc_id == CITY and first.label == "第11条第1項" and first.authority == "binding"
    assert resp.answer.startswith("判定: 不可") and "第11条第1項" in resp.answer


def test_a_may_i_answer_leads_with_the_office_rule_and_labels_national_guidance(office_state):
    resp = run_ask(office_state, STAFF, "AIが書いた文章をそのまま市のホームページに載せてもいい？", record=False)
    pieces = [p for part in resp.parts for p in part.pieces]
    assert pieces and pieces[0].scope == "local" and pieces[0].label.startswith("第1")
    assert "汐見野市生成AI利用規程" in resp.answer.splitlines()[0]
    if any(p.scope == "general" for p in pieces):
        assert "国・都等のガイドライン（参考）" in resp.answer


def test_a_rule_is_quoted_whole_with_its_article_label(office_state):
    resp = run_ask(office_state, STAFF, "利用記録ってどのくらいの期間保存するの？", record=False)
    cited = {c.label for c in resp.citations if c.doc_id == CITY}
    assert "第17条第1項" in cited
    unit = next(c for c in resp.citations if c.label == "第17条第1項")
    assert unit.quote.startswith("第17条")


def test_a_list_the_rule_hands_to_a_table_is_the_table(office_state):
    resp = run_ask(office_state, STAFF, "汐見野市で業務に使っていいAIサービスって何がある？", record=False)
    part = resp.parts[0]
    assert part.shape == "enumeration" and part.total == 4
    assert all(p.label == "別表第1" for p in part.pieces if p.role == "item")


def test_an_office_with_no_document_is_not_covered(office_state):
    resp = run_ask(office_state, STAFF, "福井県の生成AI規程だと、個人情報の扱いはどうなってる？", record=False)
    assert resp.abstained and "福井県" in resp.answer


def test_compare_shows_every_document_or_says_it_is_silent(office_state):
    resp = run_compare(office_state, STAFF, "生成AIで作った画像を広報に使う", record=False)
    by_doc = {c.doc_id: c for c in resp.comparison}
    assert resp.comparison[0].doc_id == CITY  # the office's own rule first
    assert by_doc[CITY].covered and any(c.label == "第15条第3項" for c in by_doc[CITY].clauses)
    assert all(c.note for c in resp.comparison if not c.covered)


def test_a_policy_rule_citing_an_article_that_is_gone_stops_start_up(office_state, office_settings, tmp_path):
    from service.check.policy import load_policy

    bad = tmp_path / "policy.yaml"
    text = (OFFICE / "policy-shiomino.yaml").read_text(encoding="utf-8").replace("label: 第9条第3項", "label: 第99条第3項")
    bad.write_text(text, encoding="utf-8")
    searcher = office_state.searcher
    units = lambda doc_id: list(searcher.iter_units(flt=QueryFilter.everything()))  # noqa: E731
    with pytest.raises(RulesError) as err:
        load_policy(bad, units_of_document=lambda d: [u for u in units(d) if u["doc_id"] == d])
    assert "no-click-through" in err.value.message and "第99条第3項" in err.value.message


def test_a_paragraph_that_builds_on_the_quoted_one_follows_it(office_state):
    resp = run_ask(office_state, STAFF, "フォローアップ研修を受けなかったら何かあるの？", record=False)
    labels = [p.label for part in resp.parts for p in part.pieces]
    if "第18条第2項" in labels:
        assert labels.index("第18条第3項") == labels.index("第18条第2項") + 1  # 「3 …前項の研修を受講しなかった…」
    assert "第18条第3項" in labels


def test_when_a_rule_took_effect_is_read_from_its_supplementary_provisions(office_state):
    resp = run_ask(office_state, STAFF, "この規程はいつから施行されていますか？", record=False)
    labels = [c.label for c in resp.citations]
    assert labels[:2] == ["附則第1項", "附則（令和7年3月31日訓令第5号）第1項"]
    assert "令和6年4月1日から施行する" in resp.answer and "令和7年4月1日から施行する" in resp.answer


def test_asked_about_its_own_rules_the_office_is_answered_from_them_alone(office_state):
    # 「市の規程で」 names the office's own rule; national guidance saying something about
    # costs elsewhere does not answer what the city decided.
    resp = run_ask(office_state, STAFF, "市の規程で、生成AIの利用料金はいくら？", record=False)
    assert resp.abstained
    assert resp.answer.startswith("本団体の規程には") and "ガイドラインに記載が見つかりませんでした" not in resp.answer
    assert {c.doc_id for c in resp.citations} <= {CITY}


def test_naming_another_bodys_guideline_does_not_put_the_local_rule_second(office_state):
    resp = run_ask(office_state, STAFF, "東京都のガイドラインだと、画像生成AIで作ったイラストを広報紙に載せていい？", record=False)
    assert resp.citations and resp.citations[0].doc_id == CITY
    assert resp.citations[0].label == "第15条第3項"


def test_a_verdict_from_the_national_table_follows_the_office_rule(office_state):
    resp = run_ask(office_state, STAFF, "ホームページに載っている情報をCopilot Chatに入れていい？", record=False)
    assert resp.check is not None and resp.check.decided_by == "table"
    assert resp.citations[0].doc_id == CITY
    assert "国の機密性分類表による判定（参考）: 判定: 可" in resp.answer
    # The verdict's citation is renumbered after the rule's and still points at the table.
    n = resp.check.citations[0].n
    assert resp.citations[n - 1].unit_id == resp.check.citations[0].unit_id and f"[{n}]" in resp.answer


def test_with_the_class_unknown_the_office_rule_for_that_case_decides_and_the_class_it_becomes_follows(office_state):
    resp = run_ask(office_state, STAFF, "この資料、機密性いくつか分からないんだけどAIに入れて大丈夫？", record=False)
    assert resp.check is not None and resp.check.verdict == "判断できない"
    assert resp.check.local_rule == "class-unknown" and resp.check.then_rule == "confidential-outside-lgwan"
    assert [c.label for c in resp.check.citations[:2]] == ["第13条", "第11条第1項"]
    first_line = resp.answer.splitlines()[0]
    assert "第13条" in first_line and "[1]" in first_line and "第11条第1項" in first_line and "[2]" in first_line
    # The article itself is quoted beneath the verdict, not only the administrator's paraphrase.
    assert "なお分類が明らかでないときは、当該情報は機密性2の情報として取り扱うものとする。" in resp.answer
    assert resp.citations[0].label == "第13条" and resp.citations[0].doc_id == CITY


def test_without_a_rule_for_unknown_classes_the_office_ceiling_is_said_and_cited_first(office_state, tmp_path):
    from service.check import CheckEngine
    from service.check.policy import load_policy

    text = (OFFICE / "policy-shiomino.yaml").read_text(encoding="utf-8")
    path = tmp_path / "policy.yaml"
    path.write_text(text[: text.index("  - id: class-unknown")], encoding="utf-8")
    units = list(office_state.searcher.iter_units(flt=QueryFilter.everything()))
    policy = load_policy(path, units_of_document=lambda d: [u for u in units if u["doc_id"] == d])
    engine = CheckEngine(office_state.check_engine.rules, lookup_units=lambda ids: [u for u in units if u["id"] in ids], policy=policy)
    resp = engine.check("この資料をAIに入れて大丈夫？")
    assert resp.verdict == "判断できない" and resp.local_rule is None
    first = resp.citations[0]
    assert first.doc_id == CITY and first.label == "第11条第1項" and first.authority == "binding"
    assert "機密性2以上" in resp.reasons[0]


def test_information_the_asker_says_is_not_there_does_not_decide(office_state):
    resp = run_ask(office_state, STAFF, "観光案内の文書を無料の翻訳AIに入れていい？個人情報は入れないし", record=False)
    assert resp.check is not None and resp.check.local_rule != "personal-data"
    assert resp.check.citations[0].label == "第9条第3項"  # the free (約款型) service is what the city forbids
    with_it = run_ask(office_state, STAFF, "無料の翻訳AIに個人情報を入れていい？", record=False)
    assert with_it.check is not None and with_it.check.verdict == "不可"


def test_the_sentence_that_asks_decides_over_the_situation_before_it(office_state):
    resp = run_ask(office_state, STAFF, "やばい、住民の名前が入ったままの文書をAIに入れちゃった…誰に言えばいい？", record=False)
    assert resp.citations[0].label == "第19条第1項"
    assert "利用責任者及び情報政策課長に報告しなければならない" in resp.answer


def test_a_numbered_item_forbids_what_its_provision_forbids_and_is_cited_as_its_own_item(office_state):
    # 第10条第1項: 「次に掲げる事務に生成AIを利用してはならない。」 then (1)…(4); the question asks about (3).
    resp = run_ask(office_state, STAFF, "市議会の答弁の最終的な文案を生成AIで作ってもいい？", record=False)
    pieces = [p for part in resp.parts for p in part.pieces]
    labels = [p.label for p in pieces]
    assert labels[:2] == ["第10条第1項", "第10条第1項第3号"]
    assert pieces[0].text.endswith("利用してはならない。") and pieces[1].text.startswith("(3)")
    assert "（汐見野市生成AI利用規程 第10条第1項第3号）" in resp.answer


def test_a_paragraph_pointing_back_is_read_after_the_one_it_points_to(office_state):
    # 第16条第2項 opens 「前項の文書等のうち…」: quoted alone it would not say what 前項 requires.
    resp = run_ask(office_state, STAFF, "生成AIで作った文書を市の名前で出すとき、作成した旨はどこに書くの？", record=False)
    labels = [p.label for part in resp.parts for p in part.pieces]
    assert "第16条第2項" in labels
    assert labels.index("第16条第1項") == labels.index("第16条第2項") - 1


def test_how_to_start_is_the_article_on_applying(office_state):
    # 「手続き」 is the staff's word; the article's 見出し says 利用の申請等, and the form 様式第1号
    # (生成AI利用申請書) names 第8条第1項 as the provision it is made under.
    resp = run_ask(office_state, STAFF, "生成AIを使い始めるまでの手続きを教えて", record=False)
    assert resp.citations[0].doc_id == CITY and resp.citations[0].label == "第8条第1項"


def test_an_article_whose_caption_the_question_says_in_staff_words_is_found(office_state):
    # 「使っちゃダメな仕事」 says 利用の制限 (第10条's 見出し) in staff words: 使う→利用, ダメ→制限.
    result = office_state.searcher.search("AIを使っちゃダメな仕事ってある？", flt=QueryFilter(access=["public"]))
    [pinned] = office_state.searcher.get_units(result.captioned, flt=QueryFilter(access=["public"]))
    assert pinned["label"] == "第10条第1項"
    resp = run_ask(office_state, STAFF, "AIを使っちゃダメな仕事ってある？", record=False)
    assert "第10条第1項" in [c.label for c in resp.citations]
    assert "人事評価" in resp.answer


def test_a_transitional_provision_is_quoted_with_the_provision_it_applies(office_state):
    # 附則（令和7年…）第2項: 「改正後の第17条第1項の規定は、…利用記録についても適用する。」 — what 第17条第1項 says is the answer.
    resp = run_ask(office_state, STAFF, "改正前に取得した利用記録も3年間保存するの？", record=False)
    labels = [c.label for c in resp.citations]
    assert labels[:2] == ["附則（令和7年3月31日訓令第5号）第2項", "第17条第1項"]
    assert "3年間保存" in resp.answer


def test_a_part_naming_no_document_asks_about_the_one_the_question_names(office_state):
    resp = run_ask(office_state, STAFF, "汐見野市の研修って誰が受けるの？毎年受けなきゃだめ？", record=False)
    second = resp.parts[1]
    assert second.covered and second.pieces[0].label == "第18条第2項"
    assert all(p.scope == "local" for p in second.pieces)


def test_a_count_of_days_is_a_number_of_days_not_a_date_or_the_word_day(office_state):
    resp = run_ask(office_state, STAFF, "本市で生成AIを使うには申請がいる？承認まで何日かかる？", record=False)
    assert resp.parts[0].pieces[0].label == "第8条第1項"  # 「本市」 says where, not what
    assert not resp.parts[1].covered  # 「取得した日」「令和6年6月30日」 are no number of days
    days = run_ask(office_state, STAFF, "事故の報告書は何日以内に出す？", record=False)
    assert days.citations[0].label == "第19条第4項" and "5日" in days.answer


def test_who_pays_is_not_answered_by_a_clause_that_only_names_the_same_offices(office_state):
    resp = run_ask(office_state, STAFF, "本市の生成AIの利用料って、各課の予算から払うの？", record=False)
    assert resp.abstained or all(not p.covered for p in resp.parts)


def test_lending_an_account_is_letting_another_use_it(office_state):
    resp = run_ask(office_state, STAFF, "アカウントを同僚に貸していい？", record=False)
    assert resp.citations[0].label == "第12条第2項"


def test_a_table_row_naming_the_provision_quoted_follows_it(office_state):
    # 別表第1's 翻訳支援サービス row says 「第9条第3項ただし書によりCIOが認めたもの」: the case the proviso was applied to.
    resp = run_ask(office_state, STAFF, "約款型の翻訳サービスって使えないの？", record=False)
    labels = [c.label for c in resp.citations]
    assert "第9条第3項" in labels
    assert "翻訳支援サービス(法人契約版)" in resp.answer


def test_what_is_needed_lists_the_article_on_it_not_a_chapter(office_state):
    resp = run_ask(office_state, STAFF, "生成AIで作った文書を市の名義で公表したい。何が必要？", record=False)
    labels = [c.label for c in resp.citations]
    assert labels[:2] == ["第16条第1項", "第16条第2項"]
    # Not a 章 of unrelated articles listed as items.
    assert "第1章" not in resp.answer


def test_what_whoever_would_do_an_allowed_act_must_do_first_follows_it(office_state):
    # 第9条 「利用することができる生成AIは…に限る」; 第8条 「許可サービスを利用しようとする職員は…
    # 利用研修を修了した後…承認を受けなければならない」: the requirement, in another article.
    resp = run_ask(office_state, STAFF, "許可サービス以外の生成AIも業務で使える？", record=False)
    labels = [c.label for c in resp.citations]
    assert labels[:2] == ["第9条第1項", "第8条第1項"]


def test_the_definitions_article_is_no_list_of_what_to_watch_for(office_state):
    resp = run_ask(office_state, STAFF, "市報にAIで書いた文章を載せるとき注意することは？", record=False)
    assert "第2条(定義)" not in resp.answer and "第2条（定義）" not in resp.answer
    assert any(c.label.startswith("第16条") for c in resp.citations)


def test_a_named_guideline_that_is_silent_is_said_so_and_the_office_rule_still_answers(office_state):
    # The Tokyo guideline never mentions 研修; the city's rule does (第18条).
    resp = run_ask(office_state, STAFF, "都のガイドラインだと研修はどうなってる？", record=False)
    assert resp.citations and resp.citations[0].doc_id == CITY and resp.citations[0].label.startswith("第18条")
    assert "「東京都 AI導入・活用ガイドライン」には、この点についての記載が見つかりませんでした。" in resp.answer


@pytest.mark.parametrize(
    "question,first",
    [("本市の規程の第13条を全部教えて", "第13条"), ("第十九条第四項ってなんて書いてある？", "第19条第4項"), ("第7条の2って何？", "第7条の2第1項")],
)
def test_a_provision_the_question_names_is_quoted_whole(office_state, question, first):
    resp = run_ask(office_state, STAFF, question, record=False)
    assert resp.citations[0].label == first and resp.citations[0].doc_id == CITY


def test_a_provision_the_rule_does_not_have_is_not_answered_with_another(office_state):
    resp = run_ask(office_state, STAFF, "本市の規程の第99条って何？", record=False)
    assert all(not p.covered for p in resp.parts) or resp.abstained


def test_using_a_service_is_answered_by_the_article_limiting_the_services(office_state):
    # 第9条 「職員が業務において利用することができる生成AIは、別表第1に掲げる許可サービスに限る。」
    resp = run_ask(office_state, STAFF, "ChatGPTの無料版を使ってもいい？", record=False)
    assert resp.citations[0].doc_id == CITY and resp.citations[0].label == "第9条第1項"
