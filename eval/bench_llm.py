"""Measure the local LLM backend on this machine and print a markdown report.

    .venv/bin/python -m eval.bench_llm                 # defaults: 3 repeats, 2 threads
    .venv/bin/python -m eval.bench_llm --repeats 5 --threads 2

What it measures, all through ``service.llm`` as the service uses it:

* GGUF check (``ensure_gguf``) and model load time (fresh process);
* time to first token (TTFT) for ~250-token RAG prompts whose first ~160 tokens
  are a fixed system prompt: *cold* (KV cache emptied), *warm* (right after
  another prompt with the same system prompt, so only the clause and question
  are evaluated), *follow-up* (same clause too) and *displaced* (an unrelated
  prompt came in between), the last also with ``llama_cpp.LlamaRAMCache``;
* prompt and generated tokens/s, process RSS after load and after generation,
  and what a LlamaRAMCache entry really costs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

from guideqa.settings import Settings
from service.llm.backends import LlamaCppBackend
from service.llm.model_files import ensure_gguf

SYSTEM_PROMPT = (
    "あなたは日本の行政機関向け生成AIガイドラインに関する質問に答えるアシスタントです。"
    "必ず与えられた条文だけを根拠にして、日本語で簡潔に答えてください。"
    "条文に記載がない場合は「記載が見つかりませんでした」とだけ答えてください。"
    "推測や一般知識で補ってはいけません。回答の最後に根拠とした条文番号を[1]の形式で示してください。"
    "個人情報や要機密情報を含む入力には回答せず、その旨を伝えてください。"
    "回答は三文以内とし、箇条書きは使わないでください。日付や件数は条文の表記のまま引用してください。"
)
# Each question comes with its own clause, so two RAG prompts share only the system prompt.
CASES = [
    (
        "[1] 職員は、生成AIサービスを利用する際、要機密情報を入力してはならない。"
        "ただし、情報セキュリティ責任者が認めた環境において、所定の手続を経た場合はこの限りでない。",
        "生成AIに要機密情報を入力してもよいですか？",
    ),
    (
        "[1] 生成AIの出力を業務に用いる場合、職員は出力内容の正確性、根拠及び権利侵害の有無を自ら確認し、"
        "その結果について責任を負う。確認の記録は所属において一年間保存する。",
        "生成AIの出力内容の正確性は誰が確認しますか？",
    ),
    (
        "[1] 各府省庁は、生成AIの利用に関する責任者を置き、利用可能なサービスの一覧を作成して"
        "職員に周知する。一覧にないサービスを利用する場合は、事前に責任者の承認を得なければならない。",
        "一覧にないサービスを使うには何が必要ですか？",
    ),
    (
        "[1] 個人情報を含む文書を生成AIで要約する場合は、氏名、住所その他特定の個人を識別できる記述を"
        "あらかじめ削除し、又は仮名に置き換えなければならない。",
        "個人情報を含む文書を要約するときの注意点は？",
    ),
    (
        "[1] 生成AIを用いて作成した文書を対外的に公表する場合は、生成AIを利用した旨及び"
        "人による確認を行った旨を明記するよう努めるものとする。",
        "生成AIで作った文書を公表するときは何を明記しますか？",
    ),
    (
        "[1] 生成AIの利用に起因する情報漏えい等の事案が発生した場合、職員は直ちに情報セキュリティ責任者に"
        "報告し、その指示に従って被害の拡大防止のための措置を講じなければならない。",
        "情報漏えいが起きたら職員はまず何をしますか？",
    ),
]
FOLLOW_UP = "その例外が認められるのはどんな場合ですか？"
LONG_ANSWER = "生成AIを行政で利用する際の注意点を、条文を踏まえて300字程度で説明してください。"
OTHER_PROMPT = [{"role": "user", "content": "次の文を英語に訳してください: 本日は晴天なり。"}]


def rag_messages(clause: str, question: str) -> list[dict]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"条文:\n{clause}\n\n質問: {question}"},
    ]


def rss_mib() -> dict[str, float]:
    """Resident memory of this process in MiB (Linux /proc), split into anonymous and file-backed."""
    out = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) / 1024
    return out


def timed_stream(backend: LlamaCppBackend, messages: list[dict], max_tokens: int) -> tuple[float, float, str]:
    """Return (time to first delta, total time, text) for one streamed reply."""
    started = time.perf_counter()
    first = None
    parts = []
    for delta in backend.stream_chat(messages, max_tokens=max_tokens):
        if first is None:
            first = time.perf_counter() - started
        parts.append(delta)
    total = time.perf_counter() - started
    return (first if first is not None else total), total, "".join(parts)


def median_of(fn: Callable[[int], float], repeats: int) -> tuple[float, list[float]]:
    values = [fn(i) for i in range(repeats)]
    return statistics.median(values), values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--max-tokens", type=int, default=128, help="for the tokens/s run")
    args = parser.parse_args(argv)
    if not 1 <= args.repeats <= len(CASES) // 2:
        parser.error(f"--repeats must be 1..{len(CASES) // 2}")
    load_before = os.getloadavg()[0]
    # CPU seconds per wall second of this process: about n_threads when it had the cores to itself.
    cpu_start, wall_start = os.times(), time.perf_counter()

    settings = Settings(threads=args.threads, llm_ctx=args.n_ctx)
    rss_before = rss_mib()

    started = time.perf_counter()
    path = ensure_gguf(settings.model_dir, progress=True)
    t_ensure = time.perf_counter() - started

    started = time.perf_counter()
    backend = LlamaCppBackend(path, n_ctx=settings.llm_ctx, n_threads=settings.threads)
    t_load = time.perf_counter() - started
    rss_load = rss_mib()
    # The benchmark reaches into the shared Llama object to empty its KV cache and to
    # try LlamaRAMCache; the service does neither.
    llm = backend._llm

    sys_tokens = backend.count_tokens(SYSTEM_PROMPT)
    prompt_tokens = [
        llm.create_chat_completion(messages=rag_messages(*case), max_tokens=1, temperature=0.0)["usage"][
            "prompt_tokens"
        ]
        for case in CASES
    ]
    llm.reset()

    def ask(case: tuple[str, str], max_tokens: int = 8) -> float:
        return timed_stream(backend, rag_messages(*case), max_tokens)[0]

    def cold(i: int) -> float:
        llm.reset()  # forget the KV cache: the whole prompt is evaluated
        return ask(CASES[2 * i])

    def warm(i: int) -> float:
        ask(CASES[2 * i])
        return ask(CASES[2 * i + 1])  # same system prompt, another clause and question

    def follow_up(i: int) -> float:
        ask(CASES[2 * i])
        return ask((CASES[2 * i][0], FOLLOW_UP))  # same system prompt and clause

    def displaced(i: int) -> float:
        ask(CASES[2 * i])
        timed_stream(backend, OTHER_PROMPT, 8)
        return ask(CASES[2 * i + 1])

    results = {}
    for name, fn in [("cold", cold), ("warm", warm), ("follow_up", follow_up), ("displaced", displaced)]:
        llm.reset()
        results[name] = median_of(fn, args.repeats)

    # Decoding speed: a long answer after a warm prefix; tokens after the first over the time after it.
    llm.reset()
    ask(CASES[0])
    first, total, text = timed_stream(backend, rag_messages(CASES[0][0], LONG_ANSWER), args.max_tokens)
    gen_tokens = backend.count_tokens(text)
    tok_s = (gen_tokens - 1) / (total - first) if total > first and gen_tokens > 1 else float("nan")
    rss_gen = rss_mib()

    # LlamaRAMCache: saves the whole state after every call and restores the longest matching one.
    from llama_cpp import LlamaRAMCache

    llm.set_cache(LlamaRAMCache(capacity_bytes=1 << 30))
    llm.reset()
    rss_ram_start = rss_mib()["VmRSS"]
    results["displaced_ram"] = median_of(displaced, args.repeats)
    rss_ram_end = rss_mib()["VmRSS"]
    ram_saves = len(llm.cache.cache_state)
    ram_counted = llm.cache.cache_size / 2**20
    llm.set_cache(None)
    ask(CASES[0])
    started = time.perf_counter()
    state = llm.save_state()
    t_save = time.perf_counter() - started
    state_kv, state_scores = state.llama_state_size / 2**20, state.scores.nbytes / 2**20
    del state

    cpu_end = os.times()
    cpu_share = (cpu_end.user + cpu_end.system - cpu_start.user - cpu_start.system) / (time.perf_counter() - wall_start)

    def row(label: str, key: str) -> str:
        median, runs = results[key]
        return f"| {label} | {median:.2f} s [{', '.join(f'{v:.2f}' for v in runs)}] |"

    print(f"# LLM backend benchmark ({time.strftime('%Y-%m-%d %H:%M')})\n")
    print(
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"1-min load average before the run {load_before:.2f}; "
        f"this process used {cpu_share:.2f} CPU-seconds per second (≈ threads when nothing else ran)"
    )
    print(
        f"- model: {path.name} ({path.stat().st_size / 2**20:.0f} MiB), n_ctx={settings.llm_ctx}, "
        f"threads={settings.threads}, greedy decoding"
    )
    print(
        f"- RAG prompts: {min(prompt_tokens)}–{max(prompt_tokens)} tokens with the chat template, "
        f"of which the system prompt is {sys_tokens} tokens; each has its own clause and question"
    )
    print(f"- TTFT rows: median of {args.repeats} runs, the runs in brackets\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| ensure_gguf (stamp present) | {t_ensure * 1000:.1f} ms |")
    print(f"| model load (LlamaCppBackend) | {t_load:.2f} s |")
    print(row("TTFT cold (empty KV cache)", "cold"))
    print(row("TTFT warm: same system prompt, new clause and question", "warm"))
    print(row("TTFT follow-up: same system prompt and clause, new question", "follow_up"))
    print(row("TTFT after an unrelated prompt displaced the prefix", "displaced"))
    print(row("TTFT displaced, with LlamaRAMCache", "displaced_ram"))
    print(f"| prompt eval, cold | {statistics.mean(prompt_tokens) / results['cold'][0]:.0f} tokens/s |")
    print(f"| generation | {tok_s:.1f} tokens/s ({gen_tokens} tokens in {total - first:.1f} s after the first) |")
    print(f"| RSS before load | {rss_before['VmRSS']:.0f} MiB |")
    print(
        f"| RSS after load | {rss_load['VmRSS']:.0f} MiB "
        f"(anonymous {rss_load['RssAnon']:.0f}, file-backed {rss_load['RssFile']:.0f}) |"
    )
    print(
        f"| RSS after generation | {rss_gen['VmRSS']:.0f} MiB "
        f"(anonymous {rss_gen['RssAnon']:.0f}, file-backed {rss_gen['RssFile']:.0f}) |"
    )
    print(
        f"| LlamaRAMCache: one save_state after a RAG prompt | {t_save:.2f} s, "
        f"{state_kv:.1f} MiB KV + {state_scores:.0f} MiB logits |"
    )
    print(
        f"| LlamaRAMCache: RSS growth over {ram_saves} saved states | {rss_ram_end - rss_ram_start:.0f} MiB "
        f"(the cache counts {ram_counted:.0f} MiB against its capacity) |"
    )


if __name__ == "__main__":
    main()
