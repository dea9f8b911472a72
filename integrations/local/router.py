"""The weighted reverse proxy in front of one target's instances, on its own loopback port.

Each target has two: the main router, which picks a slot per request by the target's routing
(header/cookie overrides, sticky placement, then weights: see ``targeting`` and ``balancing``), and
the preview router, which serves only the routing's ``preview_slot`` (503 ``no_preview`` while none
is set; never another slot, so what answers there is always the idle side being looked at).
The routing is read once per request, so a change applies whole from the very next request.

It forwards method, path, query, headers (minus hop-by-hop ones) and body, and answers with the
instance's status, headers and body plus ``X-Switchyard-Slot``, ``-Version`` and ``-Instance``.
A connection error to an instance is retried once on another instance when nothing can have
reached the application (refused or timed-out connect, with the body still in hand) or the method
is idempotent (GET/HEAD/OPTIONS); a read timeout is answered 504, not retried. No ready
instance at all: 503 ``{"code": "no_ready_instance"}``.
``/_switchyard/metrics`` and ``/_switchyard/metrics.json`` show this target's counters.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from integrations.local.balancing import Balancer
from integrations.local.mirroring import Copier
from integrations.local.stats import code_class

log = logging.getLogger("switchyard.fleet")

HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    )
)
IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS"))
BUFFER_LIMIT = 1 << 20  # bodies up to this size are read whole (and can be retried)
# the request cannot have reached the application
CONNECT_FAILURES = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
SKIP_AUTO_HEADERS = frozenset(("Accept", "Accept-Encoding", "User-Agent", "Content-Type"))


def upstream_session(read_timeout: float) -> aiohttp.ClientSession:
    """The keep-alive client every router shares to talk to instances."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=2, sock_read=read_timeout),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=SKIP_AUTO_HEADERS,
    )


def _strip(headers: Any, *, keep_length: bool) -> CIMultiDict[str]:
    connection = headers.get("Connection", "")
    named = {h.strip().lower() for h in connection.split(",")} if connection else ()
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in named:
            continue
        if lower == "content-length" and not keep_length:
            continue
        out.add(name, value)
    return out


def _problem(status: int, code: str, message: str, **details: Any) -> web.Response:
    body = {"code": code, "message": message, "details": details}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


