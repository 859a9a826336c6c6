"""The project's error tree: every error the project raises, with its HTTP status and stable code.

Every class carries a stable ``code`` (asserted by tests, listed in the OpenAPI
description), the HTTP ``status`` the API answers it with, and a polite Japanese
``message`` that is safe to show a user. No two classes share a code::

    GuideQAError                       internal_error          500
    ├── IngestError                    ingest_failed           500
    │   ├── ManifestError              manifest_invalid        500
    │   └── DocumentLoadError          document_unreadable     500
    ├── IndexError_                    index_error             503
    │   ├── IndexNotReady              index_not_ready         503
    │   ├── IndexLocked                index_locked            503
    │   ├── IndexUnavailable           index_unavailable       503
    │   └── IndexCorrupt               index_corrupt           503
    ├── ModelUnavailable               model_unavailable       503
    ├── LLMError                       llm_unavailable         503
    ├── RulesError                     rules_invalid           500
    ├── EvalError                      eval_failed             500
    │   ├── EvalDataInvalid            eval_data_invalid       500
    │   ├── DiffSourceError            diff_source_invalid     500
    │   └── JudgeUnavailable           judge_unavailable       503
    ├── AuditUnavailable               audit_unavailable       503
    ├── RequestError                   invalid_request         422
    │   ├── InvalidJSON                invalid_json            400
    │   ├── BodyTooLarge               body_too_large          413
    │   ├── UnsupportedMediaType       unsupported_media_type  415
    │   ├── MethodNotAllowed           method_not_allowed      405
    │   ├── NotFound                   not_found               404
    │   ├── Conflict                   conflict                409
    │   ├── CuratedInvalid             curated_invalid         422
    │   ├── Unauthorized               unauthorized            401
    │   ├── Forbidden                  forbidden               403
    │   └── RequestTimedOut            timeout                 504
    ├── QueryRejected                  query_rejected          422
    │   ├── QueryInvalid               query_invalid           422
    │   ├── QueryEmpty                 query_empty             422
    │   ├── QueryTooLong               query_too_long          422
    │   ├── QueryBinary                query_binary            422
    │   ├── PIIDetected                pii_detected            422
    │   ├── DenyWordDetected           deny_word               422
    │   └── InjectionDetected          injection_detected      422
    └── Overloaded                     overloaded              503  (+ Retry-After)
        ├── RateLimited                rate_limited            429
        └── AuditBacklogFull           audit_backlog_full      503

Library errors are translated into these where our code calls the library, and
the CLI and the API translate these once more at the edge (the API's status
table, ``service.api.errors.ERROR_STATUS``, is :func:`error_statuses`).
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
    "LLMError",
    "RulesError",
    "AuditUnavailable",
    "RequestError",
    "InvalidJSON",
    "BodyTooLarge",
    "UnsupportedMediaType",
    "MethodNotAllowed",
    "NotFound",
    "Conflict",
    "CuratedInvalid",
    "Unauthorized",
    "Forbidden",
    "RequestTimedOut",
    "QueryRejected",
    "QueryInvalid",
    "QueryEmpty",
    "QueryTooLong",
    "QueryBinary",
    "PIIDetected",
    "DenyWordDetected",
    "InjectionDetected",
    "Overloaded",
    "EvalError",
    "EvalDataInvalid",
    "DiffSourceError",
    "JudgeUnavailable",
    "RateLimited",
    "AuditBacklogFull",
    "error_classes",
    "error_statuses",
]


class GuideQAError(Exception):
    """Base class: a stable ``code``, its HTTP ``status`` and a Japanese ``message`` for users."""

    code = "internal_error"
    status = 500
    default_message = "内部エラーが発生しました。時間をおいて再度お試しください。"

    def __init__(self, message: str | None = None, *, code: str | None = None, detail: str | None = None):
        self.message = message or self.default_message
        if code:
            # Kept for callers that name a code of a sibling class (``QueryRejected(code="query_empty")``);
            # the API answers with the status registered for that code.
            self.code = code
        # ``detail`` is for operators (logs, CLI --verbose); never shown to API users.
        self.detail = detail
        super().__init__(self.message)


# --------------------------------------------------------------------------- ingestion
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


# --------------------------------------------------------------------------- index and models
class IndexError_(GuideQAError):  # noqa: N801 - trailing underscore avoids shadowing the builtin
    """Base for index problems."""

    code = "index_error"
    status = 503
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
    status = 503
    default_message = "モデルを読み込めません。必要なパッケージがインストールされていません。"


class LLMError(GuideQAError):
    """Generation failed; callers fall back to the clauses mode."""

    code = "llm_unavailable"
    status = 503
    default_message = "回答生成を利用できないため、該当箇所のみを表示します。"


class RulesError(GuideQAError):
    """The confidentiality or input-protection rules file is malformed or cites a missing unit."""

    code = "rules_invalid"
    default_message = "機密性判定ルールファイルに誤りがあります。"


class EvalError(GuideQAError):
    """The evaluation could not run (``guideqa eval``, ``guideqa diff``); never raised by the API."""

    code = "eval_failed"
    default_message = "評価を実行できませんでした。"


class EvalDataInvalid(EvalError):
    """The dev or check set does not agree with the index; nothing was run."""

    code = "eval_data_invalid"
    default_message = "評価データに誤りがあるため、評価を実行しませんでした。"


class DiffSourceError(EvalError):
    """A version to compare cannot be found or read."""

    code = "diff_source_invalid"
    default_message = "比較するバージョンを読み込めませんでした。"


class JudgeUnavailable(EvalError):
    """The evaluation's LLM judge (local server or URL) cannot be started or reached."""

    code = "judge_unavailable"
    status = 503
    default_message = "評価用の LLM ジャッジを起動できませんでした。"


