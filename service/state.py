"""Everything the API keeps for the life of the process, built once at start-up."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from guideqa.settings import Settings
from index.search import Searcher
from service.auth import KeyRing
from service.components import build_searcher
from service.ratelimit import RateLimiter

__all__ = ["AppState", "build_state"]

log = logging.getLogger(__name__)


@dataclass
class AppState:
    settings: Settings
    searcher: Searcher
    keys: KeyRing
    rate_limiter: RateLimiter
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        """Release the shard (and the audit DB) so another process can open it."""
        self.searcher.close()
        for item in self.extras.values():
            closer = getattr(item, "close", None)
            if callable(closer):
                closer()


def build_state(settings: Settings) -> AppState:
    return AppState(
        settings=settings,
        searcher=build_searcher(settings),
        keys=KeyRing.load(settings.api_keys, settings.api_keys_file),
        rate_limiter=RateLimiter(settings.rate_limit_per_minute),
    )

