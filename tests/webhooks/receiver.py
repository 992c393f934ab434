"""A tiny threaded HTTP receiver for webhook tests: answers from a script, records every request."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class Receiver:
    """Answers each POST with the next status of `script`, then `then`; `received` lists what came."""

    script: list[int] = field(default_factory=list)
    then: int = 200
    received: list[Received] = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                with owner._lock:
                    owner.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status = owner.script.pop(0) if owner.script else owner.then
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def verified(self, secret: str) -> list[dict]:
        """Every body received, each checked with the Standard Webhooks library (raises if one fails)."""
        return [Webhook(secret).verify(r.body, r.headers) for r in self.received]


def wait_for(condition, *, timeout: float = 60, what: str = "the condition", log=None):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = log.read_text()[-4000:] if log is not None else ""
            raise AssertionError(f"{what} did not happen in {timeout} s\n{tail}")
        time.sleep(0.1)
