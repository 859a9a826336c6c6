"""Per-key rate limiting (a token bucket per key ID), answering 429 with Retry-After."""

from __future__ import annotations

import math
import threading
import time

from guideqa.errors import Overloaded

__all__ = ["RateLimiter", "RateLimited"]


class RateLimited(Overloaded):
    """Too many requests from one key."""

    code = "rate_limited"
    default_message = "短時間にリクエストが集中しています。しばらくしてから再度お試しください。"


class RateLimiter:
    """``per_minute`` requests per key, with bursts up to the same number."""

    def __init__(self, per_minute: int):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key_id: str) -> None:
        """Take one token for ``key_id``.

        Raises:
            RateLimited: the bucket is empty; ``retry_after`` says when one token is back.
        """
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key_id] = (tokens, now)
                raise RateLimited(retry_after=max(1, math.ceil((1.0 - tokens) / self.rate)))
            self._buckets[key_id] = (tokens - 1.0, now)
