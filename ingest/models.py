"""Data shapes of the ingest stage: document metadata and units of knowledge.

A *unit* is the smallest thing we index and cite: one clause with its bullets,
one table row with its header, one definition, one Q&A exchange or one
paragraph. ``text`` is the original wording (lines copied verbatim from the
source, noise removed) and is what a citation quotes; ``norm_text`` is its NFKC
form, used for matching.

A unit of kind ``curated`` is different: it is one of the office's registered Q&A
(「登録済みの回答」, :mod:`ingest.curated`). Its ``text`` is the registered question
(what is embedded and BM25-indexed) and ``curated`` holds the answer and the units
it cites. It is never a search result nor a citation itself (the index keeps it out
of every ordinary query).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "Authority", "DocumentMeta", "IssuerKind", "Provenance", "Unit", "UnitKind", "PATH_SEP", "AUTHORITIES", "ISSUER_KINDS",
    "DOC_ID_FOLDER_SEP", "CURATED_KIND", "CuratedCitation", "CuratedRecord",
]

UnitKind = Literal["clause", "table_row", "qa", "definition", "paragraph", "curated"]
#: The kind of a registered Q&A unit; every ordinary read of the index leaves it out.
CURATED_KIND = "curated"
# Who issued a document, and how far it binds the office reading it: a municipality's
# own 規程 (binding) outranks a ministry's guideline (guidance) and a WG handout (reference).
IssuerKind = Literal["national", "prefecture", "municipality", "other"]
Authority = Literal["binding", "guidance", "reference"]
ISSUER_KINDS: tuple[str, ...] = get_args(IssuerKind)
AUTHORITIES: tuple[str, ...] = get_args(Authority)
PATH_SEP = " > "
# A sub-folder in a doc ID: URL-safe (unit IDs start with the doc ID and travel in
# ``/v1/units/{id}``), and not a character file names of the bundled corpus use.
DOC_ID_FOLDER_SEP = "__"


class DocumentMeta(BaseModel):
    """One manifest entry. ``access`` is the label retrieval filters on.

    ``file`` is a path relative to the corpus directory (``local/kitei.md``);
    ``supersedes`` names the doc ID of an older document this one replaces.
    """

    model_config = ConfigDict(extra="ignore")

    file: str = Field(min_length=1)
    title: str = Field(min_length=1)
    issuer: str = ""
    issuer_kind: IssuerKind = "other"
    authority: Authority = "guidance"
    date: str = ""
    effective_date: str = ""
    supersedes: str = ""
    version: str = ""
    source_url: str = ""
    language: str = "ja"
    access: str = Field("public", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    note: str = ""

    @field_validator("file")
    @classmethod
    def _relative_path(cls, value: str) -> str:
        path = PurePosixPath(value)
        if "\\" in value or path.is_absolute() or ".." in path.parts or value.endswith("/"):
            raise ValueError("file must be a relative path inside the corpus directory")
        return str(path)

    @property
    def doc_id(self) -> str:
        """Stable document key: the file's path in the corpus without its extension.

        Top-level files keep their plain stem; a sub-folder joins with ``__``, so two
        offices' ``kitei.md`` stay apart and the title never enters the ID:

        >>> DocumentMeta(file="local/kitei.md", title="規程").doc_id
        'local__kitei'
        """
        path = PurePosixPath(self.file)
        stem = path.name.rsplit(".", 1)[0] if "." in path.name else path.name
        return DOC_ID_FOLDER_SEP.join([*path.parts[:-1], stem])


class Provenance(BaseModel):
    """Where one occurrence of a unit's text stands in its source."""

    section_path: list[str]
    source_file: str
    line_start: int
    line_end: int


class CuratedCitation(BaseModel):
    """One citation of a registered answer, resolved to the corpus unit that holds it.

    ``quote`` is the exact span of that unit's ``text`` the registered quote matched
    (NFKC- and whitespace-insensitively), so it is always verbatim.
    """

    unit_id: str
    doc_id: str
    quote: str


class CuratedRecord(BaseModel):
    """What a ``curated`` unit carries besides its question: the registered answer and its citations."""

    item_id: str
    answer: str
    citations: list[CuratedCitation] = Field(min_length=1)
    author: str = ""
    date: str = ""


class Unit(BaseModel):
    """A unit of knowledge with its structural path and provenance.

    ``label`` is the citation of a rule's clause (「第3条第2項」「附則第1項」「別表第1」);
    it stays empty for documents that are not rules. ``doc_number`` and ``doc_enacted``
    are the rule's 番号 (「訓令第6号」) and 制定日 as printed under its title.
    """

    id: str
    doc_id: str
    doc_title: str
    issuer: str = ""
    issuer_kind: IssuerKind = "other"
    authority: Authority = "guidance"
    doc_date: str = ""
    effective_date: str = ""
    doc_number: str = ""
    doc_enacted: str = ""
    access: str = "public"
    section_path: list[str]
    label: str = ""
    kind: UnitKind
    tags: list[str] = Field(default_factory=list)
    title: str = ""
    header: str = ""
    row: str = Field("", description="Table rows: 'header: cell' pairs with merged cells filled down.")
    text: str
    norm_text: str
    source_file: str
    line_start: int
    line_end: int
    provenance: list[Provenance] = Field(default_factory=list)
    content_hash: str = ""
    curated: CuratedRecord | None = Field(None, description="Kind curated only: the registered answer and its resolved citations.")

    @property
    def path_str(self) -> str:
        return PATH_SEP.join(self.section_path)

    def all_paths(self) -> list[list[str]]:
        """Every section path this unit's text appears under (first = primary)."""
        return [p.section_path for p in self.provenance] or [self.section_path]
