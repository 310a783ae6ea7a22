"""Pseudonymous user ids: a keyed hash, stable for one key, not reversible without it.

>>> pseudonymize("u42", "secret")
'p-168f3ef0b95e3bc5eea6df8d'
>>> pseudonymize("u42", "secret") == pseudonymize("u42", "secret")
True
"""
from __future__ import annotations

import hashlib
import hmac


def pseudonymize(user_id: str, key: str) -> str:
    """HMAC-SHA256 of ``user_id`` under ``key``, 96 bits in hex, prefixed ``p-``."""
    digest = hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return "p-" + digest[:24]
