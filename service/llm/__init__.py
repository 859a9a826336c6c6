"""Answer generation: the local GGUF model or an OpenAI-compatible server.

    from service.llm import get_chat_backend
    backend = get_chat_backend(settings)     # None when llm_backend == "none"

``model_files`` assembles and verifies the GGUF, ``backends`` holds the
``ChatBackend`` interface and its implementations, ``llamaindex_adapter`` exposes
a backend through llama-index's LLM interface (imported on its own, so that
using a backend does not import llama-index).
"""

from .backends import ChatBackend, LlamaCppBackend, OpenAICompatBackend, get_chat_backend
from .model_files import GGUF_FILENAME, ensure_gguf, missing_part_packages

__all__ = [
    "ChatBackend",
    "LlamaCppBackend",
    "OpenAICompatBackend",
    "get_chat_backend",
    "GGUF_FILENAME",
    "ensure_gguf",
    "missing_part_packages",
]
