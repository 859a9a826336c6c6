"""One access semantic in the searcher: every read of units takes the reader's filter.

The real corpus with the 総務省 (MIC) reference materials relabelled ``internal`` is
built into an Edge shard of its own. A public reader must not get the document's
units, must not see it listed or named, and must not learn that a place only it
mentions (香川県, the CatBot case study) is known; an ``internal`` reader gets all
of that, so a filter that hid everything would fail too.
"""

from __future__ import annotations

import pytest

from index.build import build_index
from index.search import Searcher
from index.store import QueryFilter

MIC = "mic_local-gov-ai-wg_reference-materials_2025-07"
PUBLIC = QueryFilter(access=["public"])
INSIDE = QueryFilter(access=["public", "internal"])
EVERYTHING = QueryFilter.everything()


@pytest.fixture(scope="module")
def labelled(settings, units, searcher, tmp_path_factory):
    relabelled = [u.model_copy(update={"access": "internal"}) if u.doc_id == MIC else u for u in units]
    s = settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("labelled")})
    build_index(relabelled, s, embed_model=searcher.embed_model, tokenizer=searcher.tokenizer)
    own = Searcher(s, embed_model=searcher.embed_model, tokenizer=searcher.tokenizer)
    try:
        yield own
    finally:
        own.close()


@pytest.fixture(scope="module")
def mic_ids(units) -> list[str]:
    return [u.id for u in units if u.doc_id == MIC]


@pytest.mark.parametrize(
    "read",
    [
        lambda s: s.search("生成AIの利用"),
        lambda s: s.get_units(["x"]),
        lambda s: s.get_units(["x"], None),
        lambda s: s.iter_units(),
        lambda s: s.documents(),
        lambda s: s.named_documents("都のガイドラインでは？"),
    ],
    ids=["search", "get_units", "get_units-positional", "iter_units", "documents", "named_documents"],
)
def test_every_read_of_units_needs_an_explicit_filter(searcher, read):
    with pytest.raises(TypeError):
        read(searcher)


def test_a_filter_names_its_access_labels():
    with pytest.raises(TypeError):
        QueryFilter()  # type: ignore[call-arg]
    assert EVERYTHING.access is None and QueryFilter(access=[]).conditions() == [("access", ["\x00none"])]


def test_hidden_units_are_never_read(labelled, mic_ids):
    assert labelled.get_units(mic_ids[:5], flt=PUBLIC) == []
    assert [u["id"] for u in labelled.get_units(mic_ids[:5], flt=INSIDE)] == mic_ids[:5]
    assert not any(p["doc_id"] == MIC for p in labelled.iter_units(flt=PUBLIC))
    assert sum(p["doc_id"] == MIC for p in labelled.iter_units(flt=EVERYTHING)) == len(mic_ids)
    question = "香川県のCatBotは職員が開発したの？"
    assert not any(h.unit["doc_id"] == MIC for h in labelled.search(question, top_k=10, flt=PUBLIC).hits)
    assert labelled.search(question, top_k=10, flt=INSIDE).hits[0].unit["doc_id"] == MIC


def test_documents_lists_only_what_the_reader_may_see(labelled):
    assert MIC not in labelled.documents(flt=PUBLIC) and len(labelled.documents(flt=PUBLIC)) == 4
    assert labelled.documents(flt=INSIDE)[MIC].access == frozenset({"internal"})
    assert labelled.documents(flt=EVERYTHING).keys() == labelled.documents(flt=INSIDE).keys()
    assert labelled.documents(flt=QueryFilter(access=[])) == {}
    # Only the access part decides: a search's own document filter does not shorten the list.
    assert MIC in labelled.documents(flt=QueryFilter(access=["internal"], doc_ids=["other"]))


def test_a_hidden_document_is_never_named(labelled):
    question = "総務省の参考資料では機密性3Bの情報はどう扱う？"
    assert labelled.named_documents(question, flt=INSIDE).doc_ids[0] == MIC
    assert MIC not in labelled.named_documents(question, flt=PUBLIC).doc_ids


def test_a_place_only_a_hidden_document_mentions_is_unknown_to_the_public(labelled):
    question = "香川県の事例では何が紹介されている？"
    assert labelled.named_documents(question, flt=PUBLIC).unknown == ["香川県"]
    assert labelled.named_documents(question, flt=INSIDE).unknown == []
