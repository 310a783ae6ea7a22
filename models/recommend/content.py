"""Content score: how well a video's tags match the user's tag interests.

``score(v) = sum(w[t] for t in tags(v)) / sqrt(len(tags(v)))`` with the user weights scaled so
the strongest interest is 1.0.  Dividing by the square root rewards a video that carries
several of the user's tags without letting long tag lists win by themselves.  It also returns
the best-matching tag, used for the human reason ("matches your interest in #food").

>>> content_score(normalise_interests({"food": 2.0, "travel": 1.0}), ["food"])
(1.0, 'food')
>>> s, t = content_score({"food": 1.0, "travel": 0.5}, ["food", "travel"]); round(s, 4), t
(1.0607, 'food')
>>> content_score({"food": 1.0}, ["gaming"])
(0.0, None)
>>> normalise_interests([("food", 4.0), ("pets", 1.0), ("war", -2.0)])
{'food': 1.0, 'pets': 0.25}
"""

from __future__ import annotations

import math


def normalise_interests(user_tags) -> dict[str, float]:
    """Accept ``{tag: weight}`` or ``[(tag, weight), ...]``; keep positive weights, max -> 1.0."""
    if not user_tags:
        return {}
    items = user_tags.items() if isinstance(user_tags, dict) else user_tags
    pos = {str(t): float(w) for t, w in items if w and float(w) > 0}
    if not pos:
        return {}
    m = max(pos.values())
    return {t: w / m for t, w in pos.items()}


def content_score(interests: dict[str, float], tags) -> tuple[float, str | None]:
    """Score of one video for normalised ``interests`` and the tag that matched best."""
    if not interests or not tags:
        return 0.0, None
    total = 0.0
    best, best_w = None, 0.0
    for t in tags:
        w = interests.get(t)
        if w:
            total += w
            if w > best_w:
                best, best_w = t, w
    if best is None:
        return 0.0, None
    return total / math.sqrt(len(tags)), best
