"""Online short-video recommender (pure Python + numpy, River-style: one concept per module).

Modules
-------
- :mod:`.target`      implicit-feedback target from an event (what "liked" means).
- :mod:`.mf`          online matrix factorisation with sampled negatives.
- :mod:`.cooc`        incremental item-to-item co-occurrence ("people who finished v also finished").
- :mod:`.popularity`  time-decayed popularity (global, per tag via the catalogue, per segment).
- :mod:`.content`     content score: user tag interests · video tags.
- :mod:`.recommender` the facade :class:`Recommender` that the stream wiring uses.
"""

from .target import implicit_target, is_positive, watch_ratio, POSITIVE_THRESHOLD
from .recommender import Recommender, RecommenderConfig

__all__ = [
    "Recommender",
    "RecommenderConfig",
    "implicit_target",
    "is_positive",
    "watch_ratio",
    "POSITIVE_THRESHOLD",
]
