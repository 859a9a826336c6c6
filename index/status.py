"""``guideqa index --status``: what is live, without opening the shard for writing."""

from __future__ import annotations

from typing import Any

from guideqa.errors import IndexNotReady
from guideqa.settings import Settings
from index.versions import complete_versions, read_meta, resolve_current

__all__ = ["index_status"]


def index_status(settings: Settings) -> dict[str, Any]:
    """Counts, backend, model, build time and corpus hash of the live version.

    For the embedded backend this reads ``meta.json`` only, so it works while the
    server holds the shard. For a server it asks the cluster.

    Raises:
        IndexNotReady: nothing has been built yet.
    """
    if settings.backend_name == "qdrant-edge":
        order = resolve_current(settings.index_root)
        if not order:
            raise IndexNotReady()
        meta = read_meta(settings.index_root / "versions" / order[0])
        if meta is None:
            raise IndexNotReady()
        return {
            "backend": meta.backend,
            "version": meta.version,
            "units": meta.units,
            "documents": meta.documents,
            "embed_model": meta.embed_model,
            "dim": meta.dim,
            "built_at": meta.built_at,
            "build_seconds": meta.build_seconds,
            "embedded": meta.embedded,
            "reused_embeddings": meta.reused_embeddings,
            "corpus_hash": meta.corpus_hash,
            "path": str(settings.index_root / "versions" / meta.version),
            "versions_on_disk": len(complete_versions(settings.index_root)),
        }
    from index.store import ClientStore

    client = ClientStore.connect(
        url=settings.qdrant_url,
        api_key=settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None,
        local_path=settings.qdrant_local_path,
    )
    try:
        alias = settings.qdrant_collection
        target = [a.collection_name for a in client.get_aliases().aliases if a.alias_name == alias]
        if not target:
            raise IndexNotReady()
        info = client.get_collection(target[0])
        return {
            "backend": settings.backend_name,
            "version": target[0],
            "units": client.count(target[0], exact=True).count,
            "status": str(info.status),
            "shard_number": info.config.params.shard_number,
            "replication_factor": info.config.params.replication_factor,
        }
    finally:
        client.close()
