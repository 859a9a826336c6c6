"""Shared fixtures: the real corpus ingested once into a real Qdrant Edge shard.

The embedding cache is shared with the project's ``.guideqa/cache`` so a second
test run does not re-embed the corpus (the index itself is built fresh in a temp dir).
"""

from __future__ import annotations

import os
import random

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

from guideqa.settings import PROJECT_ROOT, Settings  # noqa: E402

CORPUS = PROJECT_ROOT / "corpus"
SHARED_CACHE = PROJECT_ROOT / ".guideqa" / "cache"
SHARED_MODELS = PROJECT_ROOT / ".guideqa" / "models"


@pytest.fixture(autouse=True)
def _seed():
    random.seed(1234)


@pytest.fixture(scope="session")
def ingest_result():
    from ingest.pipeline import ingest_corpus

    return ingest_corpus(CORPUS)


@pytest.fixture(scope="session")
def units(ingest_result):
    return ingest_result.units


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    """Settings for a throwaway data dir holding a real Edge index of the real corpus.

    The corpus is a copy: the admin API writes the curated-answer registry in the corpus
    folder, and no test may change the repository's files.
    """
    import shutil

    corpus = tmp_path_factory.mktemp("guideqa-corpus") / "corpus"
    shutil.copytree(CORPUS, corpus)
    # Explicitly embedded: a GUIDEQA_QDRANT_URL in the environment must never let the
    # tests move a real deployment's alias (the server suite opts in on its own).
    return Settings(
        corpus_dir=corpus,
        data_dir=tmp_path_factory.mktemp("guideqa-data"),
        cache_dir=SHARED_CACHE,
        models_path=SHARED_MODELS,
        allow_anonymous=True,
        qdrant_url=None,
        qdrant_api_key=None,
        qdrant_local_path=None,
        api_keys=None,
        api_keys_file=None,
        llm_backend="llama-cpp",
    )


@pytest.fixture(scope="session")
def built_index(settings, units):
    from index.build import build_index
    from index.embeddings import get_embedding_model
    from index.tokenizer import get_tokenizer

    return build_index(units, settings, embed_model=get_embedding_model(settings), tokenizer=get_tokenizer())


@pytest.fixture(scope="session")
def searcher(settings, built_index):
    from service.components import build_searcher

    return build_searcher(settings)
