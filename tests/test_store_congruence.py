"""Qdrant Edge and qdrant-client return the same ranked units for the same index.

The embedded default (an Edge shard, the session's ``built_index``) is compared
with the server code path (:class:`ClientStore`). That path runs on qdrant-client's
local mode here, and on a real server when ``GUIDEQA_QDRANT_URL`` is set
(``-m server`` selects only that run). ``build_index`` loads both with the same
units, and both are asked the same questions as one :class:`StoreQuery`, the one
query shape both stores implement. Thirty staff questions must give the same top
10 on both. Filters (access label, ``doc_id``, ``kind``, ``issuer``, ``tags``) must
select the same units on both.

How ties are compared
---------------------
Scores agree to a relative ``REL_TOL``, not bit for bit: Edge scores in float32,
local mode in float64, so a tie on one engine can be 2e-7 apart on the other. The
order of equal scores is arbitrary, and the engines break ties differently. Two
lists therefore agree (:func:`assert_same_modulo_ties`) when their scores agree
position by position, and each unit in either window has the same score in the
other list. Units may then trade places only with units of equal score. A run of
equal scores within one list is a *tie group* (:func:`tie_groups`).

RRF is rank-based. So a tie broken differently *inside a prefetch* gives the tied
units different fused scores on the two engines, and the fused lists can differ by
more than a permutation of equal fused scores. Equal BM25 scores are common here,
because the Tokyo checklists repeat the same clause in many sections. The fused
results are therefore checked in three steps (see :func:`assert_congruent`):

1. each prefetch (dense, BM25, character bigrams, and pinned sections when the
   question names a section) runs on its own on both engines, and the results
   must agree modulo ties, scores included. This checks vectors, the IDF modifier
   and filters;
2. every fused score must lie in the interval RRF allows, given the unit's tie
   groups in the prefetches. The bounds are ``Σ 1/(k + first position of its
   group)`` and ``Σ 1/(k + last position)``, with positions counted from 0 as
   Qdrant does. With weights, each share is Qdrant's weighted form
   (:func:`rrf_share`). This checks the fusion formula, ``k``, the weights and the
   prefetch limit;
3. each engine's fused top ``FETCH`` is re-scored with that tie-free upper bound
   (the *canonical* score). The two top-10 lists must then agree modulo ties of
   the canonical score. Units in a tie group that a prefetch's limit cuts are
   left out of this step. Which of them made the prefetch is arbitrary, and so
   is whether they were fused at all.

When this test was written, 27 of the 30 questions gave the identical top 10 on
the bundled corpus. The other 3 differed because a tie inside a prefetch was
broken differently. That was with dense, BM25, character bigrams and pinned
sections; with dense and BM25 only, it was 25 identical, 2 with swapped equal fused
scores, and 3 with prefetch ties. Runs also differ in which member of a tie group
cut by the prefetch limit gets in. So the prefetches are read ``BEYOND`` their
limit, to see that whole group.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from guideqa.settings import Settings
from index.build import build_index
from index.search import Searcher
from index.store import DENSE, ClientStore, EdgeStore, QueryFilter, StoreQuery
from index.versions import resolve_current
from index.text import bare_section
from qdrant_server import drop_server_collections  # tests/ is on sys.path (rootdir-relative conftest)

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")

TOP = 10
FETCH = 30  # fused results fetched per engine: room for units a prefetch tie pushed below 10
BEYOND = 20  # each prefetch is also read this far past its limit, to see the whole tie group the limit cuts
REL_TOL = 1e-5

QUESTIONS = [
    "生成AIに要機密情報を入力してもいいですか？",
    "入札予定価格って機密性いくつ？ネットの生成AIに入れていい？",
    "自治体の機密性3Bってどんな情報？パブリッククラウドで扱える？",
    "約款型のクラウドサービスで要機密情報は扱える？",
    "源内ってどこのモデル使ってるの？",
    "源内は自治体でも使えるようになりますか",
    "ガバクラの生成AIサービスってデータは国内で完結してる？",
    "国・地方AI共通サービスの費用負担はどうなる？",
    "共通サービスでハルシネーションが起きたら責任は誰にあるの？",
    "香川県のCatBotは職員が開発したの？費用面のメリットは？",
    "生成AIの利用ガイドラインを策定済みの自治体はどれくらい？",
    "AI法はいつ施行された？",
    "DeepSeekの注意喚起では何が問題とされている？",
    "デジタル庁のガイドラインで高リスクかどうかを判断する軸は？",
    "調達チェックシートのNo.24は何を求めている？",
    "プロンプトインジェクション対策は調達チェックシートでどう書かれている？",
    "先進的AI利活用アドバイザーボードの目的と構成員は？",
    "各府省庁の生成AIシステムで利用開始済みの案件は何件？",
    "機密性2の情報を追加学習に使っている案件は何件ある？",
    "利用廃止になった生成AI案件の理由は？",
    "都のガイドラインの6つの留意すべき事項は何？",
    "都民サービス関連業務の判断支援で要件定義フェーズの必須項目は？",
    "職員内部業務の文書作成支援の運用フェーズでやることは？",
    "AIで作った画像や文章の著作権で気をつけることは？",
    "ハルシネーションとはどういう意味ですか",
    "オプトアウトって何のこと？",
    "都で共通ツール以外のAIを導入したいときはどこに相談すればいい？",
    "議事録の要約に生成AIを使った自治体はどれくらい時間を削減できた？",
    "CAIOって何を担当するの？",
    "個人情報を含む文書を生成AIで要約する場合の注意点は？",
]

TOKYO = "tokyo_ai-guideline_2026-03-30"
MIC = "mic_local-gov-ai-wg_reference-materials_2025-07"
MINUTES = "digital-agency_national-local-ai-service-minutes_2025-12-10"
REPORT = "ai-advisory-board_ministry-genai-report_2026-03-10"
OVERVIEW = "digital-agency_genai-guideline-overview_2025-10-09"

Ranked = list[tuple[str, float]]


# --------------------------------------------------------------------------- comparing ranked lists
def tie_groups(ranked: Ranked) -> list[tuple[float, list[str], int]]:
    """Runs of equal scores as ``(score, unit IDs, start position)``, best first."""
    groups: list[tuple[float, list[str], int]] = []
    for pos, (unit_id, score) in enumerate(ranked):
        if groups and math.isclose(groups[-1][0], score, rel_tol=REL_TOL, abs_tol=1e-9):
            groups[-1][1].append(unit_id)
        else:
            groups.append((score, [unit_id], pos))
    return groups


def close(x: float, y: float) -> bool:
    return math.isclose(x, y, rel_tol=REL_TOL, abs_tol=1e-9)


def assert_same_modulo_ties(a: Ranked, b: Ranked, *, n: int, complete: bool, what: str) -> None:
    """``a`` and ``b`` agree in their first ``n`` positions up to the order of equal scores.

    Position by position the scores agree, and every unit in either window has the
    same score in the other list. So units may trade places only with units of the
    same score. No threshold decides what a tie group is, so a near-tie that float
    error splits on one engine and not on the other cannot break the comparison.
    The lists are read past ``n`` (``BEYOND``, ``FETCH``), so a unit that a tie moved
    just past the window is still found.

    Args:
        complete: the lists hold every match (fewer than were asked for), so they
            must be equally long.
    """
    detail = f"{what}\n  edge:   {a[:n]}\n  client: {b[:n]}"
    if complete:
        assert len(a) == len(b), detail
    assert len(a[:n]) == len(b[:n]), detail
    for (_, sa), (_, sb) in zip(a[:n], b[:n]):
        assert close(sa, sb), detail
    for window, other in ((a[:n], dict(b)), (b[:n], dict(a))):
        for unit_id, score in window:
            assert unit_id in other and close(other[unit_id], score), f"{unit_id}: {detail}"


# --------------------------------------------------------------------------- running one query shape
_sent: dict[str, StoreQuery] = {}


def query_sent_by(searcher: Searcher, question: str) -> StoreQuery:
    """The :class:`StoreQuery` that ``Searcher.search`` builds for ``question``.

    It is recorded on its way to the Edge store rather than rebuilt here, so the
    test follows the searcher (tokens, embedding, pinned sections, weights) as it
    changes. Recorded once per question: embedding is the slow part.
    """
    if question not in _sent:
        seen: list[StoreQuery] = []
        original = EdgeStore.query

        def record(self: EdgeStore, q: StoreQuery) -> list:
            seen.append(q)
            return original(self, q)

        EdgeStore.query = record  # type: ignore[method-assign]
        try:
            searcher.search(question, top_k=FETCH, flt=QueryFilter(access=["public"]))
        finally:
            EdgeStore.query = original  # type: ignore[method-assign]
        (_sent[question],) = seen
    return _sent[question]


def make_query(
    searcher: Searcher,
    question: str,
    *,
    flt: QueryFilter,
    limit: int = FETCH,
    strategy: str = "hybrid",
    weights: tuple[float, ...] | None = None,
) -> StoreQuery:
    """The searcher's query for ``question``, with another filter, limit, strategy or RRF weights.

    ``weights`` is repeated or cut to as many prefetch kinds as ``StoreQuery.weights`` has.
    """
    sent = query_sent_by(searcher, question)
    if weights is not None:
        n = len(sent.weights)
        weights = tuple((weights * n)[:n])
    return dataclasses.replace(sent, filter=flt, limit=limit, strategy=strategy, weights=weights or sent.weights)


def edge_prefetches(store: EdgeStore, q: StoreQuery) -> list[Ranked]:
    """Each prefetch of ``q`` run on its own, ``BEYOND`` past its limit. The store interface
    only runs the fused query, and telling a tie-break from a real difference needs the
    prefetches one by one."""
    import qdrant_edge as qe

    out = []
    for p in q.prefetches():
        vector = p.vector if p.using == DENSE else qe.SparseVector(p.vector.indices, p.vector.values)
        req = qe.QueryRequest(
            limit=q.prefetch_limit + BEYOND,
            query=qe.Query.Nearest(vector, using=p.using),
            filter=store._filter(q.filter, p.conditions),
            with_payload=True,
        )
        out.append([(h.payload["id"], float(h.score)) for h in store._shard.query(req)])
    return out


def client_prefetches(store: ClientStore, q: StoreQuery) -> list[Ranked]:
    """The same prefetches on a qdrant-client collection."""
    from qdrant_client import models

    out = []
    for p in q.prefetches():
        vector = p.vector if p.using == DENSE else models.SparseVector(indices=p.vector.indices, values=p.vector.values)
        res = store._client.query_points(
            store.collection,
            query=vector,
            using=p.using,
            query_filter=store._filter(q.filter, p.conditions),
            limit=q.prefetch_limit + BEYOND,
            with_payload=True,
        )
        out.append([(p.payload["id"], float(p.score)) for p in res.points])
    return out


def rrf_bounds(prefetches: list[Ranked], q: StoreQuery) -> dict[str, tuple[float, float]]:
    """Lowest and highest fused score each unit can get, whichever way prefetch ties are broken.

    A unit in the tie group that the prefetch limit cuts through may have made the
    prefetch or not, so its share there runs from 0 up to its group's best rank.
    """
    limit = q.prefetch_limit
    bounds: dict[str, tuple[float, float]] = {}
    for ranked, weight in zip(prefetches, q.fusion_weights(), strict=True):
        for _, ids, start in tie_groups(ranked):
            if start >= limit:
                break
            end = start + len(ids)
            low = rrf_share(end - 1, weight, q.rrf_k) if end <= limit else 0.0
            for unit_id in ids:
                lo, hi = bounds.get(unit_id, (0.0, 0.0))
                bounds[unit_id] = (lo + low, hi + rrf_share(start, weight, q.rrf_k))
    return bounds


def rrf_share(position: int, weight: float, k: int) -> float:
    """Qdrant's weighted RRF share of a unit at 0-based ``position`` of a prefetch.

    ``1 / ((position + 1) / weight + k - 1)``, which is ``1 / (k + position)`` at weight 1.
    The weight divides the rank; it does not multiply the share. At the top of a list
    a weight of 2 therefore moves a share from 1/60 to 1/59.5 only. A weight of 0 drops
    the prefetch.
    """
    if weight <= 0:
        return 0.0
    return 1.0 / ((position + 1) / weight + k - 1)


def cut_at_limit(ranked: Ranked, limit: int) -> set[str]:
    """Members of the tie group that the prefetch's ``limit`` cuts through."""
    for _, ids, start in tie_groups(ranked):
        if start < limit < start + len(ids):
            return set(ids)
    return set()


