"""Load test of the real API: uvicorn in a subprocess on 127.0.0.1, driven by httpx async clients.

    .venv/bin/python -m eval.bench_load                                     # 50 clients × 60 s on /v1/search
    .venv/bin/python -m eval.bench_load --endpoint ask-clauses --seconds 30 # /v1/ask, mode=clauses
    .venv/bin/python -m eval.bench_load --overload                          # 20 answer-mode asks at a queue of 4

What happens:

* A temporary data dir gets its own index (``guideqa ingest`` in a subprocess). The
  embedding cache and the model files are shared with ``.guideqa/``, so this
  embeds nothing and the build takes seconds. ``.guideqa/index`` is never opened:
  an Edge shard has one holder.
* ``guideqa serve`` runs as a subprocess on a free port on 127.0.0.1. It gets its
  own environment: ``GUIDEQA_LLM_BACKEND=none`` for search and clauses runs, a
  huge ``GUIDEQA_RATE_LIMIT_PER_MINUTE``, and the audit log in a SQLite file in
  the temp dir.
* ``--clients`` coroutines share one ``httpx.AsyncClient`` with that many
  connections. Each sends questions from a pool of 40 staff questions, back to
  back, for ``--seconds``.
* The report covers requests, errors by status, throughput, latency p50/p95/p99,
  and the server's RSS (``/proc/<pid>/status``) at start, middle and end, to
  show whether memory grows.
* ``--overload`` loads the real local LLM (``llama-cpp``) with
  ``GUIDEQA_LLM_QUEUE_SIZE=4`` and fires 20 answer-mode ``/v1/ask`` requests at
  once. The expected outcome: every request answered (200): those the queue can
  take get the model's may-I lead, the rest the composed answer without it
  and a notice (the pieces need no model); no 5xx (a 503 would carry
  ``Retry-After``); a server that is still alive; one audit row per request.

The server is always stopped on exit: SIGTERM, then SIGKILL after 30 s. That
holds for errors, Ctrl-C and SIGTERM too, and the temp dir is removed. If this
process is killed outright, the server still gets SIGTERM (Linux's parent-death
signal), but the temp dir is left behind. The results are printed as markdown and written, with the
exact command, into this run's section of ``eval/bench_load.md``. Sections of
other runs are kept.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from guideqa.settings import PROJECT_ROOT

__all__ = ["QUESTIONS", "ServerProcess", "LoadResult", "run_load", "run_overload", "main"]

HOST = "127.0.0.1"
REPORT = PROJECT_ROOT / "eval" / "bench_load.md"
SHARED_CACHE = PROJECT_ROOT / ".guideqa" / "cache"
SHARED_MODELS = PROJECT_ROOT / ".guideqa" / "models"

# Questions as staff type them: plain, polite, or chatty; no personal data, so the input guard lets them through.
QUESTIONS = [
    "生成AIに要機密情報を入力してもいいですか？",
    "入札予定価格って機密性いくつ？",
    "自治体の機密性3Bってどんな情報？",
    "約款型のクラウドサービスで要機密情報は扱える？",
    "源内ってどこのモデル使ってるの？",
    "源内は自治体でも使えるようになりますか",
    "ガバクラの生成AIサービスってデータは国内で完結してる？",
    "国・地方AI共通サービスの費用負担はどうなる？",
    "共通サービスでハルシネーションが起きたら責任は誰にあるの？",
    "香川県のCatBotは職員が開発したの？費用面のメリットは？",
    "生成AIの利用ガイドラインを策定済みの自治体はどれくらい？",
    "AI法はいつ施行された？",
    "DeepSeekの注意喚起では何が問題とされている？",
    "デジタル庁のガイドラインで高リスクかどうかを判断する軸は？",
    "調達チェックシートのNo.24は何を求めている？",
    "プロンプトインジェクション対策は調達チェックシートでどう書かれている？",
    "先進的AI利活用アドバイザーボードの目的は？",
    "各府省庁の生成AIシステムで利用開始済みの案件は何件？",
    "機密性2の情報を追加学習に使っている案件は何件ある？",
    "利用廃止になった生成AI案件の理由は？",
    "都のガイドラインの6つの留意すべき事項は何？",
    "都民サービス関連業務の判断支援で要件定義フェーズの必須項目は？",
    "職員内部業務の文書作成支援の運用フェーズでやることは？",
    "AIで作った画像や文章の著作権で気をつけることは？",
    "ハルシネーションとはどういう意味ですか",
    "オプトアウトって何のこと？",
    "都で共通ツール以外のAIを導入したいときはどこに相談すればいい？",
    "議事録の要約に生成AIを使った自治体はどれくらい時間を削減できた？",
    "CAIOって何を担当するの？",
    "個人情報を含む文書を生成AIで要約する場合の注意点は？",
    "生成AIの出力をそのまま使ってもいい？確認は誰がするの？",
    "都立AIはいつ何校に導入された？",
    "一斉調査システムって何？",
    "高リスク判定シートはどういうツールですか",
    "ISMAPに登録されたサービスを選ぶ自治体はある？",
    "生成AIの利活用で人材育成はどう進めればいい？",
    "バイアスの定義は？",
    "生成AIの成果目標の記載例を教えて",
    "外部向けに生成AIを提供している府省庁の案件はどれくらい？",
    "生成AIの調達時にAIセキュリティで求められることは？",
]

# Answer-mode questions for --overload: answerable from one clause, not confidentiality checks
# (those get a rules verdict without the LLM), so each accepted one waits for the model.
OVERLOAD_QUESTIONS = [
    "オプトアウトって何のこと？",
    "ハルシネーションとはどういう意味ですか",
    "CAIOって何を担当するの？",
    "一斉調査システムって何？",
    "AI法はいつ施行された？",
    "高リスク判定シートはどういうツールですか",
    "源内ってどこのモデル使ってるの？",
    "都立AIはいつ何校に導入された？",
    "バイアスの定義は？",
    "DeepSeekの注意喚起では何が問題とされている？",
]


# --------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the benchmark process dies, however it dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the try/finally in main() still stops the server


def read_status_kb(pid: int, field_name: str) -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` (VmRSS, VmHWM), or None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class ServerProcess:
    """``guideqa serve`` on 127.0.0.1 with its own data dir; a context manager that always stops it."""

    llm_backend: str = "none"
    queue_size: int = 4
    keep: bool = False
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="guideqa-bench-")))
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    ingest_seconds: float = 0.0
    start_seconds: float = 0.0
    ready: dict = field(default_factory=dict)  # the /readyz body once the server answered 200

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def audit_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'audit.sqlite3'}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def env(self) -> dict[str, str]:
        # Nothing GUIDEQA_* leaks in from the caller's shell (a server URL, the shared data dir).
        env = {k: v for k, v in os.environ.items() if not k.startswith("GUIDEQA_")}
        env.update(
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            GUIDEQA_DATA_DIR=str(self.data_dir),
            GUIDEQA_CACHE_DIR=str(SHARED_CACHE),
            GUIDEQA_MODELS_PATH=str(SHARED_MODELS),
            GUIDEQA_LLM_BACKEND=self.llm_backend,
            GUIDEQA_LLM_QUEUE_SIZE=str(self.queue_size),
            GUIDEQA_RATE_LIMIT_PER_MINUTE="100000000",
            GUIDEQA_AUDIT_DB_URL=self.audit_url,
            GUIDEQA_HOST=HOST,
        )
        return env

    def __enter__(self) -> "ServerProcess":
        try:
            self._ingest()
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _ingest(self) -> None:
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "guideqa.cli", "ingest"],
            env=self.env(), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900,
        )
        if done.returncode != 0:
            raise RuntimeError(f"guideqa ingest failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        self.ingest_seconds = time.perf_counter() - t0

    def _start(self, timeout: float = 300.0) -> None:
        t0 = time.perf_counter()
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "guideqa.cli", "serve", "--host", HOST, "--port", str(self.port)],
            env=self.env(), cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,
        )
        log.close()  # the child holds its own descriptor
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited during start-up ({self.proc.returncode}); see {self.log_path}:\n{self.tail()}")
            try:
                r = httpx.get(f"{self.url}/readyz", timeout=5)
                if r.status_code == 200:
                    self.ready = r.json()
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server was not ready within {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.25)
        self.start_seconds = time.perf_counter() - t0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_mib(self) -> float | None:
        kb = read_status_kb(self.pid, "VmRSS")
        return kb / 1024 if kb is not None else None

    def peak_mib(self) -> float | None:
        kb = read_status_kb(self.pid, "VmHWM")
        return kb / 1024 if kb is not None else None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful shutdown closes the shard and the audit DB), SIGKILL after 30 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        if not self.keep:
            shutil.rmtree(self.data_dir, ignore_errors=True)


# --------------------------------------------------------------------------- driving it
@dataclass
class LoadResult:
    endpoint: str
    clients: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    transport_errors: Counter = field(default_factory=Counter)
    rss_mib: dict[str, float | None] = field(default_factory=dict)
    rss_series: list[tuple[float, float | None]] = field(default_factory=list)
    peak_mib: float | None = None
    ok_answer_ids: list[str] = field(default_factory=list)
    warmup_statuses: Counter = field(default_factory=Counter)
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.transport_errors.values())

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def errors(self) -> dict[str, int]:
        out = {str(s): n for s, n in sorted(self.statuses.items()) if not 200 <= s < 300}
        out.update(self.transport_errors)
        return out

    def percentile(self, p: float) -> float:
        xs = sorted(self.latencies_ms)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]  # nearest rank


def request_for(endpoint: str, question: str) -> tuple[str, dict]:
    if endpoint == "search":
        return "/v1/search", {"query": question, "top_k": 5}
    if endpoint == "ask-clauses":
        return "/v1/ask", {"question": question, "mode": "clauses"}
    if endpoint == "ask-answer":
        return "/v1/ask", {"question": question, "mode": "answer"}
    raise ValueError(endpoint)


async def run_load(server: ServerProcess, *, endpoint: str, clients: int, seconds: float, seed: int = 1234, unique: bool = False) -> LoadResult:
    """``clients`` coroutines sending back-to-back requests for ``seconds``; RSS sampled every 5 s.

    With ``unique``, every request's wording differs (a serial number is appended), so the
    server's query-embedding cache never hits: the cost of a question it has not seen.
    """
    result = LoadResult(endpoint=endpoint, clients=clients, seconds=seconds)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    result.rss_mib["start"] = server.rss_mib()
    # Warm-up, not counted: each question once, so lazy start-up work (rules, guard, caches) is done.
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
        for question in QUESTIONS:
            path, body = request_for(endpoint, question)
            r = await client.post(path, json=body)
            result.warmup_statuses[r.status_code] += 1
            if r.status_code == 200 and path == "/v1/ask":
                result.ok_answer_ids.append(r.json()["answer_id"])  # audited like any other request
    result.rss_mib["warm"] = server.rss_mib()
    t_start = time.perf_counter()
    deadline = t_start + seconds

    async def worker(i: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(seed + i)
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            question = rng.choice(QUESTIONS)
            if unique:
                question = f"{question}（問{i}-{n}）"
            path, body = request_for(endpoint, question)
            r = await _timed_post(client, result, path, body)
            if r is None:
                continue
            if r.status_code == 200 and path == "/v1/ask":
                result.ok_answer_ids.append(r.json()["answer_id"])

    async def sampler() -> None:
        middle_taken = False
        while time.perf_counter() < deadline:
            await asyncio.sleep(min(5.0, max(0.0, deadline - time.perf_counter())))
            now = time.perf_counter() - t_start
            rss = server.rss_mib()
            result.rss_series.append((round(now, 1), rss))
            if not middle_taken and now >= seconds / 2:
                result.rss_mib["middle"] = rss
                middle_taken = True

    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=120) as client:
        await asyncio.gather(sampler(), *(worker(i, client) for i in range(clients)))
    result.seconds = time.perf_counter() - t_start
    result.rss_mib["end"] = server.rss_mib()
    result.peak_mib = server.peak_mib()
    return result


async def _timed_post(client: httpx.AsyncClient, result: LoadResult, path: str, body: dict) -> httpx.Response | None:
    """POST and record latency and status in ``result``; a transport error is counted and gives None."""
    t0 = time.perf_counter()
    try:
        r = await client.post(path, json=body)
    except httpx.HTTPError as exc:
        result.transport_errors[type(exc).__name__] += 1
        return None
    result.latencies_ms.append((time.perf_counter() - t0) * 1000)
    result.statuses[r.status_code] += 1
    return r


async def run_overload(server: ServerProcess, *, requests: int = 20) -> LoadResult:
    """``requests`` answer-mode asks fired at once; each one's status, Retry-After and answer kept."""
    result = LoadResult(endpoint="ask-answer (overload)", clients=requests, seconds=0.0)
    result.rss_mib["start"] = server.rss_mib()
    questions = [OVERLOAD_QUESTIONS[i % len(OVERLOAD_QUESTIONS)] for i in range(requests)]
    retry_after: list[str | None] = []
    reached_llm = 0
    answers: Counter = Counter()  # what each 200 was: generated, abstained, fell back, rules verdict
    t_start = time.perf_counter()

    async def one(client: httpx.AsyncClient, question: str) -> None:
        nonlocal reached_llm
        path, body = request_for("ask-answer", question)
        r = await _timed_post(client, result, path, body)
        if r is None:
            return
        if r.status_code == 503:
            retry_after.append(r.headers.get("retry-after"))
        elif r.status_code == 200:
            data = r.json()
            result.ok_answer_ids.append(data["answer_id"])
            generated = "ttft_ms" in data.get("timings", {})
            reached_llm += generated
            if data.get("notice"):
                answers["fallback to clauses"] += 1
            elif data.get("abstained"):
                answers["abstained after generation (citation gate)" if generated else "abstained (no evidence)"] += 1
            elif data.get("model") == "rules":
                answers["rules verdict"] += 1
            else:
                answers["generated"] += 1

    async def sampler() -> None:
        while True:
            await asyncio.sleep(5.0)
            result.rss_series.append((round(time.perf_counter() - t_start, 1), server.rss_mib()))

    limits = httpx.Limits(max_connections=requests, max_keepalive_connections=requests)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=900) as client:
        sampling = asyncio.create_task(sampler())
        try:
            await asyncio.gather(*(one(client, q) for q in questions))
        finally:
            sampling.cancel()
        half = result.rss_series[len(result.rss_series) // 2][1] if result.rss_series else None
        result.rss_mib["middle"] = half
        healthy = (await client.get("/healthz")).status_code == 200 if server.alive() else False
    result.seconds = time.perf_counter() - t_start
    result.rss_mib["end"] = server.rss_mib()
    result.peak_mib = server.peak_mib()
    result.extra.update(
        retry_after=retry_after,
        all_503_have_retry_after=all(v is not None and v.isdigit() for v in retry_after),
        other_5xx=sum(n for s, n in result.statuses.items() if s >= 500 and s != 503),
        reached_llm=reached_llm,
        answers_200=json.dumps(dict(answers), ensure_ascii=False),
        alive_after=server.alive() and healthy,
    )
    return result


def check_audit(server: ServerProcess, result: LoadResult) -> dict[str, object]:
    """One ``/v1/ask`` audit row per request that did not get 503, and every 200's answer_id among them."""
    try:
        from service.audit import AuditLog
    except ImportError:
        return {"audit": "skipped: service/audit.py is not there yet"}
    audit = AuditLog(server.audit_url)
    try:
        rows = [r for r in audit.rows() if r.get("endpoint") == "/v1/ask"]
    finally:
        audit.close()
    sent = result.requests + sum(result.warmup_statuses.values())
    expected = sent - result.statuses.get(503, 0) - result.warmup_statuses.get(503, 0) - sum(result.transport_errors.values())
    ids = {r["id"] for r in rows}
    missing = [a for a in result.ok_answer_ids if a not in ids]
    return {
        "audit_rows": len(rows),
        "audit_expected": expected,
        "audit_ok": len(rows) == expected and not missing,
        "audit_missing_ids": len(missing),
        "audit_statuses": dict(Counter(r.get("status") for r in rows)),
    }


# --------------------------------------------------------------------------- reporting
def machine_line() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.machine()}, {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, 1-min load average before the run {load:.2f}"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


def _mib(v: float | None) -> str:
    return f"{v:.0f} MiB" if v is not None else "n/a"


def render(result: LoadResult, *, command: str, server: ServerProcess, machine: str, audit: dict[str, object] | None) -> str:
    lines = [
        f"- command: `{command}`",
        f"- when: {time.strftime('%Y-%m-%d %H:%M %Z')}; commit {git_commit()}",
        f"- machine: {machine}. The load generator runs on the same cores as the server.",
        f"- server: `guideqa serve` (uvicorn, one process), LLM backend `{server.llm_backend}`"
        + (f", queue size {server.queue_size}" if server.llm_backend != "none" else "")
        + f"; index built in {server.ingest_seconds:.1f} s (shared embedding cache), ready {server.start_seconds:.1f} s after launch",
        "",
        "| measure | value |",
        "|---|---|",
        f"| endpoint | `{result.endpoint}` |",
        f"| concurrent clients | {result.clients} |",
        f"| duration | {result.seconds:.1f} s |",
        f"| requests | {result.requests} |",
        f"| 2xx | {result.ok} |",
        f"| errors (non-2xx by status / transport) | {json.dumps(result.errors) if result.errors else 'none'} |",
        f"| throughput | {result.requests / result.seconds:.1f} requests/s |" if result.seconds else "| throughput | n/a |",
        f"| latency p50 / p95 / p99 | {result.percentile(50):.0f} / {result.percentile(95):.0f} / {result.percentile(99):.0f} ms |",
        f"| latency max | {max(result.latencies_ms, default=float('nan')):.0f} ms |",
        f"| server RSS start / middle / end | {_mib(result.rss_mib.get('start'))} / {_mib(result.rss_mib.get('middle'))} / {_mib(result.rss_mib.get('end'))} |",
        f"| server RSS after warm-up ({len(QUESTIONS)} requests, not counted above: {dict(result.warmup_statuses)}) | {_mib(result.rss_mib.get('warm'))} |" if "warm" in result.rss_mib else None,
        f"| server peak RSS (VmHWM) | {_mib(result.peak_mib)} |",
        "| RSS every 5 s | " + ", ".join(f"{v:.0f}" for _, v in result.rss_series if v is not None) + " MiB |",
    ]
    lines = [line for line in lines if line is not None]
    for key, value in result.extra.items():
        if key == "retry_after":
            value = ", ".join(sorted({str(v) for v in value})) or "none"  # type: ignore[union-attr]
            key = "Retry-After values on 503"
        lines.append(f"| {key.replace('_', ' ')} | {value} |")
    for key, value in (audit or {}).items():
        lines.append(f"| {key.replace('_', ' ')} | {json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value} |")
    return "\n".join(lines) + "\n"


def write_section(name: str, body: str, path: Path = REPORT) -> None:
    """Replace this run's section of the report, keeping the others."""
    begin, end = f"<!-- bench_load:{name} -->", f"<!-- /bench_load:{name} -->"
    header = (
        "# API load test\n\n"
        "Measured by `eval/bench_load.py`. It runs the real app (`guideqa serve`) in a subprocess on\n"
        "127.0.0.1, with its own index in a temp dir, and drives it with httpx async clients. Each\n"
        "section below is one run; re-running a mode replaces only its own section.\n"
    )
    text = path.read_text(encoding="utf-8") if path.exists() else header
    block = f"{begin}\n## {name}\n\n{body}{end}"
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- entry point
def _raise_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # so the finally blocks stop the server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent connections (default 50)")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of the run (default 60)")
    parser.add_argument("--endpoint", choices=["search", "ask-clauses"], default="search")
    parser.add_argument("--unique", action="store_true", help="make every question's wording unique (no query-embedding cache hits)")
    parser.add_argument("--overload", action="store_true", help="20 answer-mode asks at once with the local LLM and a queue of 4")
    parser.add_argument("--overload-requests", type=int, default=20)
    parser.add_argument("--queue-size", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir (index, audit DB, server log)")
    parser.add_argument("--no-write", action="store_true", help=f"print only; do not update {REPORT.name}")
    args = parser.parse_args(argv)
    command = " ".join([".venv/bin/python -m eval.bench_load", *(argv if argv is not None else sys.argv[1:])]).strip()
    signal.signal(signal.SIGTERM, _raise_on_sigterm)

    machine = machine_line()
    server = ServerProcess(llm_backend="llama-cpp" if args.overload else "none", queue_size=args.queue_size, keep=args.keep)
    with server:
        if args.overload:
            llm = server.ready.get("llm")
            if llm != "loaded":
                print(f"the local LLM did not load (llm={llm}); see {server.log_path}", file=sys.stderr)
                return 2
            result = asyncio.run(run_overload(server, requests=args.overload_requests))
            name = "overload"
        else:
            result = asyncio.run(run_load(server, endpoint=args.endpoint, clients=args.clients, seconds=args.seconds, unique=args.unique))
            name = args.endpoint + ("-unique" if args.unique else "")
        audit = check_audit(server, result) if result.endpoint.startswith("ask") else None
        alive = server.alive()
    body = render(result, command=command, server=server, machine=machine, audit=audit)
    print(f"## {name}\n\n{body}")
    if not args.no_write:
        write_section(name, body)
        print(f"written to {REPORT.relative_to(PROJECT_ROOT)}")
    if not alive:
        print("the server died during the run", file=sys.stderr)
        return 1
    if args.overload and (result.extra.get("other_5xx") or not result.extra.get("all_503_have_retry_after")):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
