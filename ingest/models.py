"""Data shapes of the ingest stage: document metadata and units of knowledge.

A *unit* is the smallest thing we index and cite: one clause with its bullets,
one table row with its header, one definition, one Q&A exchange or one
paragraph. ``text`` is the original wording (lines copied verbatim from the
source, noise removed) and is what a citation quotes; ``norm_text`` is its NFKC
form, used for matching.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DocumentMeta", "Provenance", "Unit", "UnitKind", "PATH_SEP"]

UnitKind = Literal["clause", "table_row", "qa", "definition", "paragraph"]
PATH_SEP = " > "


class DocumentMeta(BaseModel):
    """One manifest entry. ``access`` is the label retrieval filters on."""

    model_config = ConfigDict(extra="ignore")

    file: str = Field(min_length=1)
    title: str = Field(min_length=1)
    issuer: str = ""
    date: str = ""
    version: str = ""
    source_url: str = ""
    language: str = "ja"
    access: str = Field("public", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    note: str = ""

    @property
    def doc_id(self) -> str:
        """Stable document key: the file name without its extension."""
        name = self.file.rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[0] if "." in name else name


class Provenance(BaseModel):
    """Where one occurrence of a unit's text stands in its source."""

    section_path: list[str]
    source_file: str
    line_start: int
    line_end: int


class Unit(BaseModel):
    """A unit of knowledge with its structural path and provenance."""

    id: str
    doc_id: str
    doc_title: str
    issuer: str = ""
    doc_date: str = ""
    access: str = "public"
    section_path: list[str]
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

    @property
    def path_str(self) -> str:
        return PATH_SEP.join(self.section_path)

    def all_paths(self) -> list[list[str]]:
        """Every section path this unit's text appears under (first = primary)."""
        return [p.section_path for p in self.provenance] or [self.section_path]