def canonical(fused: Ranked, bounds: dict[str, tuple[float, float]], *, leave_out: set[str]) -> Ranked:
    """``fused`` re-scored with the tie-free upper bound, best first, without ``leave_out``."""
    missing = [u for u, _ in fused if u not in bounds and u not in leave_out]
    assert not missing, f"fused units in no prefetch: {missing}"
    return sorted(((u, bounds[u][1]) for u, _ in fused if u not in leave_out), key=lambda x: (-x[1], x[0]))


def assert_congruent(edge: EdgeStore, client: ClientStore, q: StoreQuery, what: str) -> list[str]:
    """Edge and the client store agree on ``q``, in the three steps of the module docstring.

    Returns:
        The engines' top-``TOP`` unit IDs in canonical order (Edge's), for further checks.
    """
    assert q.limit >= FETCH
    hits_e, hits_c = edge.query(q), client.query(q)
    fused_e = [(h.unit_id, h.score) for h in hits_e]
    fused_c = [(h.unit_id, h.score) for h in hits_c]

    # 1. every prefetch agrees modulo ties, scores included
    pre_e, pre_c = edge_prefetches(edge, q), client_prefetches(client, q)
    for i, (pe, pc) in enumerate(zip(pre_e, pre_c)):
        complete = len(pe) < q.prefetch_limit + BEYOND
        assert_same_modulo_ties(pe, pc, n=q.prefetch_limit, complete=complete, what=f"{what}: prefetch {i}")

    # 2. each engine's fused scores are RRF over its own prefetch ranks
    for name, fused, pre in (("edge", fused_e, pre_e), ("client", fused_c, pre_c)):
        bounds = rrf_bounds(pre, q)
        for unit_id, score in fused:
            lo, hi = bounds.get(unit_id, (0.0, 0.0))
            assert lo - 1e-6 <= score <= hi + 1e-6, f"{what}: {name} fused {unit_id}={score} outside RRF bounds [{lo}, {hi}]"

    # 3. the canonical top 10 agree modulo ties, leaving out units a prefetch limit cut through.
    # Both are scored on Edge's prefetches (step 1 showed the client's agree with them), so a
    # unit gets the same canonical score whichever engine returned it.
    arbitrary = set().union(*(cut_at_limit(p, q.prefetch_limit) for p in pre_e + pre_c))
    reference = rrf_bounds(pre_e, q)
    can_e = canonical(fused_e, reference, leave_out=arbitrary)
    can_c = canonical(fused_c, reference, leave_out=arbitrary)
    assert_same_modulo_ties(can_e, can_c, n=TOP, complete=len(fused_e) < q.limit, what=f"{what}: fused top {TOP}")

    # The same unit comes back with the same payload and the same stored vector.
    by_id = {h.unit_id: h for h in hits_c}
    for h in hits_e[:TOP]:
        other = by_id.get(h.unit_id)
        if other is None:
            continue
        assert h.payload == other.payload, f"{what}: payload of {h.unit_id} differs"
        assert h.dense is not None and other.dense is not None
        assert sum(x * y for x, y in zip(h.dense, other.dense)) == pytest.approx(1.0, abs=1e-4)
    return [u for u, _ in can_e[:TOP]]


