"""``guideqa index --status``: what is live, without opening the index for writing."""

from __future__ import annotations

from contextlib import closing
from typing import Any

from guideqa.settings import Settings
from index.backend import open_index

__all__ = ["index_status"]


def index_status(settings: Settings) -> dict[str, Any]:
    """Counts, backend, model, build time and corpus hash of the live version.

    For the embedded backend this reads ``meta.json`` only, so it works while the
    server holds the shard. For a server it asks the cluster.

    Raises:
        IndexNotReady: nothing has been built yet.
        IndexUnavailable: the server cannot be reached.
    """
    with closing(open_index(settings)) as reader:
        return reader.status()
