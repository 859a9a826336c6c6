"""One way to open the index, and library errors translated at the store boundary, iteration included.

Both backends are real: the session's Edge shard, and qdrant-client's local mode
(the server code path) built by ``build_index`` in a folder of its own. A server
that cannot be reached is a closed port on 127.0.0.1; a client closed under a scroll
stands for a server that went away mid-read.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from contextlib import closing
from pathlib import Path

import pytest

from guideqa.errors import IndexNotReady, IndexUnavailable
from index.backend import open_index, open_writer
from index.build import build_index, corpus_hash
from index.search import Searcher
from index.status import index_status
from index.store import SCROLL_PAGE, ClientStore, EdgeStore, QueryFilter
from index.versions import resolve_current

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")

EVERYTHING = QueryFilter.everything()
LOCAL_UNITS = SCROLL_PAGE + 44  # more than one scroll page


@pytest.fixture(scope="module")
def local_settings(settings, units, searcher):
    """The first units, past one scroll page, built through ``build_index`` in local mode (in RAM when possible)."""
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(prefix="guideqa-backend-", dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None))
    s = settings.model_copy(update={"qdrant_local_path": root / "qlocal", "data_dir": root})
    try:
        build_index(units[:LOCAL_UNITS], s, embed_model=searcher.embed_model, tokenizer=searcher.tokenizer)
        yield s
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dead_server(settings, tmp_path):
    """Settings naming a Qdrant server on a port where nothing listens."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return settings.model_copy(update={"qdrant_url": f"http://127.0.0.1:{port}", "data_dir": tmp_path})


def test_open_index_reads_the_edge_versions_from_settings(settings, built_index):
    with closing(open_index(settings)) as reader:
        assert reader.backend == "qdrant-edge"
        assert reader.live_versions()[0] == built_index.meta.version == resolve_current(settings.index_root)[0]
        # The status reads meta.json only: it works while this process's searcher holds the shard.
        assert reader.status()["units"] == built_index.meta.units


def test_open_index_reads_the_local_mode_alias_from_settings(local_settings):
    with closing(open_index(local_settings)) as reader:
        assert reader.backend == "qdrant-local"
        (version,) = reader.live_versions()
        assert version.startswith(f"{local_settings.qdrant_collection}_v")
        store = reader.open_version(version)
        assert store.count() == LOCAL_UNITS
        assert len(list(store.scroll(flt=EVERYTHING))) == LOCAL_UNITS
        status = reader.status()
        assert status["version"] == version and status["units"] == LOCAL_UNITS


def test_the_writer_skips_an_unchanged_corpus_on_both_backends(settings, built_index, local_settings, units, searcher):
    name = searcher.embed_model.model_name
    with closing(open_writer(settings)) as writer:
        assert writer.unchanged(built_index.meta.corpus_hash, embed_model=name, documents=5) == built_index.meta
        assert writer.unchanged("0" * 16, embed_model=name, documents=5) is None
    again = build_index(units[:LOCAL_UNITS], local_settings, embed_model=searcher.embed_model, tokenizer=searcher.tokenizer)
    assert again.skipped and again.meta.units == LOCAL_UNITS
    assert again.meta.corpus_hash == corpus_hash(units[:LOCAL_UNITS], name)
    assert again.meta.collection == index_status(local_settings)["version"]


def test_a_missing_collection_is_index_not_ready_on_every_call(local_settings):
    with closing(open_index(local_settings)) as reader:
        store = reader.open_version(f"{local_settings.qdrant_collection}_gone")
        for call in (store.count, lambda: store.retrieve(["x"], flt=EVERYTHING), lambda: list(store.scroll(flt=EVERYTHING))):
            with pytest.raises(IndexNotReady):
                call()


def test_a_client_lost_in_the_middle_of_a_scroll_is_index_unavailable(local_settings):
    with closing(open_index(local_settings)) as reader:
        store = reader.open_version(reader.live_versions()[0])
        pages = store.scroll(flt=EVERYTHING)
        read = [next(pages)]  # the first page is in hand
        store._client.close()  # the server goes away before the second page
        with pytest.raises(IndexUnavailable):
            read.extend(pages)
        assert len(read) == SCROLL_PAGE


def test_an_unreachable_server_is_index_unavailable_while_scrolling(dead_server, searcher):
    store = ClientStore(ClientStore.connect(url=dead_server.qdrant_url), dead_server.qdrant_collection)
    try:
        pages = store.scroll(flt=EVERYTHING)  # a generator: nothing has been asked yet
        with pytest.raises(IndexUnavailable):
            next(pages)
    finally:
        store.close()
    with pytest.raises(IndexUnavailable):
        index_status(dead_server)
    remote = Searcher(dead_server, embed_model=searcher.embed_model, tokenizer=searcher.tokenizer)
    try:
        with pytest.raises(IndexUnavailable):
            remote.iter_units(flt=EVERYTHING)
    finally:
        remote.close()


def test_an_edge_shard_closed_under_a_read_is_index_unavailable(settings, units, searcher, tmp_path):
    s = settings.model_copy(update={"data_dir": tmp_path})
    build_index(units[:5], s, embed_model=searcher.embed_model, tokenizer=searcher.tokenizer)
    store = EdgeStore.open(s.index_root / "versions" / resolve_current(s.index_root)[0] / "shard")
    pages = store.scroll(flt=EVERYTHING)
    store.close()
    with pytest.raises(IndexUnavailable):
        next(pages)
    with pytest.raises(IndexUnavailable):
        store.retrieve([units[0].id], flt=EVERYTHING)