def assert_hits_match(ids: list[str], units_by_id: dict[str, Any], flt: QueryFilter) -> None:
    """Every returned unit satisfies ``flt`` (checked against the units themselves, not the store)."""
    for unit_id in ids:
        assert matches(units_by_id[unit_id], flt), f"{unit_id} does not satisfy {flt}"


def matches(unit: Any, flt: QueryFilter) -> bool:
    """What ``flt`` is meant to select, written out in Python."""
    if flt.access is not None and unit.access not in flt.access:
        return False
    if flt.doc_ids and unit.doc_id not in flt.doc_ids:
        return False
    if flt.issuers and unit.issuer not in flt.issuers:
        return False
    if flt.kinds and unit.kind not in flt.kinds:
        return False
    if flt.tags and not set(unit.tags) & set(flt.tags):
        return False
    return True


# --------------------------------------------------------------------------- backends
SERVER_URL = os.environ.get("GUIDEQA_QDRANT_URL")


def client_settings(base: Settings, kind: str, tmp: Path, name: str) -> Settings:
    """Settings whose ``build_index`` writes through ``ClientStore``: local mode, or the real server."""
    if kind == "local":
        return edge_only(base).model_copy(update={"qdrant_local_path": tmp / "qlocal", "data_dir": tmp})
    key = os.environ.get("GUIDEQA_QDRANT_API_KEY")
    return base.model_copy(
        update={
            "qdrant_url": SERVER_URL,
            "qdrant_api_key": SecretStr(key) if key else None,
            # A collection alias of its own, so a real deployment's alias is never touched.
            "qdrant_collection": f"guideqa_test_{name}_{uuid.uuid4().hex[:8]}",
            "data_dir": tmp,
        }
    )


