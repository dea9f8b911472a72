"""The fleet agent's control API (aiohttp): targets, slots, routing, status and metrics.

    PUT    /targets/{key}               {"router_port": int|null, "preview_port": int|null}
    GET    /targets/{key}               endpoint, preview_endpoint, routing, weights, slots
    PUT    /targets/{key}/slots/{slot}  {"version", "artifact", "health", "replicas"}
    PUT    /targets/{key}/routing       the whole routing: {"weights": {slot: 0..100}|null,
                                        "preview_slot", "stable_slot", "canary_slot", "header",
                                        "cookie", "sticky_key", "header_routes"} (all but
                                        weights default to null)
    PUT    /targets/{key}/weights       {"weights": ...}: the weights only, the rest kept

Fencing: a change (PUT/DELETE of a slot, routing or weights) may carry
``X-Switchyard-Fence: <deployment id>:<generation>``, the reconcile loop's claim; the agent keeps
the highest pair it applied per target (a newer deployment has a larger id) and refuses an older
one with 409 ``stale_fence``: a stale worker's late call changes nothing.

Every route but ``GET /healthz`` needs ``Authorization: Bearer <token>``. Errors are JSON
``{"code", "message", "details"}``: 401 ``not_authenticated``, 400 ``invalid_request`` (with
``details.errors`` as ``[{"path", "message"}]``), 404 ``not_found``, 409 ``conflict``.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from integrations.local import validation
from integrations.local.fleet import Conflict, Fleet, FleetTarget
from integrations.local.stats import prometheus_text

log = logging.getLogger("switchyard.fleet")
FLEET = web.AppKey("fleet", Fleet)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def problem(status: int, code: str, message: str, details: dict[str, Any] | None = None):
    body = {"code": code, "message": message, "details": details or {}}
    return web.json_response(body, status=status)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "invalid_request"}


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return problem(exc.status, exc.code, exc.message, exc.details)
    except validation.Invalid as exc:
        errors = [{"path": path, "message": message} for path, message in exc.errors]
        return problem(400, "invalid_request", exc.message, {"errors": errors})
    except Conflict as exc:
        return problem(409, "conflict", str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "invalid_request")
        return problem(exc.status, code, f"{exc.reason}: {request.method} {request.path}")
    except Exception:
        log.exception("control API: %s %s failed", request.method, request.path)
        return problem(500, "internal_error", "the fleet agent failed; see its log")


def auth_middleware(token: str) -> Any:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/healthz" and request.method == "GET":
            return await handler(request)
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            reason = "missing" if not given else "not accepted"
            raise ApiError(
                401,
                "not_authenticated",
                f"the fleet agent's token is {reason}: send 'Authorization: Bearer <token>' "
                "with the token the agent was started with",
            )
        return await handler(request)

    return check


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        message = f"the request body is not valid JSON: {exc}"
        raise ApiError(400, "invalid_request", message) from exc


def _target(request: web.Request) -> FleetTarget:
    key = request.match_info["key"]
    target = request.app[FLEET].targets.get(key)
    if target is None:
        raise ApiError(404, "not_found", f"no target {key!r} on this fleet agent", target=key)
    return target


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "pid": os.getpid()})


async def list_targets(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    return web.json_response({"targets": [t.status_json() for t in fleet.targets.values()]})


async def put_target(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    validation.check_name("target", key)
    port, preview_port = validation.target_ports(await _body(request))
    target, created = await request.app[FLEET].create_target(key, port, preview_port)
    return web.json_response(target.status_json(), status=201 if created else 200)


async def get_target(request: web.Request) -> web.Response:
    return web.json_response(_target(request).status_json())


async def delete_target(request: web.Request) -> web.Response:
    target = _target(request)
    await request.app[FLEET].delete_target(target.key)
    return web.json_response({"key": target.key, "deleted": True}, status=202)


FENCE_HEADER = "X-Switchyard-Fence"


def _fence(request: web.Request, target: FleetTarget) -> None:
    """Refuse a change fenced older than one applied; else remember its fence. Called after the
    body is read and with no ``await`` before the change is applied (one step of the event loop:
    no other request slips in between)."""
    raw = request.headers.get(FENCE_HEADER)
    if raw is None:
        return
    try:
        owner, _, generation = raw.partition(":")
        fence = (int(owner), int(generation))
    except ValueError as exc:
        message = f"{FENCE_HEADER} must be '<deployment id>:<generation>', got {raw[:40]!r}"
        raise ApiError(400, "invalid_request", message) from exc
    if fence < target.fence:
        log.warning(
            "%s: refused %s %s fenced %s < %s",
            target.key,
            request.method,
            request.path,
            fence,
            target.fence,
        )
        raise ApiError(
            409,
            "stale_fence",
            f"fence {raw} is older than {target.fence[0]}:{target.fence[1]}, already applied "
            f"to {target.key}",
            fence=list(fence),
            applied=list(target.fence),
        )
    target.fence = fence


async def put_slot(request: web.Request) -> web.Response:
    target = _target(request)
    name = request.match_info["slot"]
    validation.check_name("slot", name)
    want = validation.slot_request(await _body(request))
    _fence(request, target)
    slot = target.slot(name)
    slot.ensure(want.version, want.artifact, want.spec, want.health_raw, want.health, want.replicas)
    request.app[FLEET].save()
    return web.json_response(target.status_json(), status=202)


async def delete_slot(request: web.Request) -> web.Response:
    target = _target(request)
    _fence(request, target)
    slot = target.slots.get(request.match_info["slot"])
    if slot is not None:
        slot.delete()
        if slot.empty and target.slots.get(slot.name) is slot:
            del target.slots[slot.name]
        request.app[FLEET].save()
    return web.json_response(target.status_json(), status=202)


async def put_routing(request: web.Request) -> web.Response:
    target = _target(request)
    routing = validation.routing(await _body(request))
    _fence(request, target)
    target.set_routing(routing)  # from the next request on, before anything else
    request.app[FLEET].save()
    log.info("%s: routing %s", target.key, routing)
    return web.json_response(target.status_json())


async def put_weights(request: web.Request) -> web.Response:
    target = _target(request)
    weights = validation.weights(await _body(request))
    _fence(request, target)
    target.set_routing(replace(target.routing, weights=weights))
    request.app[FLEET].save()
    log.info("%s: weights %s", target.key, weights or "even")
    return web.json_response(target.status_json())


async def metrics(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    text = prometheus_text((t.stats for t in fleet.targets.values()), fleet.all_instances())
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def metrics_json(request: web.Request) -> web.Response:
    """Every target's counters, or only those named by ``?target=KEY`` (repeatable): an analysis
    measures one target, and reading all of them for each measurement cost the agent O(targets)
    per call -- at 100 canaries it stopped answering within 2 s (docs/serving.md)."""
    fleet = request.app[FLEET]
    wanted = request.query.getall("target", [])
    keys = [k for k in dict.fromkeys(wanted) if k in fleet.targets] if wanted else fleet.targets
    targets = {key: fleet.targets[key].metrics_json() for key in keys}
    return web.json_response({"time": time.time(), "targets": targets})


def make_app(fleet: Fleet, token: str) -> web.Application:
    app = web.Application(
        middlewares=[errors_middleware, auth_middleware(token)], client_max_size=1 << 20
    )
    app[FLEET] = fleet
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/targets", list_targets)
    app.router.add_put("/targets/{key}", put_target)
    app.router.add_get("/targets/{key}", get_target)
    app.router.add_delete("/targets/{key}", delete_target)
    app.router.add_put("/targets/{key}/slots/{slot}", put_slot)
    app.router.add_delete("/targets/{key}/slots/{slot}", delete_slot)
    app.router.add_put("/targets/{key}/weights", put_weights)
    app.router.add_put("/targets/{key}/routing", put_routing)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/metrics.json", metrics_json)
    return app
