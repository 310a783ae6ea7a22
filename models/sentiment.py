"""Lexicon sentiment for short Chinese/English comments, with no model to download.

Why a lexicon: comments are short, arrive by the thousand per second and the scorer must run
inside the stream processor with nothing but the standard library. A small hand-made lexicon
with negation and intensifiers is predictable, explainable and good enough for a rolling
"mood" figure per creator or campaign.

How it scores: the text is lower-cased and scanned left to right. An ASCII word is looked up as
a whole word; anywhere else (Chinese has no spaces, emoji) the longest lexicon entry starting at
that position is taken, so ``不错`` (positive) wins over the negator ``不``. Each sentiment term
has a value in [-1, 1]; a preceding intensifier multiplies it by 1.5 (capped to +-1); a preceding
negator (within 3 tokens, reset by punctuation) multiplies it by -0.75 ("not good" is milder
than "bad"). The score is the mean of the term values, so it lies in [-1, 1]; 0.0 when no term.

>>> score("I love this video")
1.0
>>> score("not good")
-0.45
>>> score("太棒了，爱了爱了")
1.0
>>> score("不喜欢，太无聊")
-0.75
>>> score("好难看 👎")
-1.0
>>> score("good but boring")
0.0
>>> score("视频")
0.0
"""
from __future__ import annotations

import re

#: Strong terms are worth +-1.0, mild ones +-0.6.
POSITIVE: dict[str, float] = {
    # English
    "love": 1.0, "loved": 1.0, "loving": 1.0, "amazing": 1.0, "awesome": 1.0, "excellent": 1.0,
    "perfect": 1.0, "fantastic": 1.0, "wonderful": 1.0, "brilliant": 1.0, "best": 1.0,
    "great": 0.8, "good": 0.6, "nice": 0.6, "cool": 0.6, "like": 0.6, "likes": 0.6,
    "liked": 0.6, "funny": 0.6, "beautiful": 0.8, "cute": 0.6, "helpful": 0.6, "useful": 0.6,
    "recommend": 0.6, "wow": 0.6, "lol": 0.6, "thanks": 0.6, "enjoy": 0.6, "enjoyed": 0.6,
    # Chinese
    "喜欢": 0.8, "好看": 0.6, "太棒": 1.0, "爱了": 1.0, "超赞": 1.0, "点赞": 0.6, "好评": 0.8,
    "不错": 0.6, "漂亮": 0.6, "厉害": 0.8, "优秀": 0.8, "精彩": 0.8, "推荐": 0.6, "好用": 0.6,
    "好吃": 0.6, "好听": 0.6, "很好": 0.6, "真好": 0.6, "挺好": 0.6, "开心": 0.6, "可爱": 0.6,
    "有趣": 0.6, "搞笑": 0.6, "支持": 0.6, "感谢": 0.6, "绝了": 1.0, "yyds": 1.0, "牛": 0.8,
    "棒": 0.8, "赞": 0.8, "爱": 0.8,
    # emoji
    "👍": 1.0, "❤️": 1.0, "❤": 1.0, "😂": 0.6, "😍": 1.0, "🥰": 1.0, "🔥": 0.8, "👏": 0.8,
    "💯": 1.0, "😊": 0.6, "😄": 0.6,
}
NEGATIVE: dict[str, float] = {
    # English
    "hate": -1.0, "hated": -1.0, "awful": -1.0, "terrible": -1.0, "horrible": -1.0,
    "worst": -1.0, "disgusting": -1.0, "trash": -1.0, "garbage": -1.0, "scam": -1.0,
    "bad": -0.8, "boring": -0.6, "dislike": -0.6, "ugly": -0.6, "stupid": -0.8, "fake": -0.6,
    "annoying": -0.6, "waste": -0.8, "poor": -0.6, "sad": -0.6, "meh": -0.6, "cringe": -0.6,
    # Chinese
    "垃圾": -1.0, "难看": -0.8, "无聊": -0.6, "差评": -1.0, "讨厌": -0.8, "恶心": -1.0,
    "骗子": -1.0, "失望": -0.8, "难吃": -0.8, "难听": -0.8, "没意思": -0.6, "不好": -0.6,
    "辣鸡": -1.0, "烂": -0.8, "差": -0.6, "坑": -0.6, "假": -0.6, "丑": -0.6, "退货": -0.6,
    "智商税": -1.0,
    # emoji
    "👎": -1.0, "😡": -1.0, "🤮": -1.0, "💩": -1.0, "😠": -0.8, "😞": -0.6, "🙄": -0.6,
}
NEGATORS = frozenset({"not", "no", "never", "don't", "dont", "doesn't", "isn't", "wasn't",
                      "can't", "cannot", "不", "没", "没有", "别", "不是", "不太"})
INTENSIFIERS = frozenset({"very", "so", "really", "super", "extremely", "too", "totally",
                          "很", "非常", "太", "超", "超级", "特别", "真", "好", "巨", "贼"})
#: Punctuation ends the reach of a negator or an intensifier.
_BREAKS = frozenset(",.;!?，。；！？、\n")

INTENSIFY = 1.5
NEGATE = -0.75
NEGATION_REACH = 3

_TERMS = {**POSITIVE, **NEGATIVE}
_NON_ASCII = {w: None for w in (*_TERMS, *NEGATORS, *INTENSIFIERS) if not w.isascii() or not w.isalpha()}
_MAX_LEN = max(len(w) for w in _NON_ASCII)
_WORD = re.compile(r"[a-z][a-z']*")


def _tokens(text: str):
    """Yield lexicon tokens and ``None`` for a break, scanning ``text`` (lower-cased)."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isascii() and ch.isalpha():
            m = _WORD.match(text, i)
            word = m.group()
            i = m.end()
            # "yyds" style ASCII slang lives in the same tables
            if word in _TERMS or word in NEGATORS or word in INTENSIFIERS:
                yield word
            else:
                yield ""  # an unknown word still counts toward the negation reach
            continue
        if ch in _BREAKS:
            yield None
            i += 1
            continue
        for size in range(min(_MAX_LEN, n - i), 0, -1):
            piece = text[i:i + size]
            if piece in _NON_ASCII:
                yield piece
                i += size
                break
        else:
            i += 1


def terms(text: str) -> list[tuple[str, float]]:
    """The sentiment terms found, with their value after negation and intensifiers.

    >>> terms("not very good, 不喜欢")
    [('good', -0.675), ('喜欢', -0.6)]
    """
    found: list[tuple[str, float]] = []
    negate_left = 0
    boost = 1.0
    for tok in _tokens(text.lower()):
        if tok is None:
            negate_left, boost = 0, 1.0
        elif tok in _TERMS:
            value = max(-1.0, min(1.0, _TERMS[tok] * boost))
            if negate_left:
                value *= NEGATE
            found.append((tok, round(value, 12)))
            negate_left, boost = 0, 1.0
        elif tok in NEGATORS:
            negate_left = NEGATION_REACH + 1
            boost = 1.0
        elif tok in INTENSIFIERS:
            boost = INTENSIFY
        else:
            boost = 1.0
        if negate_left:
            negate_left -= 1
    return found


def score(text: str | None) -> float:
    """Sentiment of ``text`` in [-1, 1]: the mean value of its sentiment terms (0.0 if none)."""
    if not text:
        return 0.0
    found = terms(text)
    if not found:
        return 0.0
    return round(sum(v for _, v in found) / len(found), 12)
