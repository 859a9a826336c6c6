"""Rate limits: a token bucket per key, per client address for anonymous callers, and for failed keys.

Three kinds of bucket share one :class:`RateLimiter` class:

* ``key:<key_id>``   — every request of one API key;
* ``addr:<address>`` — anonymous requests from one client address, so that one
  client cannot use up everybody's allowance;
* failed authentication (a wrong or missing key) per client address, in a
  separate, smaller limiter, so keys cannot be guessed at full speed.

The client address is the TCP peer, or — only when the peer is one of
``Settings.trusted_proxies`` — the right-most address in ``X-Forwarded-For``
that is not itself a trusted proxy (:func:`client_address`)::

    >>> client_address("10.0.0.5", "203.0.113.7, 10.0.0.9", trusted=parse_networks(["10.0.0.0/8"]))
    '203.0.113.7'
    >>> client_address("198.51.100.1", "203.0.113.7", trusted=parse_networks(["10.0.0.0/8"]))
    '198.51.100.1'
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

from guideqa.errors import RateLimited

__all__ = ["RateLimiter", "RateLimited", "client_address", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RateLimiter:
    """``per_minute`` requests per bucket, with bursts up to the same number.

    Args:
        per_minute: tokens added per minute, and the bucket size.
        max_buckets: buckets kept; the least recently used ones are forgotten first
            (a forgotten bucket starts full again, which only ever favours the caller).
    """

    def __init__(self, per_minute: int, *, max_buckets: int = 100_000):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _level(self, bucket: str, now: float) -> float:
        tokens, last = self._buckets.get(bucket, (self.capacity, now))
        return min(self.capacity, tokens + (now - last) * self.rate)

    def _retry_after(self, tokens: float) -> int:
        return max(1, math.ceil((1.0 - tokens) / self.rate))

    def check(self, bucket: str) -> None:
        """Take one token from ``bucket``.

        Raises:
            RateLimited: the bucket is empty; ``retry_after`` says when one token is back.
        """
        now = time.monotonic()
        with self._lock:
            tokens = self._level(bucket, now)
            self._buckets[bucket] = (tokens - 1.0 if tokens >= 1.0 else tokens, now)
            self._buckets.move_to_end(bucket)
            while len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
            if tokens < 1.0:
                raise RateLimited(retry_after=self._retry_after(tokens))

    def ensure_not_empty(self, bucket: str) -> None:
        """Raise :class:`RateLimited` if ``bucket`` is empty, without taking a token."""
        now = time.monotonic()
        with self._lock:
            if bucket not in self._buckets:
                return
            tokens = self._level(bucket, now)
        if tokens < 1.0:
            raise RateLimited(retry_after=self._retry_after(tokens))


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "127.0.0.1"]`` → networks.

    Raises:
        ValueError: a value is neither an address nor a CIDR range (at start-up).
    """
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(peer: str | None, forwarded_for: str | None, *, trusted: tuple[Network, ...]) -> str:
    """The address a request came from, for per-client limits and logs.

    ``X-Forwarded-For`` is believed only when the TCP peer is a trusted proxy; then
    each trusted hop is peeled off from the right, and the first address that is
    not a trusted proxy is the client. A header sent by the client itself is
    therefore never believed.
    """
    addr = (peer or "unknown")[:64]
    if not forwarded_for or not _is_trusted(addr, trusted):
        return addr
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop[:64]
    return hops[0][:64] if hops else addr
