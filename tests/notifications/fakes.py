"""Loopback HTTP receivers standing in for services that cannot be reached from here: Slack's
Web API (``chat.postMessage``, ``chat.update``, ``users.info``, as ``slack_sdk`` speaks it), a
Teams Workflows webhook and a webhook consumer. Each runs a real HTTP server on 127.0.0.1 in a
thread; tests point the real clients at it and read what arrived."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Receiver:
    """Records every request; ``answer`` decides the reply: ``(status, body dict, headers)``.
    ``hang`` seconds of delay before answering (a dead service that accepts connections)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.hang = 0.0
        self.status = 200
        self.headers: dict[str, str] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                request = {
                    "method": self.command,
                    "path": url.path,
                    "query": {k: v[-1] for k, v in parse_qs(url.query).items()},
                    "headers": dict(self.headers.items()),
                    "raw": raw,
                    "at": time.monotonic(),
                }
                try:
                    request["json"] = json.loads(raw) if raw else None
                except ValueError:
                    request["json"] = None
                    request["form"] = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
                if receiver.hang:
                    time.sleep(receiver.hang)
                with receiver._lock:
                    receiver.requests.append(request)
                    status, body, headers = receiver.answer(request)
                data = json.dumps(body).encode() if not isinstance(body, bytes) else body
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_POST = _handle
            do_GET = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, request) -> tuple[int, object, dict]:
        return self.status, {}, self.headers

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def wait(self, count: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return self.requests
            time.sleep(0.02)
        raise AssertionError(f"expected {count} requests, got {len(self.requests)}")


class FakeSlack(Receiver):
    """Slack's Web API: every ``chat.postMessage`` gets a new ``ts``; ``chat.update`` replaces the
    message it names; ``error`` (e.g. ``token_revoked``) makes every call fail as Slack does."""

    TOKEN = "xoxb-test-token"

    def __init__(self):
        self.messages: dict[str, dict] = {}  # ts -> the message as Slack now shows it
        self.replies: list[dict] = []
        self.error: str | None = None
        self.users: dict[str, dict] = {}
        self._next = 1000
        super().__init__()
        self.api_url = self.url + "/api/"

    def answer(self, request):
        method = request["path"].rsplit("/", 1)[-1]
        body = request["json"] or request.get("form") or request["query"] or {}
        if request["headers"].get("Authorization") != f"Bearer {self.TOKEN}":
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        if self.status != 200:
            return self.status, {"ok": False, "error": "ratelimited"}, self.headers
        if self.error:
            return 200, {"ok": False, "error": self.error}, {}
        if method == "chat.postMessage":
            self._next += 1
            ts = f"1700000000.{self._next:06d}"
            message = {"ts": ts, "channel": body["channel"], **body}
            if body.get("thread_ts"):
                self.replies.append(message)
            else:
                self.messages[ts] = message
            return 200, {"ok": True, "channel": body["channel"], "ts": ts, "message": body}, {}
        if method == "chat.update":
            if body.get("ts") not in self.messages:
                return 200, {"ok": False, "error": "message_not_found"}, {}
            self.messages[body["ts"]].update(body)
            self.messages[body["ts"]]["updates"] = self.messages[body["ts"]].get("updates", 0) + 1
            return 200, {"ok": True, "channel": body["channel"], "ts": body["ts"]}, {}
        if method == "users.info":
            user = self.users.get(body.get("user"))
            if user is None:
                return 200, {"ok": False, "error": "user_not_found"}, {}
            return 200, {"ok": True, "user": user}, {}
        return 200, {"ok": False, "error": "unknown_method"}, {}

    def buttons(self, ts: str) -> list[str]:
        for block in self.messages[ts].get("blocks") or []:
            if block.get("type") == "actions":
                return [e["action_id"].removeprefix("switchyard.") for e in block["elements"]]
        return []

    def text_of(self, ts: str) -> str:
        return json.dumps(self.messages[ts].get("blocks"))
