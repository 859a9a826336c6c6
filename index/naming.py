"""Which documents a question names: 「〇〇市では」「△△町の要綱で」「国のガイドラインでは」「都の」.

Names are learned from the index's own documents (issuer and title from the manifest),
never from a fixed list, so an office's newly added rule is named the moment it is
ingested. A place name the question relies on that no document has (「××県の規程では？」)
is reported as unknown, so the answer says the documents do not cover it.

    >>> docs = {"k": DocumentInfo("k", "〇〇市生成AI利用規程", "〇〇市", "municipality", "binding"),
    ...         "t": DocumentInfo("t", "東京都 AI導入・活用ガイドライン", "東京都デジタルサービス局", "prefecture", "guidance")}
    >>> named_documents("本市の規程では個人情報を入れていい？", docs).doc_ids
    ['k']
    >>> named_documents("都のガイドラインだと？", docs).doc_ids
    ['t']
    >>> named_documents("××県の規程では？", docs).unknown
    ['××県']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.cleaning import nfkc

__all__ = ["DocumentInfo", "NamedDocuments", "named_documents", "document_aliases"]

# The kind of document a title ends in; naming the kind names the one document of that kind.
_DOC_KIND = re.compile(r"(ガイドライン|ガイドブック|規程|規則|要綱|要領|条例|基準|方針|指針|定期報告|議事要旨|議事録|参考資料|報告書?)")
_PLACE = re.compile(r"(?:^|[^一-龥ァ-ヶー])([一-龥ァ-ヶー〇○△□×◯]{1,7}?(?:都|道|府|県|市|区|町|村))(?:の|では|で|は|が|って|も|に)")
# Words shaped like place names that name no place.
_NOT_A_PLACE = re.compile(r"^(?:都道府県|市区町村|市町村|区市町村|各府|各都道府県|本市|当市|本町|当町|本村|当村|本県|当県|本区|当区|自治体|地方自治体|他市|他県|他の市|全市|全県|市|区|町|村|県|府|都|道|政令市|中核市|特別区)$")
_OWN_OFFICE = re.compile(r"(本|当|うちの?)(市|町|村|県|区|府|都|庁)|うち(?:の|では|で)|我が(?:市|町|村|県)|本団体|当団体|自庁")
# 「町の」「村だと」「市で」 on their own: staff of a 町 mean their own town (not 「市町村の」, not 「横浜市の」).
_BARE_MUNICIPALITY = re.compile(r"(?<![一-龥ァ-ヶ々])(市|町|村|区)(?:の|では|で|だと|が|は|も|として)")
_KIND_WORDS = {
    "national": re.compile(r"(?<![a-zA-Z一-龥])国(?:の|では|で|が|は|と|や|も|・|として|全体)"),
    "prefecture": re.compile(r"(?<![一-龥])(?:都|県|府|道)(?:の|では|で|が|は|と|や|も|・)"),
}
#: Two mentions joined like this (「デジタル庁の議事要旨」) name one document together.
_JOINED = re.compile(r"^(?:の|が|による|・)?$")


@dataclass(frozen=True)
class DocumentInfo:
    """What the index knows of one document (from its manifest entry).

    ``access`` holds the access labels on its units (one, from the manifest, unless
    units were relabelled); a caller sees the document if it may see one of them.
    Empty means no caller but an admin.
    """

    doc_id: str
    title: str
    issuer: str
    issuer_kind: str = "other"
    authority: str = "guidance"
    access: frozenset[str] = frozenset()


@dataclass
class NamedDocuments:
    """The documents a question names (in the order of first mention), and place names no document has."""

    doc_ids: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    own_office: bool = False
    spans: list[tuple[int, int]] = field(default_factory=list)  # where the names stand in the NFKC, space-free question

    def topic(self, question: str) -> str:
        """The question with the document names cut out: what it asks each document about."""
        q = re.sub(r"\s+", "", nfkc(question))
        for start, end in sorted(self.spans, reverse=True):
            if end <= len(q):
                q = q[:start] + "、" + q[end:]
        return q


def document_aliases(doc: DocumentInfo) -> set[str]:
    """Names a question may use for ``doc``: its issuer, each issuing body, the place the issuer is."""
    aliases = {nfkc(doc.title).replace(" ", "")}
    for body in re.split(r"[・、/（）()]", nfkc(doc.issuer)):
        body = body.strip()
        if len(body) >= 2:
            aliases.add(body)
            place = re.match(r"^(.{1,7}?(?:都|道|府|県|市|区|町|村))", body)
            if place and not _NOT_A_PLACE.match(place.group(1)):
                aliases.add(place.group(1))
    return {a for a in aliases if len(a) >= 2}


def _kind_of_title(title: str) -> str | None:
    found = _DOC_KIND.findall(nfkc(title))
    return found[-1] if found else None


def named_documents(question: str, docs: dict[str, DocumentInfo], *, known_text: str = "") -> NamedDocuments:
    """The documents ``question`` names, by issuer, place, kind of document or 「本市」.

    Args:
        question: the question (any width; NFKC is applied).
        docs: the documents that may be named, by doc_id: those the asker may see
            (a document left out is never named, so its existence is not confirmed).
        known_text: NFKC text of the units the asker may see; a place name found there
            (a case study about 香川県) is not unknown even if no document is issued by it.
    """
    q = re.sub(r"\s+", "", nfkc(question))
    out = NamedDocuments()
    # (start, end, the documents it names, every document it could name)
    mentions: list[tuple[int, int, set[str], set[str]]] = []
    alias_places: set[str] = set()
    by_alias: dict[str, set[str]] = {}
    exact: dict[str, set[str]] = {}
    for doc in docs.values():
        for a in document_aliases(doc):
            by_alias.setdefault(a, set()).add(doc.doc_id)
            alias_places.add(a)
            if a == nfkc(doc.issuer).strip():
                exact.setdefault(a, set()).add(doc.doc_id)
    for a, ids in by_alias.items():
        for m in re.finditer(re.escape(a), q):
            # 「総務省」 names the document 総務省 issued alone before one it issued jointly.
            mentions.append((m.start(), m.end(), exact.get(a) or ids, ids))
    # 「都の」「国の」: the kind of issuer; for 国, its guidance before its reports.
    for kind, rx in _KIND_WORDS.items():
        for m in rx.finditer(q):
            fitting = [d for d in docs.values() if d.issuer_kind == kind]
            if kind == "national":
                fitting = [d for d in fitting if d.authority == "guidance"] or fitting
            if fitting:
                ids = {d.doc_id for d in fitting}
                mentions.append((m.start(), m.start() + 1, ids, ids))
    # 「要綱では」「議事要旨」: the kind of document, when one document is of that kind.
    kinds: dict[str, set[str]] = {}
    for doc in docs.values():
        k = _kind_of_title(doc.title)
        if k:
            kinds.setdefault(k, set()).add(doc.doc_id)
    for k, ids in kinds.items():
        if k in ("報告", "報告書", "ガイドライン", "資料"):
            continue
        for m in re.finditer(re.escape(k), q):
            mentions.append((m.start(), m.end(), set(ids), set(ids)))
    binding_docs = [d for d in docs.values() if d.authority == "binding"]
    own = _OWN_OFFICE.search(q) or next(
        (m for m in _BARE_MUNICIPALITY.finditer(q) if any(nfkc(d.issuer).strip().endswith(m.group(1)) for d in binding_docs)), None
    )
    if own:
        out.own_office = True
        binding = {d.doc_id for d in binding_docs}
        if binding:
            mentions.append((own.start(), own.end(), binding, binding))
    mentions.sort()
    # Mentions close together narrow each other down: 「デジタル庁の議事要旨」 is the minutes only.
    groups: list[tuple[int, int, set[str], set[str]]] = []
    for start, end, ids, could in mentions:
        if groups and start >= groups[-1][1] and _JOINED.match(q[groups[-1][1] : start]) and groups[-1][3] & could:
            g_start, g_end, g_ids, g_could = groups[-1]
            both = (g_ids & ids) or (g_could & could)
            groups[-1] = (g_start, max(g_end, end), both, both)
        elif groups and start < groups[-1][1]:
            continue  # inside a longer mention already taken
        else:
            groups.append((start, end, set(ids), set(could)))
    hits = [(start, doc_id) for start, _, ids, _ in groups for doc_id in sorted(ids)]
    out.spans = [(start, end) for start, end, ids, _ in groups if ids]
    out.doc_ids = list(dict.fromkeys(doc_id for _, doc_id in sorted(hits)))
    for m in _PLACE.finditer(q):
        name = m.group(1)
        if _NOT_A_PLACE.match(name) or any(name in a or a in name for a in alias_places):
            continue
        if known_text and name in known_text:
            continue
        out.unknown.append(name)
    return out
