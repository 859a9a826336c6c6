"""Japanese tokenisation for BM25 and term highlighting (fugashi + unidic-lite).

Qdrant's own text tokenizers do not segment Japanese the way UniDic does, so we
tokenise here and hand Qdrant sparse vectors.

    >>> tok = JapaneseTokenizer()
    >>> "§機密性3C" in tok.tokens("３Ｃ情報を入れてもいい？")
    True

Text is NFKC-normalised first (``３Ｃ`` → ``3C``); particles, auxiliaries and
punctuation are dropped; verbs and adjectives are reduced to their lemma; domain
compounds from ``data/compounds.tsv`` are added whole as ``§``-prefixed tokens
so that ``機密性3C`` is not only ``機密 / 性 / 3 / C``.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from guideqa.errors import ModelUnavailable

__all__ = ["JapaneseTokenizer", "get_tokenizer", "normalize_for_match", "COMPOUND_PREFIX"]

DATA_DIR = Path(__file__).parent / "data"
COMPOUND_PREFIX = "§"
_KEEP_POS = {"名詞", "動詞", "形容詞", "形状詞", "副詞", "接頭辞", "代名詞"}
_STOP = {
    "する", "ある", "いる", "なる", "れる", "られる", "こと", "もの", "よう", "ため", "等", "など",
    "これ", "それ", "あれ", "この", "その", "どう", "何", "なに", "の", "ん", "さ", "とき", "場合",
    "思う", "いう", "言う", "できる", "出来る", "おる", "くる", "いく", "行う", "やる", "ください", "下さる",
    "いい", "良い", "よい", "大丈夫", "教える", "知る", "ok", "OK", "ちゃう", "じゃ", "ね", "よ", "か",
}
_ASCII_STOP = {"the", "and", "for", "with", "from", "what", "how", "can", "use", "ok"}
# Everyday IT words staff write in Latin letters: kinds of thing, not names a document must mention.
# (A URL or a mail address is different: asking for one needs a document that gives it.)
_GENERIC_LATIN = {"sns", "pdf", "faq", "api", "ocr", "csv", "usb", "html", "web", "ict", "wifi", "gps", "excel", "word"}
_ASCII_WORD = re.compile(r"[A-Z0-9][A-Z0-9.\-']*[A-Z0-9]|[A-Z]{2,}")


def normalize_for_match(text: str) -> str:
    """NFKC, whitespace removed, ASCII upper-cased: the form compounds are matched in."""
    s = unicodedata.normalize("NFKC", text)
    s = re.sub(r"\s+", "", s)
    return s.upper()


def _read_table(path: Path) -> list[tuple[str, list[str]]]:
    rows: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        head, _, rest = line.partition("\t")
        variants = [normalize_for_match(v) for v in rest.split("|") if v.strip()]
        rows.append((head.strip(), variants))
    return rows


@dataclass(frozen=True)
class Token:
    surface: str
    norm: str


class JapaneseTokenizer:
    """Tokens for BM25: content words (lemmas) plus protected domain compounds."""

    def __init__(self, compounds_path: Path | None = None, synonyms_path: Path | None = None):
        try:
            import fugashi
        except ImportError as exc:  # pragma: no cover - exercised only on a broken install
            raise ModelUnavailable(
                "日本語形態素解析器を読み込めません。`pip install fugashi unidic-lite` を実行してください。"
            ) from exc
        try:
            self._tagger = fugashi.Tagger()
        except RuntimeError as exc:  # pragma: no cover
            raise ModelUnavailable("辞書 unidic-lite が見つかりません。`pip install unidic-lite` を実行してください。") from exc
        # MeCab's tagger keeps state between calls; the API serves requests from threads.
        self._lock = threading.Lock()
        self.compounds = _read_table(compounds_path or DATA_DIR / "compounds.tsv")
        self.synonyms = _read_table(synonyms_path or DATA_DIR / "synonyms.tsv")

    def words(self, text: str) -> list[Token]:
        """Content words with their surface form (for highlighting) and normalised form."""
        norm_text = unicodedata.normalize("NFKC", text)
        with self._lock:
            parsed = [(w.surface, w.feature.pos1, w.feature.lemma) for w in self._tagger(norm_text)]
        out: list[Token] = []
        for surface, pos, lemma in parsed:
            if pos not in _KEEP_POS:
                continue
            if pos in ("動詞", "形容詞") and lemma:
                form = lemma.split("-")[0]
            else:
                form = surface
            form = form.lower()
            if form in _STOP or surface in _STOP:
                continue
            if len(form) == 1 and (form.isascii() or form.isdigit()):
                continue  # "3", "c": the ASCII pass below keeps "3C" whole
            out.append(Token(surface, form))
        return out

    def entity_terms(self, text: str) -> list[str]:
        """Names the question relies on: proper nouns and Latin-script words (``横浜``, ``Copilot``).

        A question naming something the corpus never mentions is not covered by it,
        however similar the rest of its wording is.
        """
        norm_text = unicodedata.normalize("NFKC", text)
        with self._lock:
            parsed = [(w.surface, w.feature.pos1, w.feature.pos2) for w in self._tagger(norm_text)]
        out = []
        for surface, pos1, pos2 in parsed:
            word = surface.lower()
            if surface.isascii() and (len(surface) < 3 or word in _ASCII_STOP or word in _GENERIC_LATIN):
                continue  # 「OK」「HP」: everyday shorthand, whatever the dictionary tags it
            if pos1 == "名詞" and pos2 == "固有名詞" and len(surface) >= 2:
                out.append(word)
            elif surface.isascii() and surface.isalpha() and len(surface) >= 3 and word not in _ASCII_STOP:
                out.append(word)
        return list(dict.fromkeys(out))

    def compound_tokens(self, text: str) -> list[str]:
        s = normalize_for_match(text)
        found: list[str] = []
        for canonical, variants in self.compounds:
            count = sum(s.count(v) for v in variants if v)
            found += [COMPOUND_PREFIX + canonical] * min(count, 5)
        return found

    def tokens(self, text: str, *, query: bool = False) -> list[str]:
        """BM25 tokens of ``text`` (with repeats, for term frequency).

        Args:
            text: any text; NFKC is applied here.
            query: also expand staff shorthand (``デジ庁`` → ``デジタル庁``) from ``data/synonyms.tsv``.
        """
        toks = [t.norm for t in self.words(text)]
        upper = unicodedata.normalize("NFKC", text).upper()
        toks += [w.lower() for w in _ASCII_WORD.findall(upper)]
        toks += self.compound_tokens(text)
        if query:
            squashed = normalize_for_match(text)
            for short, expansions in self.synonyms:
                if normalize_for_match(short) in squashed:
                    for exp in expansions:
                        toks += [t.norm for t in self.words(exp)] + self.compound_tokens(exp)
        return toks

    def synonym_groups(self, text: str) -> list[tuple[set[str], set[str]]]:
        """Each staff word of ``text`` that ``data/synonyms.tsv`` expands, as (the tokens of the
        word as said, the tokens of the corpus's words for it): 「ログ」 → ({ログ}, {記録, 履歴}).
        One concept however many of its words a passage holds."""
        squashed = normalize_for_match(text)
        groups: list[tuple[set[str], set[str]]] = []
        for short, expansions in self.synonyms:
            if normalize_for_match(short) not in squashed:
                continue
            said = {t.norm for t in self.words(short)} | set(self.compound_tokens(short))
            corpus: set[str] = set()
            for exp in expansions:
                corpus |= {t.norm for t in self.words(exp)} | set(self.compound_tokens(exp))
            if corpus:
                groups.append((said, corpus))
        return groups


@lru_cache(maxsize=1)
def get_tokenizer() -> JapaneseTokenizer:
    """The process-wide tokenizer (MeCab start-up and the data files are read once)."""
    return JapaneseTokenizer()
