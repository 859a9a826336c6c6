"""A llama-index ``LLM`` over any :class:`~service.llm.backends.ChatBackend`.

    from llama_index.core import Settings as LISettings
    LISettings.llm = ChatBackendLLM(backend=get_chat_backend(settings), max_tokens=settings.llm_max_tokens)

Only the hooks are implemented; generation, error translation and locking stay in
the backend, so this class holds no logic worth testing on its own. Chat calls
keep their roles (the model's own chat template applies) instead of going
through llama-index's generic ``messages_to_prompt``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from pydantic import Field

__all__ = ["ChatBackendLLM"]


class ChatBackendLLM(CustomLLM):
    """llama-index's LLM interface, delegating to a ``ChatBackend``.

    Args:
        backend: The ChatBackend that generates (``LlamaCppBackend``, ``OpenAICompatBackend``…).
        max_tokens: Default reply length; a ``max_tokens=`` call keyword overrides it.
        temperature: Default temperature (0 = greedy); overridable per call.
        context_window: Reported in ``metadata`` for llama-index's prompt packing.

    Raises:
        LLMError: from the backend, unchanged.
    """

    # Any, not ChatBackend: pydantic cannot validate a Protocol.
    backend: Any = Field(exclude=True)
    max_tokens: int = 160
    temperature: float = 0.0
    context_window: int = 2048

    @classmethod
    def class_name(cls) -> str:
        return "guideqa_chat_backend_llm"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.max_tokens,
            is_chat_model=True,
            model_name=self.backend.name,
        )

    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "temperature": kwargs.get("temperature", self.temperature),
            "json_schema": kwargs.get("json_schema"),
            "stop": kwargs.get("stop"),
        }

    def _prompt_messages(self, prompt: str) -> list[dict]:
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*messages, {"role": "user", "content": prompt}]

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        text = self.backend.chat(self._prompt_messages(prompt), **self._options(kwargs))
        return CompletionResponse(text=text)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        deltas = self.backend.stream_chat(self._prompt_messages(prompt), **self._options(kwargs))

        def gen() -> CompletionResponseGen:
            text = ""
            for delta in deltas:
                text += delta
                yield CompletionResponse(text=text, delta=delta)

        return gen()

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        text = self.backend.chat(_as_dicts(messages), **self._options(kwargs))
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        deltas = self.backend.stream_chat(_as_dicts(messages), **self._options(kwargs))

        def gen() -> ChatResponseGen:
            text = ""
            for delta in deltas:
                text += delta
                yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=delta)

        return gen()


def _as_dicts(messages: Sequence[ChatMessage]) -> list[dict]:
    return [{"role": m.role.value, "content": m.content or ""} for m in messages]