def open_client_store(s: Settings) -> ClientStore:
    api_key = s.qdrant_api_key.get_secret_value() if s.qdrant_api_key else None
    client = ClientStore.connect(url=s.qdrant_url, api_key=api_key, local_path=s.qdrant_local_path)
    return ClientStore(client, s.qdrant_collection, backend=s.backend_name)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Callable[[str], Path]]:
    """Fresh directories for local-mode folders, in RAM when /dev/shm exists.

    Local mode commits every point to SQLite on its own, and each commit syncs the disk.
    On tmpfs that costs nothing; on a busy disk it took 15 ms a point.
    """
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(prefix="guideqa-congruence-", dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None))
    try:
        yield lambda name: Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module", params=["local", pytest.param("server", marks=pytest.mark.server)])
def client_kind(request) -> str:
    if request.param == "server" and not SERVER_URL:
        pytest.skip("GUIDEQA_QDRANT_URL is not set")
    return request.param


def edge_only(s: Settings) -> Settings:
    """``s`` with every server setting cleared, so it means the embedded Edge shard."""
    return s.model_copy(update={"qdrant_url": None, "qdrant_api_key": None, "qdrant_local_path": None})


@pytest.fixture(scope="module")
def edge_searcher(request, settings, units, tmp_path_factory) -> Iterator[Searcher]:
    """A searcher on an Edge shard of the session's units: the session's own ``built_index``.

    The session's settings come from the environment too. When ``GUIDEQA_QDRANT_URL`` is
    set, they point at that server, so the Edge side is then built here instead.
    """
    if settings.backend_name == "qdrant-edge":
        request.getfixturevalue("built_index")
        yield request.getfixturevalue("searcher")
        return
    from index.embeddings import get_embedding_model
    from index.tokenizer import get_tokenizer

    s = edge_only(settings).model_copy(update={"data_dir": tmp_path_factory.mktemp("edge")})
    build_index(units, s, embed_model=get_embedding_model(s), tokenizer=get_tokenizer())
    own = Searcher(s, embed_model=get_embedding_model(s), tokenizer=get_tokenizer())
    try:
        yield own
    finally:
        own.close()


