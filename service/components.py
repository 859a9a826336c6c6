"""Long-lived components, built once per process and configuration.

The embedding model, the tokenizer and the searcher are expensive to create
(model weights, MeCab, an open shard), so every entry point gets them here.
"""

from __future__ import annotations

import threading

from guideqa.settings import Settings
from index.embeddings import get_embedding_model
from index.search import Searcher
from index.tokenizer import get_tokenizer

__all__ = ["build_searcher"]

_searchers: dict[tuple, Searcher] = {}
_lock = threading.Lock()


def build_searcher(settings: Settings) -> Searcher:
    """The process-wide searcher for these settings (one open shard per process)."""
    key = (str(settings.data_dir), settings.backend_name, settings.qdrant_url, str(settings.qdrant_local_path), settings.embed_backend, settings.embed_model)
    with _lock:
        searcher = _searchers.get(key)
        if searcher is None:
            searcher = Searcher(settings, embed_model=get_embedding_model(settings), tokenizer=get_tokenizer())
            _searchers[key] = searcher
        return searcher
