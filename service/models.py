"""Typed request and response schemas of the API and the CLI's ``--json`` output.

Names follow direction (``SearchRequest`` in, ``SearchResponse`` out) and one
word per idea: ``unit``, ``section_path``, ``quote``, ``doc_id``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ingest.curated import DATE_PATTERN, GROUP_PATTERN, ITEM_ID_PATTERN

__all__ = [
    "Filters",
    "SearchRequest",
    "SearchHitPublic",
    "SearchResponse",
    "ProvenancePublic",
    "UnitPublic",
    "DocumentPublic",
    "AskRequest",
    "Citation",
    "PiecePublic",
    "AnswerPart",
    "ComparisonColumn",
    "CompareRequest",
    "CompareResponse",
    "RemovedSentence",
    "CuratedAnswer",
    "SimilarQuestion",
    "AskResponse",
    "CuratedQuote",
    "CuratedCreate",
    "CuratedUpdate",
    "CuratedDraftCreate",
    "CuratedCitationPublic",
    "CuratedPublic",
    "CuratedList",
    "FeedbackCreate",
    "FeedbackPublic",
    "ErrorBody",
    "ErrorResponse",
    "CheckRequest",
    "CheckResponse",
    "CheckCase",
    "ClassRow",
]

_STRICT = ConfigDict(extra="forbid")
_QUESTION_LIMITS = (
    "質問文（日本語）。NFKC 正規化後の文字数（GUIDEQA_MAX_QUERY_CHARS、既定 2000）と埋め込みモデルのトークン数"
    "（既定 512）が上限で、超えると 422 `query_too_long`。空なら `query_empty`、制御文字は `query_binary`。"
)


class Filters(BaseModel):
    """Optional filters applied inside the vector-store query."""

    model_config = _STRICT
    doc_ids: list[str] = Field(default_factory=list, max_length=20, description="Document IDs (file names without extension).")
    issuers: list[str] = Field(default_factory=list, max_length=20, description="e.g. デジタル庁, 総務省, 東京都デジタルサービス局")
    kinds: list[Literal["clause", "table_row", "qa", "definition", "paragraph"]] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list, max_length=20, description="e.g. 必須, 推奨, セキュリティ")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"query": "3C情報をクラウドに入れていい？", "top_k": 5}]})
    # No max_length here: the limits apply to the normalised text (NFKC can expand it) and
    # to the embedding model's tokens, and answer with 422 query_too_long (service.request).
    query: str = Field(description=_QUESTION_LIMITS)
    top_k: int = Field(5, ge=1, le=50)
    filters: Filters = Field(default_factory=Filters)


class SearchHitPublic(BaseModel):
    rank: int
    id: str
    score: float = Field(description="Fused RRF score (rank-based).")
    dense_score: float = Field(description="Cosine similarity of the question and the unit.")
    lexical: float = Field(description="Share of the question's content words found in the unit.")
    doc_id: str
    doc_title: str
    section_path: list[str]
    kind: str
    tags: list[str]
    text: str
    matched_terms: list[str] = Field(description="Question words that occur in the unit, for highlighting.")
    source_file: str
    line_start: int
    line_end: int


class SearchResponse(BaseModel):
    query: str
    results: list[SearchHitPublic]
    index_version: str
    sections: list[str] = Field(default_factory=list, description="Section names the question pinned.")
    timings: dict[str, float] = Field(default_factory=dict)


class ProvenancePublic(BaseModel):
    section_path: list[str]
    source_file: str
    line_start: int
    line_end: int


class UnitPublic(BaseModel):
    id: str
    doc_id: str
    doc_title: str
    issuer: str
    section_path: list[str]
    kind: str
    tags: list[str]
    title: str
    header: str
    row: str
    text: str
    source_file: str
    line_start: int
    line_end: int
    provenance: list[ProvenancePublic]
    content_hash: str


class DocumentPublic(BaseModel):
    doc_id: str
    title: str
    issuer: str
    date: str
    source_file: str
    units: int


class AskRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"question": "入札予定価格って3C情報？ネットの生成AIに入れていい？", "mode": "answer", "stream": False}]},
    )
    question: str = Field(description=_QUESTION_LIMITS)
    mode: Literal["answer", "clauses"] = Field("answer", description="answer: generated answer with citations; clauses: ranked clauses only, no LLM.")
    stream: bool = Field(False, description="Server-sent events: clauses, token, check, citations, done, error.")
    filters: Filters = Field(default_factory=Filters)
    top_k: int = Field(5, ge=1, le=20)


class Citation(BaseModel):
    n: int = Field(description="The [n] used in the answer text.")
    unit_id: str
    doc_id: str = ""
    doc_title: str
    authority: str = Field("", description="binding (the office's own rule), guidance or reference.")
    label: str = Field("", description="Where the unit stands: 第3条第3項 for a rule, else the last sections of its path.")
    section_path: list[str]
    quote: str = Field(description="Verbatim text of the unit (or the exact span used).")
    source_file: str
    line_start: int
    line_end: int


class PiecePublic(BaseModel):
    """One verbatim piece of a cited unit, as placed in a composed answer."""

    n: int = Field(description="The citation [n] of the unit this piece quotes.")
    text: str = Field(description="Exact span of the unit (a table row: its label and the cells asked for).")
    role: Literal["item", "definition", "figure", "rule", "quote", "nearest"]
    unit_id: str
    label: str
    doc_title: str
    scope: Literal["local", "named", "general"] = Field(description="local: the office's own binding rule; named: a document the question named.")


class AnswerPart(BaseModel):
    """The answer to one part of the question: the shape it took and its cited pieces."""

    question: str
    shape: Literal["enumeration", "definition", "figure", "may_i", "comparison", "open_fact"]
    covered: bool = Field(description="False: the documents do not cover this part; `pieces` then holds only the nearest passage.")
    lead: str | None = Field(None, description="One sentence written by the AI model and checked against the pieces (AI-generated).")
    lead_n: int | None = Field(None, description="The citation [n] of the piece the lead stands on.")
    heading: str = ""
    total: int = Field(0, description="Enumeration: how many items the section holds.")
    shown: int = Field(0, description="Enumeration: how many items the answer text lists (all are in `pieces`).")
    pieces: list[PiecePublic] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class ComparisonColumn(BaseModel):
    """One document's position on a topic: its best clauses, or a plain statement that it says nothing."""

    doc_id: str
    doc_title: str
    issuer: str
    authority: str = Field(description="binding (the office's own rule), guidance or reference.")
    covered: bool = Field(description="False: this document says nothing on the topic.")
    clauses: list[Citation] = Field(default_factory=list, description="Verbatim, cited; the sentence shown is in the answer's pieces.")
    note: str | None = None


class CompareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"topic": "ログの保存", "doc_ids": []}]})
    topic: str = Field(description="What to compare the documents on (日本語). Limits as for a question.")
    doc_ids: list[str] = Field(default_factory=list, max_length=10, description="Documents to compare; empty: every document you may see.")


class CompareResponse(BaseModel):
    topic: str
    comparison: list[ComparisonColumn]
    parts: list[AnswerPart] = Field(default_factory=list, description="The same, as a composed answer part (pieces in document order).")
    index_version: str
    timings: dict[str, float] = Field(default_factory=dict)


class RemovedSentence(BaseModel):
    sentence: str
    reason: Literal[
        "unknown_citation", "no_citation", "not_supported", "invented_number", "leak", "prompt_leak",
        "contradicts", "abstain", "too_long", "empty", "unparsed",
    ]


class CheckCase(BaseModel):
    service: str = Field(description="The service case this verdict is for.")
    verdict: Literal["可", "条件付きで可", "不可", "判断できない"]
    conditions: list[str] = Field(default_factory=list)
    reason: str


class ClassRow(BaseModel):
    class_id: str = Field(description="e.g. 3A, 3B, 3C, 2, 1")
    label: str
    national_class: str
    examples: list[str]
    cloud_rule: str
    unit_id: str


class CheckResponse(BaseModel):
    question: str
    information: list[str] = Field(default_factory=list, description="Information items recognised.")
    class_: str | None = Field(None, alias="class", description="Confidentiality class, e.g. 3C; null if unknown.")
    verdict: Literal["可", "条件付きで可", "不可", "判断できない"]
    conditions: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    service_attributes: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list, description="What the question did not say (service, information).")
    cases: list[CheckCase] = Field(default_factory=list, description="Verdicts per likely case when something is unclear.")
    items: list[dict[str, Any]] = Field(default_factory=list, description="One verdict per information item when several are named.")
    citations: list[Citation] = Field(default_factory=list)
    table_row: ClassRow | None = None
    decided_by: Literal["table", "local_policy", "none"] = Field(
        "table", description="What decided the verdict: the national classification table, the office's own policy (local_policy), or nothing (none)."
    )
    local_rule: str | None = Field(None, description="The id of the office's policy rule that decided, when decided_by is local_policy.")
    then_rule: str | None = Field(
        None,
        description="For information of unknown class treated as another class by the deciding rule (「なお不明なら機密性2として扱う」): "
        "the id of the policy rule for that class, whose reason and article follow the deciding one.",
    )

    model_config = ConfigDict(populate_by_name=True)


class CheckRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"question": "施設の設計図面、ネットの生成AIに貼って要約させていい？"}, {"information": "入札予定価格", "service": "約款型の生成AIサービス"}]},
    )
    question: str | None = Field(None, description=_QUESTION_LIMITS)
    information: str | None = Field(None, description="情報の種類（例: 入札予定価格）。" + _QUESTION_LIMITS)
    service: str | None = Field(None, description="サービス（例: 約款型の生成AIサービス）。" + _QUESTION_LIMITS)


class CuratedAnswer(BaseModel):
    """A registered answer (「登録済みの回答」): written and reviewed by the office, not generated by AI."""

    id: str
    question: str = Field(description="The registered question the question matched.")
    answer: str = Field(description="The registered answer, as the office wrote it.")
    citations: list[Citation] = Field(description="The passages it rests on; each quote is verbatim text of its unit.")
    author: str
    date: str = Field(description="When it was registered (YYYY-MM-DD).")
    score: float = Field(description="Cosine similarity of the question and the registered question.")