@pytest.fixture(scope="module")
def edge(edge_searcher) -> EdgeStore:
    """The Edge shard, held open by ``edge_searcher`` (one holder per shard)."""
    store = edge_searcher.store
    assert isinstance(store, EdgeStore)
    return store


def _build_client(units, base: Settings, kind: str, tmp: Path, name: str, searcher: Searcher) -> Iterator[ClientStore]:
    s = client_settings(base, kind, tmp, name)
    try:
        report = build_index(units, s, embed_model=searcher.embed_model, tokenizer=searcher.tokenizer)
        assert report.meta.collection and report.meta.backend == s.backend_name
        store = open_client_store(s)
        try:
            yield store
        finally:
            store.close()
    finally:
        if kind == "server":
            try:
                drop_server_collections(s)
            except Exception as exc:  # noqa: BLE001 - a server that went away must not hide the test's own error
                warnings.warn(f"could not drop the test collections {s.qdrant_collection}_*: {exc}", RuntimeWarning)


@pytest.fixture(scope="module")
def client(client_kind, units, settings, edge_searcher, scratch) -> Iterator[ClientStore]:
    """The same units as ``built_index``, built by ``build_index`` into a collection behind an alias."""
    yield from _build_client(units, settings, client_kind, scratch("client"), "congruence", edge_searcher)


