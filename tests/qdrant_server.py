"""Clean-up shared by the tests that build on a real Qdrant server (GUIDEQA_QDRANT_URL)."""

from __future__ import annotations

from guideqa.settings import Settings
from index.store import ClientStore

__all__ = ["drop_server_collections"]


def drop_server_collections(s: Settings) -> None:
    """Remove what a server test built: the alias and every collection behind its prefix."""
    from qdrant_client import models

    api_key = s.qdrant_api_key.get_secret_value() if s.qdrant_api_key else None
    client = ClientStore.connect(url=s.qdrant_url, api_key=api_key)
    try:
        if any(a.alias_name == s.qdrant_collection for a in client.get_aliases().aliases):
            client.update_collection_aliases(
                change_aliases_operations=[models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=s.qdrant_collection))]
            )
        for c in client.get_collections().collections:
            if c.name.startswith(f"{s.qdrant_collection}_"):
                client.delete_collection(c.name)
    finally:
        client.close()