class SimilarQuestion(BaseModel):
    """A registered question close to the question (「よく似た質問」); asking it gets its registered answer."""

    id: str
    question: str
    score: float = Field(description="Cosine similarity of the question and this registered question.")


class AskResponse(BaseModel):
    answer_id: str
    answer: str
    citations: list[Citation]
    abstained: bool
    mode: Literal["answer", "clauses"]
    model: str | None
    index_version: str
    timings: dict[str, float] = Field(default_factory=dict)
    related: list[SearchHitPublic] = Field(default_factory=list, description="Ranked clauses (関連する可能性のある箇所).")
    parts: list[AnswerPart] = Field(default_factory=list, description="The composed answer, one entry per part of the question.")
    comparison: list[ComparisonColumn] = Field(default_factory=list, description="For a comparison question: each document's position, side by side.")
    removed: list[RemovedSentence] = Field(default_factory=list, description="Sentences the citation gate removed.")
    notice: str | None = Field(None, description="e.g. why the answer fell back to clauses.")
    check: CheckResponse | None = Field(None, description="Confidentiality verdict when the question is of that kind.")
    ai_generated: bool = Field(True, description="The answer text was produced by an AI model and must be checked against the sources.")
    curated: CuratedAnswer | None = Field(
        None, description="A registered answer whose question closely matches, shown first as 「登録済みの回答」 (never AI-generated); the composed answer follows."
    )
    similar: list[SimilarQuestion] = Field(
        default_factory=list, description="Up to 3 other registered questions close to the question (「よく似た質問」), closest first."
    )


class CuratedQuote(BaseModel):
    """One passage a registered answer cites: a document and its words (spaces and full/half width aside)."""

    model_config = _STRICT
    doc_id: str = Field(min_length=1, max_length=200)
    quote: str = Field(min_length=1, max_length=2000)


class CuratedCreate(BaseModel):
    """A new registered Q&A. Its quotes must each be found in their document."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "question": "ハルシネーションとは何ですか？",
                    "answer": "東京都のガイドラインでは、生成AIが事実と異なることをもっともらしく回答することとされています。",
                    "citations": [{"doc_id": "tokyo_ai-guideline_2026-03-30", "quote": "生成AIが事実と異なることをもっともらしく回答すること"}],
                    "author": "DX推進課",
                    "group": "public",
                }
            ]
        },
    )
    id: str | None = Field(None, pattern=ITEM_ID_PATTERN, description="Omit to get a new cur-… ID.")
    question: str = Field(min_length=1, max_length=500)
    answer: str = Field(min_length=1, max_length=4000)
    citations: list[CuratedQuote] = Field(min_length=1, max_length=10, description="At least one: the answer must cite the documents.")
    author: str = Field("", max_length=100)
    date: str | None = Field(None, pattern=DATE_PATTERN, description="Registration date; default today.")
    group: str = Field("public", pattern=GROUP_PATTERN, description="Access label of who may be shown it.")
    status: Literal["published", "draft"] = Field("published", description="draft: kept, never shown.")


class CuratedUpdate(BaseModel):
    """Changes to a registered Q&A; fields left out stay as they are (``{"status": "published"}`` publishes a draft)."""

    model_config = _STRICT
    question: str | None = Field(None, min_length=1, max_length=500)
    answer: str | None = Field(None, min_length=1, max_length=4000)
    citations: list[CuratedQuote] | None = Field(None, min_length=1, max_length=10)
    author: str | None = Field(None, max_length=100)
    date: str | None = Field(None, pattern=DATE_PATTERN)
    group: str | None = Field(None, pattern=GROUP_PATTERN)
    status: Literal["published", "draft"] | None = None


class CuratedDraftCreate(BaseModel):
    """Turn an earlier answer (an ``answer_id`` from the audit log, e.g. one rated 👎) into a draft to correct."""

    model_config = _STRICT
    answer_id: str = Field(min_length=1, max_length=64)


class CuratedCitationPublic(BaseModel):
    doc_id: str
    quote: str
    unit_id: str | None = Field(None, description="The unit the quote was found in; null when it is not found (the item is then not shown).")


class CuratedPublic(BaseModel):
    id: str
    question: str
    answer: str
    citations: list[CuratedCitationPublic]
    author: str
    date: str
    group: str
    status: Literal["published", "draft"]
    indexed: bool | None = Field(None, description="Shown to staff now (in the live index); null when the index could not be read.")
    problems: list[str] = Field(default_factory=list, description="Why a published item cannot be shown (a quote no longer in its document).")


class CuratedList(BaseModel):
    items: list[CuratedPublic]


class FeedbackCreate(BaseModel):
    model_config = _STRICT
    answer_id: str = Field(min_length=1, max_length=64)
    rating: Literal["up", "down"]
    comment: str = Field("", max_length=2000)


class FeedbackPublic(BaseModel):
    answer_id: str
    rating: str
    recorded: bool


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code.")
    message: str = Field(description="Japanese message safe to show a user.")


class ErrorResponse(BaseModel):
    error: ErrorBody