def section_names(store) -> set[str]:
    return {bare_section(seg) for payload in store.scroll(flt=QueryFilter.everything()) for prov in payload["provenance"] for seg in prov["section_path"][1:]}


@pytest.fixture(scope="module")
def units_by_id(units) -> dict[str, Any]:
    return {u.id: u for u in units}


# Every unit is "public" in the bundled corpus, so the access-label checks run on a
# copy with two more labels: staff-only minutes and ministry-only statistics rows.
def relabel(unit: Any) -> Any:
    if unit.doc_id == MINUTES:
        return unit.model_copy(update={"access": "lg-staff"})
    if unit.doc_id == REPORT and unit.kind == "table_row":
        return unit.model_copy(update={"access": "ministry"})
    return unit


@pytest.fixture(scope="module")
def labelled_units(units) -> list[Any]:
    out = [relabel(u) for u in units]
    counts = {a: sum(u.access == a for u in out) for a in ("public", "lg-staff", "ministry")}
    assert all(counts.values()), counts
    return out


@pytest.fixture(scope="module")
def labelled_edge(labelled_units, settings, edge_searcher, tmp_path_factory) -> Iterator[EdgeStore]:
    s = edge_only(settings).model_copy(update={"data_dir": tmp_path_factory.mktemp("labelled-edge")})
    build_index(labelled_units, s, embed_model=edge_searcher.embed_model, tokenizer=edge_searcher.tokenizer)
    store = EdgeStore.open(s.index_root / "versions" / resolve_current(s.index_root)[0] / "shard")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="module")
def labelled_client(client_kind, labelled_units, settings, edge_searcher, scratch) -> Iterator[ClientStore]:
    yield from _build_client(labelled_units, settings, client_kind, scratch("labelled-client"), "labelled", edge_searcher)


# --------------------------------------------------------------------------- tests
def test_same_units_in_both(edge, client, units):
    assert edge.count() == client.count() == len(units)
    ids = sorted(u.id for u in units)
    assert sorted(p["id"] for p in edge.scroll(flt=QueryFilter.everything())) == ids
    assert sorted(p["id"] for p in client.scroll(flt=QueryFilter.everything())) == ids
    assert section_names(client) == section_names(edge)  # so a question pins the same sections on both


def test_thirty_questions_rank_the_same_top_10(edge, client, edge_searcher):
    assert len(QUESTIONS) == 30
    pinned = 0
    for question in QUESTIONS:
        q = make_query(edge_searcher, question, flt=QueryFilter(access=["public"]))
        pinned += bool(q.section_units)
        top = assert_congruent(edge, client, q, question)
        assert len(top) == TOP
    assert pinned >= 1  # the pinned-sections prefetch was compared too


