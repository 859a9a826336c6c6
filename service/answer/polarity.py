"""Which way a Japanese rule sentence points: forbids, permits, permits on conditions, or obliges.

A lead sentence such as 「はい、利用できます。」 must not contradict the clause it stands on
(「…を入力してはならない。」). The patterns are general Japanese rule wording (法令・例規・
ガイドラインの文末表現), not the wording of any one document.

    >>> polarity("機密性2以上の情報は入力してはならない。")
    {'forbid'}
    >>> sorted(polarity("所属長の承認を得た場合に限り、利用することができる。"))
    ['condition', 'permit']
    >>> contradicts("はい、入力できます。", "機密性2以上の情報は入力してはならない。")
    True
    >>> sorted(polarity("ただし、翻訳の用途に限り、CIOが特に認めたものについては、この限りでない。"))
    ['condition']
    >>> polarity("(6) 前各号に掲げるもののほか、生成AIの利用に関し必要な事務に関すること。"), polarity("所属長の承認が必要。")
    (set(), {'oblige'})
"""

from __future__ import annotations

import re
from typing import Literal

from ingest.cleaning import nfkc

__all__ = ["Stance", "polarity", "contradicts"]

Stance = Literal["forbid", "permit", "condition", "oblige"]

# Order matters only in that obligation is removed before prohibition is looked for:
# 「しなければならない」 ends in ならない but obliges, it does not forbid.
# 「必要な事務」「必要に応じて」「必要性」 name a need; they oblige nobody.
_OBLIGE = re.compile(r"(?:なければ|なくては)(?:ならない|ならず|いけない)|ものとする|義務|必須|必要(?:がある|です|となる|とする)|必要(?!な|に応じ|性)")
_FORBID = re.compile(
    r"(?:ては|では)(?:ならない|ならず|いけない|だめ|ダメ)|禁止|不可(?!欠|能)|認めない|認められない|できない|できません|出来ない"
    r"|(?:し|入力し|利用し|使用し|使わ|入れ|行わ|提供し|送信し|登録し)ない(?:こと|で|。|$)|避ける|控える|いいえ"
)
_PERMIT = re.compile(r"できる|できます|可能|差し支えない|差し支えありません|認める|利用可|(?<![不否])可(?:$|[。、）)]|です)|してよい|しても(?:よい|いい|良い|構わない|大丈夫)|問題ない|^はい")
_CONDITION = re.compile(r"ことで|ことにより|場合に限り|場合には|場合は|限る|限り|ただし|条件|承認を得|許可を得|届け?出|した上で|を前提に|範囲で|範囲内")
# 「ただし、…の場合は、この限りでない。」: the proviso lifts the main rule for its case.
_EXCEPTION = re.compile(r"この限りでない|この限りではない")
# 「判断できない」 says nothing about permission; drop it before looking for できない.
_NEUTRAL = re.compile(r"判断できない|判断できません|特定できない|確認できない")


def polarity(text: str) -> set[Stance]:
    """The stances ``text`` takes (empty when it neither permits, forbids nor obliges)."""
    t = _NEUTRAL.sub("", nfkc(text))
    found: set[Stance] = set()
    if _OBLIGE.search(t):
        found.add("oblige")
        t = _OBLIGE.sub("", t)
    if _FORBID.search(t):
        found.add("forbid")
    if _PERMIT.search(t):
        found.add("permit")
    if _CONDITION.search(t) and found & {"permit", "forbid", "oblige"}:
        found.add("condition")
    if _EXCEPTION.search(t):
        found.add("condition")  # read alone, the proviso still says the rule has a case it does not cover
    return found


def contradicts(claim: str, source: str) -> bool:
    """True when ``claim`` says more (or less) is allowed than ``source`` does.

    * a plain "allowed" against a source that only forbids or only allows on conditions;
    * "allowed on conditions" against a source that only forbids;
    * "not allowed" against a source that allows and nowhere forbids.
    A claim or source that takes no stance never contradicts.
    """
    c, s = polarity(claim), polarity(source)
    if not c or not s:
        return False
    if "forbid" in c and "permit" not in c:
        return "forbid" not in s and bool(s & {"permit", "condition"})
    if "permit" in c and "condition" not in c:
        only_restricts = "permit" not in s and bool(s & {"forbid", "condition"})
        exception_to_a_ban = {"forbid", "condition"} <= s
        return only_restricts or exception_to_a_ban
    if "condition" in c:
        return s == {"forbid"}
    return False
