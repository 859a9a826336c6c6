"""The project's error tree.

Every error carries a stable ``code`` (asserted by tests, listed in the OpenAPI
description) and a polite Japanese ``message`` that is safe to show a user::

    GuideQAError
    ├── IngestError
    │   ├── ManifestError          malformed or missing manifest.json
    │   └── DocumentLoadError      empty, binary, unreadable or unsupported file
    ├── IndexError_
    │   ├── IndexNotReady          no index yet: run `guideqa ingest`
    │   ├── IndexLocked            another process holds the Edge shard
    │   ├── IndexUnavailable       the Qdrant server cannot be reached
    │   └── IndexCorrupt           half-written or damaged shard directory
    ├── ModelUnavailable           weights or packages missing (offline machine)
    ├── QueryRejected              empty, oversize, PII or injection in the input
    ├── LLMError                   generation failed, timed out or endpoint down
    ├── Overloaded                 queue full / rate limited
    └── RulesError                 confidentiality rules file malformed

Library errors are translated into these where our code calls the library, and
the CLI and the API translate these once more at the edge.
"""

from __future__ import annotations

__all__ = [
    "GuideQAError",
    "IngestError",
    "ManifestError",
    "DocumentLoadError",
    "IndexError_",
    "IndexNotReady",
    "IndexLocked",
    "IndexCorrupt",
    "IndexUnavailable",
    "ModelUnavailable",
    "QueryRejected",
    "LLMError",
    "Overloaded",
    "RulesError",
]


class GuideQAError(Exception):
    """Base class: a stable ``code`` plus a Japanese ``message`` for users."""

    code = "internal_error"
    default_message = "内部エラーが発生しました。時間をおいて再度お試しください。"

    def __init__(self, message: str | None = None, *, code: str | None = None, detail: str | None = None):
        self.message = message or self.default_message
        if code:
            self.code = code
        # ``detail`` is for operators (logs, CLI --verbose); never shown to API users.
        self.detail = detail
        super().__init__(self.message)


class IngestError(GuideQAError):
    """Ingestion could not complete."""

    code = "ingest_failed"
    default_message = "文書の取り込みに失敗しました。"


class ManifestError(IngestError):
    """The manifest is missing, not JSON, or has invalid entries."""

    code = "manifest_invalid"
    default_message = "manifest.json の形式が正しくありません。"


class DocumentLoadError(IngestError):
    """One document could not be read; it is reported by name and skipped."""

    code = "document_unreadable"
    default_message = "文書を読み込めませんでした。"


class IndexError_(GuideQAError):  # noqa: N801 - trailing underscore avoids shadowing the builtin
    """Base for index problems."""

    code = "index_error"
    default_message = "検索インデックスに問題があります。"


class IndexNotReady(IndexError_):
    """No complete index exists yet."""

    code = "index_not_ready"
    default_message = "検索インデックスがまだありません。`guideqa ingest` を実行してください。"


class IndexLocked(IndexError_):
    """The embedded shard is held by another process."""

    code = "index_locked"
    default_message = "検索インデックスは別のプロセスが使用中です。"


class IndexUnavailable(IndexError_):
    """The Qdrant server or cluster cannot be reached right now."""

    code = "index_unavailable"
    default_message = "検索サーバーに接続できません。しばらくしてから再度お試しください。"


class IndexCorrupt(IndexError_):
    """The shard directory is incomplete or damaged."""

    code = "index_corrupt"
    default_message = "検索インデックスが壊れているか、作成途中です。`guideqa ingest` で作り直してください。"


class ModelUnavailable(GuideQAError):
    """A model cannot be loaded offline; the message names the package to install."""

    code = "model_unavailable"
    default_message = "モデルを読み込めません。必要なパッケージがインストールされていません。"


class QueryRejected(GuideQAError):
    """The input was refused before retrieval (size, PII, injection, format)."""

    code = "query_rejected"
    default_message = "入力を受け付けられませんでした。"


class LLMError(GuideQAError):
    """Generation failed; callers fall back to the clauses mode."""

    code = "llm_unavailable"
    default_message = "回答生成を利用できないため、該当箇所のみを表示します。"


class Overloaded(GuideQAError):
    """Too many requests; retry after ``retry_after`` seconds."""

    code = "overloaded"
    default_message = "混み合っています。しばらくしてから再度お試しください。"

    def __init__(self, message: str | None = None, *, retry_after: int = 5, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class RulesError(GuideQAError):
    """The confidentiality rules file is malformed or cites a missing unit."""

    code = "rules_invalid"
    default_message = "機密性判定ルールファイルに誤りがあります。"