@pytest.mark.parametrize(
    "strategy,weights",
    [("hybrid", (1.0, 0.5, 2.0, 0.7)), ("hybrid", (0.0, 1.0, 1.0, 1.0)), ("dense", None), ("bm25", None)],
    ids=["weighted", "no-dense-weight", "dense-only", "bm25-only"],
)
def test_weighted_fusion_and_single_prefetch_strategies_agree(edge, client, edge_searcher, strategy, weights):
    """Weighted RRF (:func:`rrf_share`) and the ablation strategies run the same on both engines."""
    pinned = "都民サービス関連業務の判断支援で要件定義フェーズの必須項目は？"
    for question in [*QUESTIONS[::6], pinned]:
        q = make_query(edge_searcher, question, flt=QueryFilter(access=["public"]), strategy=strategy, weights=weights)
        assert assert_congruent(edge, client, q, f"{question} {strategy} {weights}")


@pytest.mark.parametrize(
    "flt",
    [
        QueryFilter(access=["public"], doc_ids=[TOKYO]),
        QueryFilter(access=["public"], doc_ids=[MIC, OVERVIEW]),
        QueryFilter(access=["public"], kinds=["table_row"]),
        QueryFilter(access=["public"], kinds=["qa", "definition"]),
        QueryFilter(access=["public"], doc_ids=[TOKYO], kinds=["clause"]),
        QueryFilter(access=["public"], issuers=["総務省"]),
        QueryFilter(access=["public"], tags=["必須"]),
    ],
    ids=["doc_id", "doc_ids", "kind", "kinds", "doc_id+kind", "issuer", "tag"],
)
def test_doc_and_kind_filters_agree(edge, client, edge_searcher, units, units_by_id, flt):
    expected = {u.id for u in units if matches(u, flt)}
    assert expected
    assert {p["id"] for p in edge.scroll(flt=flt)} == expected
    assert {p["id"] for p in client.scroll(flt=flt)} == expected
    for question in ("生成AIを業務で使うときの注意点は？", "機密性の高い情報の取扱いは？", "要件定義で確認すべきことは？"):
        q = make_query(edge_searcher, question, flt=flt)
        top = assert_congruent(edge, client, q, f"{question} {flt}")
        assert top
        assert_hits_match(top, units_by_id, flt)
        assert_hits_match([h.unit_id for h in client.query(q)], units_by_id, flt)


@pytest.mark.parametrize(
    "groups",
    [["public"], ["lg-staff"], ["ministry", "lg-staff"], ["public", "lg-staff", "ministry"], None],
    ids=["public", "lg-staff", "two-groups", "all-groups", "admin"],
)
def test_access_labels_agree(labelled_edge, labelled_client, labelled_units, edge_searcher, groups):
    flt = QueryFilter(access=groups)
    by_id = {u.id: u for u in labelled_units}
    expected = {u.id for u in labelled_units if matches(u, flt)}
    assert {p["id"] for p in labelled_edge.scroll(flt=flt)} == expected
    assert {p["id"] for p in labelled_client.scroll(flt=flt)} == expected
    for question in ("源内は自治体でも使えるようになりますか", "利用開始済みの生成AI案件は何件？", "生成AIに要機密情報を入力してもいいですか？"):
        q = make_query(edge_searcher, question, flt=flt)
        top = assert_congruent(labelled_edge, labelled_client, q, f"{question} access={groups}")
        assert top
        assert_hits_match(top, by_id, flt)


@pytest.mark.parametrize("groups", [[], ["no-such-group"]], ids=["no-groups", "unknown-group"])
def test_access_without_a_matching_label_returns_nothing(labelled_edge, labelled_client, edge_searcher, groups):
    flt = QueryFilter(access=groups)
    q = make_query(edge_searcher, "源内ってどこのモデル使ってるの？", flt=flt)
    assert labelled_edge.query(q) == [] and labelled_client.query(q) == []
    assert list(labelled_edge.scroll(flt=flt)) == [] and list(labelled_client.scroll(flt=flt)) == []


