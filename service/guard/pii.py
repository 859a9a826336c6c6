"""Personal-data detectors for questions: マイナンバー, 法人番号, credit cards, bank accounts,
passports, phone, e-mail, address, names, deny words.

Every detector returns :class:`PIIFinding` objects that carry the category, the
configured action and the character span in the *original* question — never the
matched value, so a finding can be logged as it is::

    >>> det = PIIDetector({"phone": CategoryRule(action="mask")})
    >>> [(f.category, f.start, f.end) for f in det.find("連絡先は０３－１２３４－５６７８です")]
    [('phone', 4, 16)]

Matching runs on a *normalised copy* of the text (:func:`detection_view`):
zero-width and other invisible format characters removed, full-width ASCII
folded to ASCII, and — for numbers — every digit (漢数字 〇一二…九, ①, ０) folded to
``0-9`` and the separators ``.`` ``/`` ``・`` ``ー`` between digits folded to ``-``.
The copy keeps, for each of its characters, the offset it came from, so every
span found in it is mapped back onto the original question::

    >>> det = PIIDetector({"my_number": CategoryRule(action="block")})
    >>> [f.category for f in det.find("番号は一二三四.五六七八.九〇一八です")]
    ['my_number']
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from guideqa.errors import ModelUnavailable

__all__ = [
    "Action",
    "CATEGORY_LABELS",
    "CategoryRule",
    "PIIFinding",
    "PIIDetector",
    "DetectionView",
    "detection_view",
    "remove_invisible",
    "fold_width",
    "is_valid_luhn",
    "is_valid_my_number",
    "is_valid_corporate_number",
]

Action = Literal["block", "mask"]

# Shown in masks (〔電話番号〕) and in user messages.
CATEGORY_LABELS: dict[str, str] = {
    "my_number": "マイナンバー",
    "corporate_number": "法人番号",
    "phone": "電話番号",
    "email": "メールアドレス",
    "address": "住所",
    "person_name": "氏名",
    "credit_card": "クレジットカード番号",
    "bank_account": "口座番号",
    "passport": "旅券番号",
    "deny_word": "機密語",
}


@dataclass(frozen=True)
class CategoryRule:
    """How one category is treated: detected or not, and blocked or masked."""

    action: Action = "mask"
    enabled: bool = True
    allowlist: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    require_context: bool = True


@dataclass(frozen=True)
class PIIFinding:
    """One detected span. Holds offsets into the original question, never the value itself."""

    category: str
    action: Action
    start: int
    end: int

    @property
    def label(self) -> str:
        return CATEGORY_LABELS.get(self.category, self.category)


# --- width folding ------------------------------------------------------------

_DASHES = "‐‑‒–—―−－﹣"
_LONG_VOWEL = "ー"  # katakana 長音: a dash only between digits (０３ー１２３４ー…)


def fold_width(text: str) -> str:
    """Fold full-width ASCII to ASCII and dash look-alikes to ``-``, one character for one.

    Keeping the length lets every regex span index the original string. Full NFKC
    is not used here because it can change the length (``㈱`` → ``(株)``).

        >>> fold_width("０９０ー１２３４－５６７８＠ＥＸ")
        '090-1234-5678@EX'
    """
    out = []
    n = len(text)
    for i, ch in enumerate(text):
        code = ord(ch)
        if 0xFF01 <= code <= 0xFF5E:
            ch = chr(code - 0xFEE0)
        elif ch == "\u3000":
            ch = " "
        if ch in _DASHES:
            ch = "-"
        elif ch == _LONG_VOWEL and 0 < i < n - 1 and _is_digit(text[i - 1]) and _is_digit(text[i + 1]):
            ch = "-"
        out.append(ch)
    return "".join(out)


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9" or "０" <= ch <= "９"


# Invisible characters that split a number or a word without showing: zero-width
# space/joiners, word joiner, BOM, soft hyphen, bidi marks, variation selectors.
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]")
_KANJI_DIGITS = {c: str(i) for i, c in enumerate("〇一二三四五六七八九")} | {"零": "0"}
# Between two digits these separate groups of a number (1234.5678/9018, 〇三・一二三四).
_DIGIT_SEPARATORS = set(".／/・･．ー_") | set(_DASHES)


def remove_invisible(text: str) -> str:
    """``text`` without zero-width and other invisible format characters (``1\u200b2`` → ``12``)."""
    return _INVISIBLE.sub("", text)


@dataclass(frozen=True)
class DetectionView:
    """A normalised copy of a text and, for each of its characters, the original offset.

    Attributes:
        text: the copy.
        origin: ``origin[i]`` is the offset in the original text of ``text[i]``.
        size: length of the original text.
    """

    text: str
    origin: tuple[int, ...]
    size: int

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that ``text[start:end]`` came from (invisible characters inside included)."""
        if end <= start:
            at = self.origin[start] if start < len(self.origin) else self.size
            return at, at
        return self.origin[start], self.origin[end - 1] + 1


