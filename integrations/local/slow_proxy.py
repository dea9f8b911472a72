"""A slowed target, for failure tests and benchmarks: a loopback proxy in front of the fleet
agent's control API that holds every change (PUT/DELETE) to chosen targets for ``delay`` seconds
before passing it on. Reads pass straight through.

    with SlowProxy(agent_url, delay=3.0, keys=lambda key: key.startswith("slow-")) as proxy:
        ... FLEET_URL=proxy.url for the workers ...

A request is forwarded even if its client went away meanwhile (a worker killed mid-call): the
agent then sees a stale worker's change land late, which is what fencing is for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import httpx

from integrations.local.ports import free_port


class SlowProxy:
    def __init__(
        self,
        upstream: str,
        *,
        delay: float,
        keys: Callable[[str], bool] = lambda key: True,
        port: int | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay = delay
        self.keys = keys
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.held = 0  # changes delayed so far
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> SlowProxy:
        proxy = self
        client = httpx.Client(base_url=self.upstream, timeout=httpx.Timeout(10.0, connect=2.0))

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                parts = self.path.split("/")
                key = unquote(parts[2]) if len(parts) > 3 and parts[1] == "targets" else ""
                if self.command in ("PUT", "DELETE") and key and proxy.keys(key):
                    proxy.held += 1
                    time.sleep(proxy.delay)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length")
                }
                try:
                    upstream = client.request(
                        self.command, self.path, content=body, headers=headers
                    )
                except httpx.HTTPError as exc:
                    try:
                        self.send_error(502, f"upstream: {exc}")
                    except OSError:
                        pass  # the client went away too
                    return
                try:
                    self.send_response(upstream.status_code)
                    self.send_header("Content-Type", upstream.headers.get("content-type", ""))
                    self.send_header("Content-Length", str(len(upstream.content)))
                    self.end_headers()
                    self.wfile.write(upstream.content)
                except OSError:
                    pass  # the client went away (killed): the change was applied all the same

            do_GET = do_PUT = do_DELETE = do_POST = _forward

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                pass  # a request cut off by a stop: nothing to report

        self._server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