def test_retrieve_drops_units_outside_the_callers_groups(labelled_edge, labelled_client, labelled_units):
    staff = [u.id for u in labelled_units if u.access == "lg-staff"][:3]
    public = [u.id for u in labelled_units if u.access == "public"][:3]
    asked = [public[0], staff[0], public[1], staff[1], public[2], "no-such-unit"]
    flt = QueryFilter(access=["public"])
    got_e = [p["id"] for p in labelled_edge.retrieve(asked, flt=flt)]
    got_c = [p["id"] for p in labelled_client.retrieve(asked, flt=flt)]
    assert got_e == got_c == public  # in the order asked, staff units and unknown IDs dropped
    assert [p["id"] for p in labelled_client.retrieve(staff, flt=QueryFilter(access=["lg-staff"]))] == staff


# --------------------------------------------------------------------------- aliases in local mode
def _versions(*names: str):
    it = iter(names)
    return lambda corpus_hash: next(it)


def test_rebuild_moves_the_alias_and_keeps_two_collections(units, settings, edge_searcher, scratch, monkeypatch):
    """The zero-downtime swap of the server path works in local mode: alias moved, old ones dropped."""
    import index.build

    monkeypatch.setattr(index.build, "new_version_name", _versions("v20260101T000001-000001-a", "v20260101T000002-000001-b", "v20260101T000003-000001-c"))
    s = client_settings(settings, "local", scratch("alias"), "alias")
    few = units[:20]
    made = [build_index(few, s, embed_model=edge_searcher.embed_model, tokenizer=edge_searcher.tokenizer).meta.collection for _ in range(3)]
    store = open_client_store(s)
    try:
        client = store._client
        assert [(a.alias_name, a.collection_name) for a in client.get_aliases().aliases] == [(s.qdrant_collection, made[2])]
        assert sorted(c.name for c in client.get_collections().collections) == sorted(made[1:])
        assert store.count() == len(few)
    finally:
        store.close()


def test_rebuilds_keep_the_live_and_the_previous_collection_whatever_their_names(units, settings, edge_searcher, scratch, monkeypatch):
    """Which collections survive a rebuild is decided by the alias, not by name order.

    Names that sort against build order once let a rebuild delete the collection
    the alias had just moved to (names made within one second did not sort by age).
    """
    import index.build

    monkeypatch.setattr(index.build, "new_version_name", _versions("v20260101T000000-900000-a", "v20260101T000000-500000-b", "v20260101T000000-100000-c"))
    s = client_settings(settings, "local", scratch("alias"), "alias")
    made = [build_index(units[:20], s, embed_model=edge_searcher.embed_model, tokenizer=edge_searcher.tokenizer).meta.collection for _ in range(3)]
    store = open_client_store(s)
    try:
        assert [(a.alias_name, a.collection_name) for a in store._client.get_aliases().aliases] == [(s.qdrant_collection, made[2])]
        assert sorted(c.name for c in store._client.get_collections().collections) == sorted(made[1:])
    finally:
        store.close()


def test_searcher_keeps_serving_local_mode_after_a_recheck(units, settings, edge_searcher, scratch, monkeypatch):
    """The alias re-check reuses the searcher's client: local mode locks its folder against a second one."""
    import index.backend

    s = client_settings(settings, "local", scratch("recheck"), "recheck")
    build_index(units[:20], s, embed_model=edge_searcher.embed_model, tokenizer=edge_searcher.tokenizer)
    local = Searcher(s, embed_model=edge_searcher.embed_model, tokenizer=edge_searcher.tokenizer)
    try:
        first = local.search("生成AIの利用", top_k=3, flt=QueryFilter(access=["public"]))
        assert first.hits
        monkeypatch.setattr(index.backend, "SERVER_RECHECK_S", 0.0)  # instead of waiting 5 s
        again = local.search("生成AIの利用", top_k=3, flt=QueryFilter(access=["public"]))
        assert [h.unit_id for h in again.hits] == [h.unit_id for h in first.hits]
        assert again.index_version == first.index_version
    finally:
        local.close()