def detection_view(text: str, *, digits: bool = False) -> DetectionView:
    """The copy of ``text`` the detectors match on.

    Invisible characters are dropped and width is folded (:func:`fold_width`). With
    ``digits=True`` every character with a digit value (``一``, ``①``, ``٣``) becomes an
    ASCII digit, and a separator between two digits becomes ``-``, so that
    ``一二三四.五六七八`` and ``1234/5678`` read as ``1234-5678``.

        >>> detection_view("１２\u200b３４ー五六", digits=True).text
        '1234-56'
    """
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(fold_width(text)):
        if _INVISIBLE.match(ch):
            continue
        if digits:
            if ch in _KANJI_DIGITS:
                ch = _KANJI_DIGITS[ch]
            elif not ch.isascii():
                value = unicodedata.digit(ch, None)
                if value is not None:
                    ch = str(value)
        chars.append(ch)
        origin.append(i)
    if digits:
        for k in range(1, len(chars) - 1):
            if chars[k] in _DIGIT_SEPARATORS and chars[k - 1].isdigit() and chars[k + 1].isdigit():
                chars[k] = "-"
    return DetectionView("".join(chars), tuple(origin), len(text))


# --- check digits -------------------------------------------------------------


def is_valid_my_number(digits: str) -> bool:
    """True if ``digits`` is 12 ASCII digits whose last digit is the マイナンバー check digit.

    The algorithm is the one in 行政手続における特定の個人を識別するための番号の利用等に関する
    法律施行令 第八条 (総務省令 第八十五号): with Pn the n-th digit counted leftwards from
    the digit before the check digit, and Qn = n+1 (n ≤ 6) or n−5 (n ≥ 7),
    r = Σ Pn·Qn mod 11 and the check digit is 0 when r ≤ 1, otherwise 11 − r.

        >>> is_valid_my_number("123456789018")
        True
        >>> is_valid_my_number("123456789012")
        False
    """
    if len(digits) != 12 or not digits.isascii() or not digits.isdigit():
        return False
    body = [int(c) for c in digits[:11]]
    total = 0
    for n in range(1, 12):
        p = body[11 - n]
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    r = total % 11
    check = 0 if r <= 1 else 11 - r
    return check == int(digits[11])


def is_valid_corporate_number(digits: str) -> bool:
    """True if ``digits`` is a 13-digit 法人番号 with a valid leading check digit.

    The check digit is 9 − (Σ Pn·Qn mod 9), where Pn is the n-th digit counted
    from the right of the 12-digit base number and Qn is 1 for odd n, 2 for even n.

        >>> is_valid_corporate_number("7000012050002")  # 国税庁
        True
    """
    if len(digits) != 13 or not digits.isascii() or not digits.isdigit():
        return False
    base = digits[1:]
    total = 0
    for n in range(1, 13):
        p = int(base[12 - n])
        total += p * (1 if n % 2 else 2)
    return 9 - (total % 9) == int(digits[0])