class Router:
    def __init__(
        self, target: Any, session: aiohttp.ClientSession, *, preview: bool = False
    ) -> None:
        self.target = target  # .key, .slots, .rules, .stats, .metrics_text(), .metrics_json()
        self.preview = preview
        self.port: int | None = None
        self._session = session
        self._balancer = Balancer()
        self._copier = Copier()  # mirror routes: copies to the canary slot, answers dropped
        self._runner: web.ServerRunner | None = None
        self._site: web.TCPSite | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (0 = any free port); OSError if the port is taken."""
        server = web.Server(self.handle, access_log=None, auto_decompress=False)
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=10)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner, self._site = runner, site
        sockets = site._server.sockets if site._server else []  # noqa: SLF001
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def stop_listening(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def close(self) -> None:
        """Stop listening, let the requests in flight finish (bounded), close connections."""
        await self.stop_listening()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._copier.close()

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.path.startswith("/_switchyard/"):
            return self._own(request)
        target = self.target
        rules = target.rules  # one snapshot per request: a new routing applies whole, next time
        prefer = None
        if self.preview:
            if rules.routing.preview_slot is None:
                return _problem(
                    503,
                    "no_preview",
                    f"{target.key} has no preview slot: set one in its routing (preview_slot)",
                    target=target.key,
                )
        else:
            cookies = request.cookies if rules.uses_cookies else None
            prefer = rules.preferred_slot(request.headers, cookies)
        body: Any = None
        buffered = True
        if request.body_exists:
            length = request.content_length
            if length is not None and length <= BUFFER_LIMIT:
                body = await request.read()
            else:
                body, buffered = request.content, False
        headers = _strip(request.headers, keep_length=not buffered)
        headers.popall("Expect", None)  # the body is in hand (or streams) already
        forwarded = request.headers.get("X-Forwarded-For")
        remote = request.remote or ""
        headers["X-Forwarded-For"] = f"{forwarded}, {remote}" if forwarded else remote
        headers.setdefault("X-Forwarded-Host", request.host)
        headers.setdefault("X-Forwarded-Proto", request.scheme)
        pair = None
        if rules.mirrors and buffered and not self.preview:
            pair = self._mirror(request, rules, headers, body)
        if pair is None:
            return await self._route(request, target, rules, prefer, headers, body, buffered)
        try:
            return await self._route(
                request, target, rules, prefer, headers, body, buffered, pair.stable
            )
        finally:  # the user's answer is out (or failed): the pair is judged when both are in
            if pair.stable.status is None and pair.stable.error is None:
                pair.stable.failed("no answer", 0.0)
            pair.finish()

    async def _route(
        self, request, target, rules, prefer, headers, body, buffered, side=None
    ) -> web.StreamResponse:
        method = request.method
        failed = None
        for _ in range(2):
            if self.preview:
                pool = target.slots.get(rules.routing.preview_slot)
                inst = self._balancer.choose_in(pool, exclude=failed)
            elif failed is not None:
                # a retry prefers the slot the routing chose, then any slot the weights send
                # traffic to, else the same instance again (a dropped keep-alive connection is the
                # usual cause) -- never a slot the weights took traffic away from
                inst = self._balancer.choose_in(target.slots.get(failed.slot), exclude=failed)
                if inst is None:
                    other = self._balancer.choose(target.slots, rules.weights, exclude=failed)
                    weights = rules.weights
                    routed = other is not None and (weights is None or weights.get(other.slot, 0))
                    inst = other if routed else failed
            else:
                inst = self._balancer.choose(
                    target.slots, rules.weights, exclude=failed, prefer=prefer
                )
            if inst is None:
                break
            outcome = await self._forward(request, inst, headers, body, buffered, side)
            if not isinstance(outcome, Exception):
                return outcome
            failed = inst
            unsent = isinstance(outcome, CONNECT_FAILURES)
            # a slow answer is not retried (the next instance would likely be as slow)
            broken = method in IDEMPOTENT and not isinstance(outcome, TimeoutError)
            if not (buffered and (unsent or broken)):
                break
        if failed is None:
            target.stats.unrouted += 1
            if self.preview:
                slot = rules.routing.preview_slot
                message = f"no instance of {target.key}'s preview slot {slot} is ready"
                return _problem(503, "no_ready_instance", message, target=target.key, slot=slot)
            return _problem(
                503,
                "no_ready_instance",
                f"no instance of {target.key} is ready to serve this request",
                target=target.key,
            )
        return self._failure(failed, outcome)

    def _mirror(self, request: web.BaseRequest, rules: Any, headers: Any, body: Any) -> Any:
        """A copy to an instance of the canary slot when a mirror route wants this request: the
        ``darklaunch.Pair`` its answer will be compared in (None: no copy)."""
        if not any(m.wants(request.method, request.path, request.headers) for m in rules.mirrors):
            return None
        inst = self._balancer.choose_in(self.target.slots.get(rules.routing.canary_slot))
        if inst is None:
            return None
        stats = self.target.stats
        pair = stats.dark.pair(request.method, request.path)
        self._copier.send(self._session, inst, request, headers, body, stats.observe, pair)
        return pair

    def _failure(self, inst: Any, exc: Exception) -> web.Response:
        timed_out = isinstance(exc, TimeoutError)
        verb = "did not answer in time" if timed_out else "failed"
        response = _problem(
            504 if timed_out else 502,
            "upstream_timeout" if timed_out else "upstream_failed",
            f"instance {inst.id} of {self.target.key} at {inst.address} {verb}: "
            f"{type(exc).__name__} {exc}".strip(),
            instance=inst.id,
            slot=inst.slot,
        )
        self._mark(response.headers, inst)
        return response

    @staticmethod
    def _mark(headers: Any, inst: Any) -> None:
        headers["X-Switchyard-Slot"] = inst.slot
        headers["X-Switchyard-Version"] = inst.version
        headers["X-Switchyard-Instance"] = inst.id

    async def _forward(
        self,
        request: web.BaseRequest,
        inst: Any,
        headers: Any,
        body: Any,
        buffered: bool,
        side: Any = None,
    ) -> web.StreamResponse | Exception:
        """The instance's answer, or the exception that kept it from answering. ``side``
        (``darklaunch.Side``): what the user got, for a mirrored request's comparison."""
        loop_time = time.perf_counter  # uvloop's loop.time() only has millisecond resolution
        stats = self.target.stats
        series = inst.series
        started = loop_time()
        url = URL(inst.base_url + request.raw_path, encoded=True)
        inst.acquire()
        try:
            try:
                upstream = await self._session.request(
                    request.method, url, headers=headers, data=body, allow_redirects=False
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                stats.observe(series, "error", loop_time() - started)
                if side is not None:
                    side.failed(exc, loop_time() - started)
                return exc
            klass = code_class(upstream.status)
            out: web.StreamResponse | None = None
            try:
                no_body = request.method == "HEAD" or upstream.status in (204, 304)
                length = upstream.content_length
                if not no_body and length is not None and length <= BUFFER_LIMIT:
                    data = await upstream.read()
                    out = web.Response(
                        status=upstream.status,
                        reason=upstream.reason,
                        body=data,
                        headers=_strip(upstream.headers, keep_length=False),
                    )
                    self._mark(out.headers, inst)
                    stats.observe(series, klass, loop_time() - started)
                    if side is not None:
                        side.feed(data)
                        side.done(upstream.status, loop_time() - started)
                    return out
                out = web.StreamResponse(
                    status=upstream.status,
                    reason=upstream.reason,
                    headers=_strip(upstream.headers, keep_length=True),
                )
                self._mark(out.headers, inst)
                await out.prepare(request)
                if not no_body:
                    async for chunk in upstream.content.iter_any():
                        await out.write(chunk)
                        if side is not None:
                            side.feed(chunk)
                await out.write_eof()
                stats.observe(series, klass, loop_time() - started)
                if side is not None:
                    side.done(upstream.status, loop_time() - started)
                return out
            except (aiohttp.ClientError, TimeoutError) as exc:  # the instance broke off
                stats.observe(series, "error", loop_time() - started)
                if side is not None:
                    side.failed(exc, loop_time() - started)
                if out is not None and out.prepared:
                    raise  # too late for a clean error: drop the client connection
                return exc
            except ConnectionError:  # the client went away while we were answering
                stats.observe(series, klass, loop_time() - started)
                raise
            finally:
                upstream.release()
        finally:
            inst.release()

    def _own(self, request: web.BaseRequest) -> web.Response:
        if request.path == "/_switchyard/metrics":
            return web.Response(text=self.target.metrics_text(), content_type="text/plain")
        if request.path == "/_switchyard/metrics.json":
            body = json.dumps(self.target.metrics_json())
            return web.Response(text=body, content_type="application/json")
        return _problem(404, "not_found", f"no such router path: {request.path}")
