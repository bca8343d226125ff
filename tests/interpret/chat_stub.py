"""A tiny OpenAI-compatible chat server on 127.0.0.1 with switchable failure modes, for tests."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

MODES = ("ok", "500", "timeout", "malformed", "empty", "forbidden")
OK_ANSWER = "磨玻璃结节是CT上淡淡的小片影，多数需要定期复查。建议带报告到呼吸内科就诊。"
FORBIDDEN_ANSWER = "根据报告，您患有早期肺癌，请每日服用阿司匹林100mg。"


class ChatStub:
    def __init__(self, slow_seconds: float = 3.0):
        self.mode = "ok"
        self.requests: list[dict] = []
        self.slow_seconds = slow_seconds
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                stub.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                if self.path != "/v1/chat/completions":
                    return self._send(404, b'{"error": "not found"}')
                mode = stub.mode
                if mode == "500":
                    return self._send(500, b'{"error": "internal"}')
                if mode == "timeout":
                    time.sleep(stub.slow_seconds)
                    return self._send(200, self._answer(OK_ANSWER))
                if mode == "malformed":
                    return self._send(200, b'{"choices": [{"message": ')
                if mode == "empty":
                    return self._send(200, self._answer("   "))
                if mode == "forbidden":
                    return self._send(200, self._answer(FORBIDDEN_ANSWER))
                return self._send(200, self._answer(OK_ANSWER))

            def _answer(self, content: str) -> bytes:
                return json.dumps({"id": "stub", "object": "chat.completion", "model": "stub",
                                   "choices": [{"index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": content}}]}).encode()

            def _send(self, status: int, payload: bytes):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout mode)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
