"""Run the real ASGI app on 127.0.0.1 in a background thread, for browser tests.

``uvicorn.Server`` is stopped through ``should_exit`` so the lifespan shutdown
(closing the shard and the audit DB) runs before the next test opens them.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn

__all__ = ["LiveServer", "free_port"]

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    app: object
    port: int = field(default_factory=free_port)
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 300.0) -> "LiveServer":
        """Start serving; wait until start-up (lifespan, incl. loading the LLM) has finished."""
        config = uvicorn.Config(self.app, host=HOST, port=self.port, log_level="warning", lifespan="on", ws="none")
        self.server = uvicorn.Server(config)
        # uvicorn installs no signal handlers off the main thread, so Ctrl-C still reaches pytest.
        self.thread = threading.Thread(target=self.server.run, name="live-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the live server exited during start-up")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the live server did not start within {timeout:.0f}s")
            time.sleep(0.1)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
            if self.thread.is_alive():
                # Streams still open (e.g. an SSE the browser never finished): stop waiting for them.
                assert self.server is not None
                self.server.force_exit = True
                self.thread.join(timeout)