def is_valid_luhn(digits: str) -> bool:
    """True if ``digits`` passes the Luhn check used by payment card numbers.

        >>> is_valid_luhn("4111111111111111"), is_valid_luhn("4111111111111112")
        (True, False)
    """
    if not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# Issuer prefixes and lengths of the card brands used in Japan (Visa, Mastercard,
# JCB, American Express, Diners, Discover, UnionPay); Luhn alone passes 1 in 10 numbers.
_CARD_PREFIX = re.compile(r"4|5[1-5]|2(?:2[2-9]|[3-6]|7[01]|720)|3[47]|35(?:2[89]|[3-8])|3(?:0[0-5]|[689])|6(?:011|5|4[4-9]|2)")


def _is_card_number(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and bool(_CARD_PREFIX.match(digits)) and is_valid_luhn(digits)


# --- regular expressions (applied to the detection views) ----------------------

# A number is only a candidate when it is not part of a longer run of digits,
# decimals, or an amount with thousands separators (予算額 123,456,789,012円).
_NUM_LEFT = r"(?<![0-9A-Za-z+\-.,])"
_NUM_RIGHT = r"(?![0-9]|[.,][0-9]|-[0-9])"

# A run of digit groups joined by short separators (1234 5678-9018, 1 2 3 4 …, 1234 - 5678).
# Numbers are looked for in every run of groups inside it, so a マイナンバー next to
# a year (2025 1234 5678 9018) is still found.
_DIGIT_RUN = re.compile(_NUM_LEFT + r"\d+(?:[ \-]{1,3}\d+)*")
_MAX_GROUPS = 40

# A valid check digit is a 1-in-10 chance for any 12 digits, so a number written as
# an amount or a count (123456789018円, ¥…) is not taken for a マイナンバー.
_AMOUNT_AFTER = re.compile(r"\s?(?:円|千円|万円|億円|百万円|ドル|件|人|名|台|個|回|バイト|bytes?|[kmgt]b)", re.IGNORECASE)
_AMOUNT_BEFORE = ("¥", "$", "\\")

# Domestic numbers start with 0 (固定 10 digits, 携帯/IP 11 digits); +81 drops the 0.
# The digit count is checked in _is_phone, after the regex has found the shape.
_PHONE = re.compile(
    _NUM_LEFT
    + r"(?:(?P<intl>\+81[ \-]?\(?0?\)?)|\(?0)"
    + r"\d{1,4}\)?[ \-]?\(?\d{1,4}\)?[ \-]?\d{3,4}"
    + _NUM_RIGHT
)
# Account numbers are 7 digits (with 支店 and 銀行 codes in front at most) and only
# count after a word that says so; ゆうちょ writes 記号 (5 digits) and 番号 (up to 8).
_ACCOUNT = re.compile(
    r"(?:口座|預金|普通|当座|貯金|振込先|振込み先|account)[^0-9\n]{0,12}?"
    r"(?P<num>(?:\d{4}[ \-]?)?(?:\d{3}[ \-]?)?\d{7}|1\d{4}[ \-]?\d{5,8})" + _NUM_RIGHT,
    re.IGNORECASE,
)
_YUCHO = re.compile(r"記号[^0-9\n]{0,4}?(?P<num>1\d{4}[^0-9\n]{0,8}?番号[^0-9\n]{0,4}?\d{5,8})" + _NUM_RIGHT)
# 旅券番号: two letters and seven digits (TK1234567), after a word that says so.
_PASSPORT = re.compile(r"(?:旅券|パスポート|passport)[^A-Za-z0-9\n]{0,12}?(?P<num>[A-Za-z]{2}[ \-]?\d{7})" + _NUM_RIGHT, re.IGNORECASE)
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_POSTAL = re.compile(r"(?:〒|郵便番号[ :：は]*)\s?\d{3}-?\d{4}" + _NUM_RIGHT)

_PREFECTURES = (
    "北海道|青森県|岩手県|宮城県|秋田県|山形県|福島県|茨城県|栃木県|群馬県|埼玉県|千葉県|東京都|神奈川県|"
    "新潟県|富山県|石川県|福井県|山梨県|長野県|岐阜県|静岡県|愛知県|三重県|滋賀県|京都府|大阪府|兵庫県|"
    "奈良県|和歌山県|鳥取県|島根県|岡山県|広島県|山口県|徳島県|香川県|愛媛県|高知県|福岡県|佐賀県|長崎県|"
    "熊本県|大分県|宮崎県|鹿児島県|沖縄県"
)
_KANJI = r"一-龥々〆ヶケ"
_KANJI_NUM = "一二三四五六七八九十"
# 市区町村: kanji/katakana names (さいたま市 etc. are caught when the prefecture precedes).
_MUNI = rf"[{_KANJI}ァ-ヴー]{{1,8}}?(?:市|区|町|村)"
_TOWN = rf"[{_KANJI}ぁ-んァ-ヴー0-9]{{0,12}}?"
# 番地: strong forms (丁目, 番地, 番…号, a-b-c) on their own; a-b only after a prefecture.
# Copied addresses often carry spaces (西新宿二丁目 8 番 1 号), hence the optional blanks.
_SP = r" ?"
_BANCHI_STRONG = (
    rf"(?:[0-9]+|[{_KANJI_NUM}]+){_SP}丁目(?:{_SP}[0-9]+(?:{_SP}(?:番地?|号|-))?){{0,3}}"
    rf"|[0-9]+{_SP}番地(?:{_SP}[0-9]+(?:{_SP}号)?)?(?:-[0-9]+)?"
    rf"|[0-9]+{_SP}番{_SP}[0-9]+{_SP}号"
    r"|[0-9]+-[0-9]+-[0-9]+"
)
_ADDRESS = re.compile(
    rf"(?:(?:{_PREFECTURES}){_MUNI}{_TOWN}(?:{_BANCHI_STRONG}|[0-9]+-[0-9]+)"
    rf"|{_MUNI}{_TOWN}(?:{_BANCHI_STRONG}))" + _NUM_RIGHT
)
# The generic words 市区町村/市町村 name no place (「各市区町村で1-2-3の手順」).
_GENERIC_MUNI = re.compile(r"市区町村|市町村|区町村|区市町村")

# --- person names ---------------------------------------------------------------

# A surname alone is common in text about organisations (松尾研究所, 豊田市), so a
# single name token needs a title or honorific right after it to count.
_HONORIFICS = {
    "さん", "様", "さま", "氏", "君", "くん", "ちゃん", "殿", "先生", "教授", "博士", "弁護士",
    "課長", "部長", "係長", "室長", "局長", "次長", "所長", "主任", "主査", "主事", "補佐", "参事",
    "参事官", "審議官", "大臣", "副大臣", "政務官", "議員", "首相", "総理", "知事", "市長", "町長",
    "村長", "区長", "社長", "会長", "理事", "委員", "委員長", "担当", "係",
}
# A name token followed by one of these is part of an organisation or place name.
_ORG_SUFFIXES = {
    "市", "区", "町", "村", "県", "都", "府", "道", "郡", "庁", "省", "局", "課", "室", "研究所", "研", "大学",
    "学園", "学校", "病院", "銀行", "商事", "工業", "産業", "製作所", "技研", "株式会社", "社", "財団", "法人",
    "事務所", "法", "賞", "式", "方式", "モデル", "システム", "プロジェクト", "通り", "駅", "線", "川", "山",
}
# Never names in this corpus: 源内 is デジタル庁's generative-AI environment.
_BUILTIN_ALLOW = {"源内"}


@lru_cache(maxsize=1)
def _tagger():
    """One MeCab tagger per process with full UniDic features (pos1..pos4).

    :class:`index.tokenizer.JapaneseTokenizer` keeps only content-word lemmas,
    while names need ``pos3 == 人名``, so this module holds its own tagger.
    """
    try:
        import fugashi
    except ImportError as exc:  # pragma: no cover - broken install only
        raise ModelUnavailable(
            "日本語形態素解析器を読み込めません。`pip install fugashi unidic-lite` を実行してください。"
        ) from exc
    try:
        return fugashi.Tagger(), threading.Lock()
    except RuntimeError as exc:  # pragma: no cover
        raise ModelUnavailable("辞書 unidic-lite が見つかりません。`pip install unidic-lite` を実行してください。") from exc


@dataclass(frozen=True)
class _Morph:
    surface: str
    start: int
    end: int
    pos1: str
    pos2: str
    pos3: str
    pos4: str


def _morphs(text: str) -> list[_Morph]:
    tagger, lock = _tagger()
    # MeCab keeps state between calls and the API calls us from worker threads.
    with lock:
        parsed = [(w.surface, w.feature.pos1, w.feature.pos2, w.feature.pos3, w.feature.pos4) for w in tagger(text)]
    out: list[_Morph] = []
    cursor = 0
    for surface, p1, p2, p3, p4 in parsed:
        at = text.find(surface, cursor)
        if at < 0:  # MeCab never rewrites the surface, but stay safe rather than mis-offset
            continue
        cursor = at + len(surface)
        out.append(_Morph(surface, at, cursor, p1 or "", p2 or "", p3 or "", p4 or ""))
    return out


def _find_names(text: str, rule: CategoryRule) -> list[tuple[int, int]]:
    allow = _BUILTIN_ALLOW | set(rule.allowlist)
    morphs = _morphs(text)
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(morphs):
        m = morphs[i]
        if not (m.pos1 == "名詞" and m.pos2 == "固有名詞" and m.pos3 == "人名"):
            i += 1
            continue
        # A run of name tokens: 山田 太郎, ジョン ・ スミス.
        j = i + 1
        while j < len(morphs):
            nxt = morphs[j]
            if nxt.pos3 == "人名" and nxt.pos2 == "固有名詞":
                j += 1
            elif nxt.surface in ("・", "･") and j + 1 < len(morphs) and morphs[j + 1].pos3 == "人名":
                j += 2
            else:
                break
        run = morphs[i:j]
        after = morphs[j].surface if j < len(morphs) else ""
        i = j
        surface = text[run[0].start : run[-1].end]
        if surface in allow or all(r.surface in allow for r in run):
            continue
        if after in _ORG_SUFFIXES:
            continue
        full_name = any(a.pos4 == "姓" and b.pos4 == "名" for a, b in zip(run, run[1:]))
        titled = after in _HONORIFICS
        if full_name or titled or not rule.require_context:
            spans.append((run[0].start, run[-1].end))
    return spans


# --- detector -------------------------------------------------------------------


@dataclass
class PIIDetector:
    """Finds personal data and deny words according to per-category rules.

    Args:
        rules: category name (``my_number``, ``corporate_number``, ``phone``,
            ``email``, ``address``, ``person_name``, ``deny_word``) → rule.
            Categories that are absent or disabled are not detected.
    """

    rules: dict[str, CategoryRule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        deny = self.rules.get("deny_word")
        self._deny: re.Pattern[str] | None = None
        if deny and deny.enabled and (deny.words or deny.patterns):
            # Deny words match width- and case-insensitively (極秘, ＰＲＯＪＥＣＴ-Ｘ).
            alts = [re.escape(fold_width(w)) for w in sorted(deny.words, key=len, reverse=True) if w.strip()]
            alts += [f"(?:{p})" for p in deny.patterns]
            self._deny = re.compile("|".join(alts), re.IGNORECASE)

    def _active(self, category: str) -> CategoryRule | None:
        rule = self.rules.get(category)
        return rule if rule is not None and rule.enabled else None

    def find(self, text: str) -> list[PIIFinding]:
        """All findings in ``text``, sorted by position, without overlaps.

        When two findings overlap, the one that blocks wins, then the longer one
        (an address that contains a phone-like number stays one address).
        """
        plain = detection_view(text)
        numeric = detection_view(text, digits=True)
        raw: list[PIIFinding] = []

        def add(category: str, view: DetectionView, spans) -> None:
            rule = self._active(category)
            if rule is None:
                return
            for s, e in spans:
                start, end = view.original_span(s, e)
                raw.append(PIIFinding(category, rule.action, start, end))

        if self._active("my_number") or self._active("corporate_number") or self._active("credit_card"):
            my, corp, card = _numbers(numeric.text)
            add("my_number", numeric, my)
            add("corporate_number", numeric, corp)
            add("credit_card", numeric, card)
        if self._active("bank_account"):
            add("bank_account", numeric, [m.span("num") for m in (*_ACCOUNT.finditer(numeric.text), *_YUCHO.finditer(numeric.text))])
        if self._active("passport"):
            add("passport", numeric, [m.span("num") for m in _PASSPORT.finditer(numeric.text)])
        if self._active("phone"):
            add("phone", numeric, [m.span() for m in _PHONE.finditer(numeric.text) if _is_phone(m)])
        if self._active("email"):
            add("email", plain, [m.span() for m in _EMAIL.finditer(plain.text)])
        if self._active("address"):
            folded = plain.text
            add("address", plain, [m.span() for m in _POSTAL.finditer(folded)] + [m.span() for m in _ADDRESS.finditer(folded) if not _GENERIC_MUNI.search(m.group())])
        if self._deny is not None:
            add("deny_word", plain, [m.span() for m in self._deny.finditer(plain.text) if m.end() > m.start()])
        name_rule = self._active("person_name")
        if name_rule is not None:
            add("person_name", plain, _find_names(plain.text, name_rule))
        return _resolve_overlaps(raw)


def _numbers(folded: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[tuple[int, int]]]:
    """Spans of マイナンバー, 法人番号 and card numbers among the runs of digit groups in ``folded``.

    Every run of consecutive groups is tried, longest first at each start, so a
    number written next to another one is still found; amounts (…円) are skipped.
    """
    my: list[tuple[int, int]] = []
    corp: list[tuple[int, int]] = []
    card: list[tuple[int, int]] = []
    for run in _DIGIT_RUN.finditer(folded):
        if re.match(r"[.,][0-9]|-[0-9]", folded[run.end():run.end() + 2]):
            continue  # part of a decimal or a longer hyphenated code
        groups = [(m.start(), m.end()) for m in re.finditer(r"\d+", run.group())][:_MAX_GROUPS]
        base = run.start()
        for i in range(len(groups)):
            count = 0
            for j in range(i, len(groups)):
                count += groups[j][1] - groups[j][0]
                if count > 19:
                    break
                s, e = base + groups[i][0], base + groups[j][1]
                digits = _digits(folded[s:e])
                if len(digits) == 12 and is_valid_my_number(digits) and not _is_amount(folded, s, e):
                    my.append((s, e))
                elif len(digits) == 13 and is_valid_corporate_number(digits):
                    corp.append((s, e))
                if _is_card_number(digits) and not _is_amount(folded, s, e):
                    card.append((s, e))
    return my, corp, card


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


def _is_amount(folded: str, start: int, end: int) -> bool:
    before = folded[:start].rstrip()
    return bool(_AMOUNT_AFTER.match(folded, end)) or before.endswith(_AMOUNT_BEFORE)


def _is_phone(m: re.Match[str]) -> bool:
    digits = _digits(m.group())
    if m.group("intl"):
        national = digits[2:].lstrip("0")
        return len(national) in (9, 10)
    return digits.startswith("0") and len(digits) in (10, 11) and not digits.startswith("00")


def _resolve_overlaps(findings: list[PIIFinding]) -> list[PIIFinding]:
    ranked = sorted(findings, key=lambda f: (f.action != "block", -(f.end - f.start), f.start))
    kept: list[PIIFinding] = []
    for f in ranked:
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)
