"""Chat generation backends: one small interface, two implementations.

    backend = get_chat_backend(settings)          # None when GUIDEQA_LLM_BACKEND=none
    for delta in backend.stream_chat(
        [{"role": "system", "content": "出典に基づいて簡潔に答えてください。"},
         {"role": "user", "content": "要機密情報とは？"}],
        max_tokens=160,
    ):
        print(delta, end="")

* :class:`LlamaCppBackend` runs the GGUF in this process (llama-cpp-python).
* :class:`OpenAICompatBackend` calls any ``/v1/chat/completions`` server
  (vLLM, Ollama, llama.cpp server, Azure OpenAI's ``/openai/v1/``).

Every library error is translated here, where we call the library, into
:class:`guideqa.errors.LLMError` (code ``llm_unavailable``); the operator detail
goes to ``detail=``, the user sees only the polite Japanese message.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from guideqa.errors import GuideQAError, LLMError, ModelUnavailable

from .model_files import ensure_gguf

if TYPE_CHECKING:
    from guideqa.settings import Settings

__all__ = [
    "ChatBackend",
    "LlamaCppBackend",
    "OpenAICompatBackend",
    "get_chat_backend",
    "LLAMA_CPP_INSTALL",
]

logger = logging.getLogger(__name__)

LLAMA_CPP_INSTALL = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" '
    "pip install llama-cpp-python==0.3.36"
)

# Fixed so that a temperature > 0 run is still reproducible.
_SEED = 42


@runtime_checkable
class ChatBackend(Protocol):
    """Something that turns chat messages into text, streamed as deltas.

    Implementations translate their library's errors into ``LLMError``.
    """

    name: str

    def stream_chat(
        self,
        messages: list[dict],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        json_schema: dict | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        """Yield the reply as text deltas.

        Args:
            messages: OpenAI-style ``{"role": ..., "content": ...}`` dicts.
            max_tokens: Upper bound on generated tokens.
            temperature: 0 means greedy, deterministic decoding.
            json_schema: Constrain the reply to JSON matching this schema.
            stop: Strings that end generation (not included in the output).

        Yields:
            Non-empty text deltas; their concatenation is the reply.

        Raises:
            LLMError: generation failed, timed out, or the endpoint is down.
                May be raised before the first delta or mid-stream.
        """
        ...

    def chat(
        self,
        messages: list[dict],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        json_schema: dict | None = None,
        stop: list[str] | None = None,
    ) -> str:
        """Return the whole reply; same arguments and errors as :meth:`stream_chat`."""
        ...


# --------------------------------------------------------------------------- llama.cpp


# One Llama per (file, n_ctx, n_threads) per process: loading costs seconds and about
# 1 GB of RAM, and every backend sharing the object must also share its lock.
_models: dict[tuple[str, int, int], tuple[Any, threading.Lock]] = {}
_models_lock = threading.Lock()


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except (ImportError, OSError) as exc:
        raise ModelUnavailable(
            f"llama-cpp-python を読み込めません。次のコマンドでインストールしてください: {LLAMA_CPP_INSTALL} / "
            f"llama-cpp-python is not importable; install it with: {LLAMA_CPP_INSTALL}",
            detail=repr(exc),
        ) from exc
    return llama_cpp


def _load_llama(model_path: Path, n_ctx: int, n_threads: int) -> tuple[Any, threading.Lock]:
    key = (str(model_path.resolve()), n_ctx, n_threads)
    with _models_lock:
        if key in _models:
            return _models[key]
        llama_cpp = _import_llama_cpp()
        try:
            llm = llama_cpp.Llama(
                model_path=key[0],
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                seed=_SEED,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelUnavailable(
                f"モデルファイルを読み込めません: {model_path.name} / cannot load the model file",
                detail=f"{type(exc).__name__}: {exc}",
            ) from exc
        # A plain Lock, not an RLock: Starlette may resume a streaming generator on another
        # worker thread than the one that acquired it, and only a Lock may be released there.
        _models[key] = (llm, threading.Lock())
        logger.info("loaded %s (n_ctx=%d, n_threads=%d)", model_path.name, n_ctx, n_threads)
        return _models[key]


@atexit.register
def _close_models() -> None:
    # Freed here, while the library is still loaded: Llama.__del__ at interpreter
    # teardown finds its C functions gone and prints a TypeError.
    with _models_lock:
        for llm, _ in _models.values():
            close = getattr(llm, "close", None)
            if callable(close):
                close()
        _models.clear()


class _JoinedChat:
    """``chat`` as the joined ``stream_chat``, shared by both backends."""

    def chat(
        self,
        messages: list[dict],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        json_schema: dict | None = None,
        stop: list[str] | None = None,
    ) -> str:
        """Return the whole reply; see :meth:`ChatBackend.chat`."""
        return "".join(
            self.stream_chat(
                messages, max_tokens=max_tokens, temperature=temperature, json_schema=json_schema, stop=stop
            )
        )


class LlamaCppBackend(_JoinedChat):
    """The GGUF model running in this process through llama-cpp-python.

    The model is loaded once per process and shared by every instance with the
    same file and settings. Calls are serialized because a llama.cpp context is
    not thread-safe; a stream holds the lock until it is exhausted or closed.

    The shared Llama object keeps the KV cache of the previous prompt and
    re-evaluates only the tokens after the longest common prefix, so a fixed
    system prompt placed first is not re-evaluated on every request (time to
    first token 3.4 s cold, 1.2 s warm for a 250-token prompt; see
    ``eval/bench_llm.md``). ``LlamaRAMCache`` is deliberately not set: it only
    helps when a prompt with another start came in between, and each saved state
    carries ~145 MiB of logits that its capacity does not count.

        backend = LlamaCppBackend(ensure_gguf(settings.model_dir), n_ctx=2048, n_threads=2)
        backend.chat([{"role": "user", "content": "こんにちは"}], max_tokens=32)

    Args:
        model_path: The GGUF file.
        n_ctx: Context window in tokens (prompt plus reply).
        n_threads: CPU threads for prompt evaluation and generation.

    Raises:
        ModelUnavailable: llama-cpp-python is missing or the file cannot be loaded.
    """

    def __init__(self, model_path: Path, *, n_ctx: int, n_threads: int):
        self.model_path = Path(model_path)
        self.name = f"llama-cpp/{self.model_path.stem}"
        self._llm, self._lock = _load_llama(self.model_path, n_ctx, n_threads)

    def stream_chat(
        self,
        messages: list[dict],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        json_schema: dict | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        """Yield the reply as text deltas; see :meth:`ChatBackend.stream_chat`."""
        kwargs: dict[str, Any] = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": _SEED,
            "stop": stop or [],
            "stream": True,
        }
        if temperature <= 0:
            # Greedy: llama.cpp picks the argmax at temperature 0; top_k=1 states it outright.
            kwargs.update(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0)
        if json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": json_schema}
        with self._lock:
            chunks = None
            try:
                chunks = self._llm.create_chat_completion(**kwargs)
                for chunk in chunks:
                    delta = chunk["choices"][0]["delta"].get("content")
                    if delta:
                        yield delta
            except GuideQAError:
                raise
            except Exception as exc:  # llama.cpp raises ValueError/RuntimeError/... with no common base
                raise LLMError(detail=f"llama.cpp: {type(exc).__name__}: {exc}") from None
            finally:
                # Close the library's generator while we still hold the lock.
                if chunks is not None and hasattr(chunks, "close"):
                    chunks.close()


    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes in this model (no special tokens added)."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))


# --------------------------------------------------------------------------- OpenAI-compatible


_AZURE_HOST_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")


class OpenAICompatBackend(_JoinedChat):
    """A remote ``/v1/chat/completions`` server, called with the ``openai`` package.

    ``base_url`` is the part before ``/chat/completions``:

    * vLLM, llama.cpp server: ``http://gpu-host:8000/v1``
    * Ollama: ``http://127.0.0.1:11434/v1``
    * Azure OpenAI: ``https://RESOURCE.openai.azure.com/openai/v1/``; a query string
      such as ``?api-version=2024-10-21`` on the base URL is sent with every request.

    The client never retries (``max_retries=0``): the caller falls back to the
    clauses-only answer instead of waiting. ``timeout_s`` bounds connecting and
    each read, so a long stream that keeps producing is not cut off.

    Args:
        base_url: Endpoint root, see above.
        model: Model (or Azure deployment) name.
        api_key: Bearer key; ``None`` for servers without auth.
        timeout_s: Connect and per-read timeout in seconds.

    Raises:
        ModelUnavailable: the ``openai`` package is not installed.
    """

    def __init__(self, base_url: str, model: str, api_key: str | None, timeout_s: float):
        try:
            import httpx
            import openai
        except ImportError as exc:
            raise ModelUnavailable(
                "openai パッケージがありません: pip install openai / the openai package is missing: pip install openai",
                detail=repr(exc),
            ) from exc
        self._openai = openai
        self._httpx = httpx
        self.model = model
        self.base_url = base_url
        self.name = f"openai/{model}"
        split = urlsplit(base_url)
        query = dict(parse_qsl(split.query))
        headers = {}
        if api_key and (split.hostname or "").endswith(_AZURE_HOST_SUFFIXES):
            # Azure's key auth reads the api-key header; the Bearer header alone is refused there.
            headers["api-key"] = api_key
        self._client = openai.OpenAI(
            base_url=urlunsplit(split._replace(query="")),
            # Passed explicitly so that the client never falls back to OPENAI_API_KEY.
            api_key=api_key or "none",
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            max_retries=0,
            default_headers=headers or None,
            default_query=query or None,
        )

    def stream_chat(
        self,
        messages: list[dict],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        json_schema: dict | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        """Yield the reply as text deltas; see :meth:`ChatBackend.stream_chat`."""
        openai, httpx = self._openai, self._httpx
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": _SEED,
            "stream": True,
        }
        if stop:
            kwargs["stop"] = stop
        if json_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": json_schema},
            }
        stream = None
        try:
            stream = self._client.chat.completions.create(**kwargs)
            for chunk in stream:
                # Azure sends a content-filter chunk with no choices first; usage chunks have none either.
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta.content if chunk.choices[0].delta else None
                if delta:
                    yield delta
        except openai.APITimeoutError:
            raise LLMError(detail=f"timeout talking to {self.base_url}") from None
        except openai.APIConnectionError as exc:
            cause = f" ({type(exc.__cause__).__name__}: {exc.__cause__})" if exc.__cause__ else ""
            raise LLMError(detail=f"cannot connect to {self.base_url}: {exc}{cause}") from None
        except openai.APIStatusError as exc:
            raise LLMError(detail=f"HTTP {exc.status_code} from {self.base_url}: {_short(exc.message)}") from None
        except httpx.TimeoutException:
            # Raised mid-stream, where openai does not wrap httpx errors.
            raise LLMError(detail=f"timeout reading the stream from {self.base_url}") from None
        except (openai.OpenAIError, httpx.HTTPError, ValueError) as exc:
            raise LLMError(detail=f"{type(exc).__name__} from {self.base_url}: {_short(str(exc))}") from None
        finally:
            if stream is not None:
                stream.close()



def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# --------------------------------------------------------------------------- factory


def get_chat_backend(settings: Settings, *, progress: bool = False) -> ChatBackend | None:
    """Build the backend that ``settings.llm_backend`` names.

    Args:
        settings: Uses ``llm_backend``, ``model_dir``, ``llm_ctx``, ``threads``
            (llama-cpp) or ``llm_url``, ``llm_model``, ``llm_api_key``,
            ``llm_timeout_s`` (openai).
        progress: Show a progress bar if the GGUF has to be assembled.

    Returns:
        A ready backend, or ``None`` for ``"none"`` (clauses-only answers).

    Raises:
        ModelUnavailable: llama-cpp-python, the part packages or ``openai`` are
            missing; the message names what to install.
    """
    if settings.llm_backend == "none":
        return None
    if settings.llm_backend == "openai":
        if not settings.llm_url:  # Settings refuses this too; kept for hand-built objects.
            raise ModelUnavailable("GUIDEQA_LLM_URL が設定されていません / GUIDEQA_LLM_URL is not set")
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return OpenAICompatBackend(settings.llm_url, settings.llm_model, key, settings.llm_timeout_s)
    # Import first: no point assembling 1.1 GB for an engine that is not installed.
    _import_llama_cpp()
    path = ensure_gguf(settings.model_dir, progress=progress)
    return LlamaCppBackend(path, n_ctx=settings.llm_ctx, n_threads=settings.threads)