class AuditUnavailable(GuideQAError):
    """The audit database cannot be read (export, feedback on an answer no longer in memory)."""

    code = "audit_unavailable"
    status = 503
    default_message = "監査ログを読み込めませんでした。しばらくしてから再度お試しください。"


# --------------------------------------------------------------------------- the request itself
class RequestError(GuideQAError):
    """The request cannot be served as sent: malformed, unauthenticated, not allowed or not found (4xx)."""

    code = "invalid_request"
    status = 422
    default_message = "リクエストの内容に誤りがあります。"


class InvalidJSON(RequestError):
    """The body is not JSON (or not UTF-8)."""

    code = "invalid_json"
    status = 400
    default_message = "リクエスト本文を解析できません。正しい JSON（UTF-8）を送ってください。"


class BodyTooLarge(RequestError):
    """The body is over the size limit."""

    code = "body_too_large"
    status = 413
    default_message = "リクエスト本文が大きすぎます。"


class UnsupportedMediaType(RequestError):
    """The body is not ``application/json``."""

    code = "unsupported_media_type"
    status = 415
    default_message = "Content-Type は application/json を指定してください。"


class MethodNotAllowed(RequestError):
    """The path exists, the method does not."""

    code = "method_not_allowed"
    status = 405
    default_message = "このメソッドは使用できません。"


class NotFound(RequestError):
    """The thing asked for does not exist, or the caller may not see it (both look the same)."""

    code = "not_found"
    status = 404
    default_message = "指定されたものが見つかりません。"


class Conflict(RequestError):
    """What the request would create exists already (an id taken, a draft already made)."""

    code = "conflict"
    status = 409
    default_message = "同じものがすでに登録されています。"


class CuratedInvalid(RequestError):
    """A registered answer that cannot be accepted: a quote not in its document, no citation, mixed groups."""

    code = "curated_invalid"
    default_message = "登録済みの回答の内容に誤りがあります。"


class Unauthorized(RequestError):
    """Missing or unknown API key."""

    code = "unauthorized"
    status = 401
    default_message = "API キーが必要です。正しいキーを X-API-Key ヘッダーで指定してください。"


class Forbidden(RequestError):
    """The key's role does not allow this operation."""

    code = "forbidden"
    status = 403
    default_message = "この操作を行う権限がありません。"


class RequestTimedOut(RequestError):
    """No response could be started within the request time limit."""

    code = "timeout"
    status = 504
    default_message = "処理に時間がかかりすぎたため中断しました。質問を短くするか、時間をおいて再度お試しください。"


# --------------------------------------------------------------------------- the question
class QueryRejected(GuideQAError):
    """The input was refused before retrieval (size, PII, injection, format)."""

    code = "query_rejected"
    status = 422
    default_message = "入力を受け付けられませんでした。"


class QueryInvalid(QueryRejected):
    """The question is not a string."""

    code = "query_invalid"
    default_message = "質問は文字列で入力してください。"


class QueryEmpty(QueryRejected):
    """The question is empty or blank."""

    code = "query_empty"
    default_message = "質問が空です。内容を入力してください。"


class QueryTooLong(QueryRejected):
    """The normalised question is over the character or the embedding-token limit."""

    code = "query_too_long"
    default_message = "質問が長すぎます。短くして再度お試しください。"


class QueryBinary(QueryRejected):
    """The question holds control bytes or undecodable characters."""

    code = "query_binary"
    default_message = "質問に読み取れない文字（制御文字やバイナリ）が含まれています。"


class PIIDetected(QueryRejected):
    """The question holds personal data of a category set to ``block``."""

    code = "pii_detected"
    default_message = "個人情報と思われる内容が含まれているため、送信をブロックしました。"


class DenyWordDetected(QueryRejected):
    """The question holds a word from the office's deny list."""

    code = "deny_word"
    default_message = "取り扱いに注意が必要な語が含まれているため、送信をブロックしました。"


class InjectionDetected(QueryRejected):
    """The question is only an attempt to override the assistant's instructions."""

    code = "injection_detected"
    default_message = "AI への指示を書き換えようとする内容が含まれているため、送信をブロックしました。"


# --------------------------------------------------------------------------- load
class Overloaded(GuideQAError):
    """Too many requests; retry after ``retry_after`` seconds (sent as ``Retry-After``)."""

    code = "overloaded"
    status = 503
    default_message = "混み合っています。しばらくしてから再度お試しください。"

    def __init__(self, message: str | None = None, *, retry_after: int = 5, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class RateLimited(Overloaded):
    """Too many requests from one key or one client address (failed keys included)."""

    code = "rate_limited"
    status = 429
    default_message = "短時間にリクエストが集中しています。しばらくしてから再度お試しください。"


class AuditBacklogFull(Overloaded):
    """The audit store has been unwritable so long that its in-memory queue is full."""

    code = "audit_backlog_full"
    default_message = "利用記録を保存できない状態が続いているため、受付を一時停止しています。しばらくしてから再度お試しください。"


def error_classes() -> list[type[GuideQAError]]:
    """Every class of the tree defined in this module, parents before children."""
    out: list[type[GuideQAError]] = []
    todo: list[type[GuideQAError]] = [GuideQAError]
    while todo:
        cls = todo.pop(0)
        if cls.__module__ == __name__:
            out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


def error_statuses() -> dict[str, int]:
    """``{code: HTTP status}`` for every class of the tree (the API's status table)."""
    return {cls.code: cls.status for cls in error_classes()}
