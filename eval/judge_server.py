"""llama-cpp-python's OpenAI-compatible server, tied to the life of its parent.

:class:`eval.ragas_judge.Judge` starts this file as a subprocess::

    python eval/judge_server.py --parent-pid 1234 -- --model M.gguf --n_ctx 4096 \
        --n_threads 2 --host 127.0.0.1 --port 40123

Everything after ``--`` goes unchanged to ``python -m llama_cpp.server`` (which
needs the ``starlette-context`` package; see ``ragas_judge`` for the pin).

What this wrapper adds is that the server stops by itself: a daemon thread
checks every second that the parent process still exists and calls
``os._exit`` when it does not (the parent was killed with SIGKILL, crashed, or
forgot to stop us). The Judge normally stops the server itself with SIGTERM
(then SIGKILL) to its process group; this is the safety net.

``PR_SET_PDEATHSIG`` is deliberately not used: it fires when the parent
*thread* that spawned us exits, and the Judge restarts its server from
asyncio worker threads, which end with the event loop while the parent
process lives on.

It is a file run by path rather than a module so that it needs neither the
project installed nor ``eval`` on ``sys.path``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

from index.versions import pid_alive

__all__ = ["main"]


def _parent_alive(pid: int) -> bool:
    if os.getppid() != pid:
        # Re-parented to init or a subreaper: the original parent is gone.
        return False
    return pid_alive(pid)


def _watch_parent(pid: int, interval_s: float) -> None:
    while True:
        if not _parent_alive(pid):
            print(f"judge_server: parent {pid} is gone; exiting", file=sys.stderr, flush=True)
            os._exit(0)
        time.sleep(interval_s)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" in argv:
        split = argv.index("--")
        own, server_args = argv[:split], argv[split + 1 :]
    else:
        own, server_args = argv, []
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--check-interval", type=float, default=1.0)
    args = parser.parse_args(own)

    if not _parent_alive(args.parent_pid):
        sys.exit(0)
    threading.Thread(
        target=_watch_parent, args=(args.parent_pid, args.check_interval), name="parent-watchdog", daemon=True
    ).start()
    # SIGTERM -> normal exit (uvicorn installs its own handler once it runs; this covers model loading).
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    from llama_cpp.server.__main__ import main as server_main

    sys.argv = ["llama_cpp.server", *server_args]
    server_main()


if __name__ == "__main__":
    main()
