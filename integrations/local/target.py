"""The local provider's ``Target``: a client of the fleet agent's control API.

    target = LocalTarget("api.prod", {"router_port": 9101}, fleet_url=URL, token=TOKEN)
    target.ensure_slot("green", ReleaseRef("1.4.2", {"sample": {}}), replicas=3)
    target.set_weights({"blue": 95, "green": 5})
    target.set_routing(Routing({"blue": 100}, stable_slot="blue", canary_slot="green",
                               header="X-Canary", sticky_key="header:X-User-Id"))

The target (and its routers) is created on the agent before the first call, and again if the agent
has forgotten it (restarted without a state directory). Errors are ``IntegrationError``: what the
agent refuses (4xx) is permanent; an agent that is down, slow or failing is not.

Every call is one HTTP round trip on a kept-alive connection (a few milliseconds on loopback): the
reconcile loop builds a ``LocalTarget`` per tick, so the HTTP client is shared per agent URL and
token within a process, and so is the knowledge that the agent has the target (with the ports the
config asks for); only the first call in a process, or one after the agent forgot the target,
costs a second round trip to create it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict
from typing import Any
from urllib.parse import quote

import httpx

from integrations import http
from integrations.base import (
    InstanceStatus,
    IntegrationError,
    ReleaseRef,
    Routing,
    SlotStatus,
    StaleFence,
    TargetStatus,
)

FENCE_HEADER = "X-Switchyard-Fence"

TIMEOUT = httpx.Timeout(5.0, connect=2.0)
_clients: dict[tuple[int, str, str], httpx.Client] = {}
_clients_lock = threading.Lock()
# (pid, agent URL, token, target key, router_port, preview_port) -> the target's endpoint
_known: dict[tuple[int, str, str, str, Any, Any], str] = {}


def _client_for(fleet_url: str, token: str) -> httpx.Client:
    key = (os.getpid(), fleet_url, token)  # never share a connection across a fork
    with _clients_lock:
        client = _clients.get(key)
        if client is None or client.is_closed:
            client = _clients[key] = httpx.Client(
                base_url=fleet_url, timeout=TIMEOUT, headers={"Authorization": f"Bearer {token}"}
            )
        return client


class _UnknownTarget(IntegrationError):
    """The agent answered 404 for this target (it restarted without its state)."""


class LocalTarget:
    # the reconcile loop's fence, (deployment id, claim generation), sent with every change
    # (``integrations.base.StaleFence``)
    fence: tuple[int, int] | None = None

    def __init__(
        self,
        key: str,
        config: dict[str, Any] | None,
        *,
        fleet_url: str,
        token: str,
    ) -> None:
        self.key = key
        self.config = dict(config or {})
        self.fleet_url = fleet_url.rstrip("/")
        self._token = token
        self._path = f"/targets/{quote(key, safe='')}"
        self._known_key = (
            os.getpid(),
            self.fleet_url,
            token,
            key,
            self.config.get("router_port"),
            self.config.get("preview_port"),
        )

    # -- the Target protocol ------------------------------------------------------------------

    def ensure_slot(self, slot: str, release: ReleaseRef, replicas: int) -> None:
        body = {
            "version": release.version,
            "artifact": dict(release.artifact),
            "health": dict(release.health),
            "replicas": replicas,
        }
        self._target_call("PUT", f"/slots/{quote(slot, safe='')}", body)

    def set_weights(self, weights: dict[str, int] | None) -> None:
        self._target_call("PUT", "/weights", {"weights": weights})

    def set_routing(self, routing: Routing) -> None:
        self._target_call("PUT", "/routing", asdict(routing))

    def status(self) -> TargetStatus:
        data = self._target_call("GET", "", None)
        _known[self._known_key] = data["endpoint"]  # where the agent listens now
        return status_from_json(data)

    def remove_slot(self, slot: str) -> None:
        self._target_call("DELETE", f"/slots/{quote(slot, safe='')}", None)

    # -- the rest -----------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """Where user traffic enters (the target's router)."""
        return self.ensure_target()

    def ensure_target(self) -> str:
        endpoint = _known.get(self._known_key)
        if endpoint is None:
            body = {key: self.config.get(key) for key in ("router_port", "preview_port")}
            endpoint = _known[self._known_key] = self._call("PUT", self._path, body)["endpoint"]
        return endpoint

    def delete(self) -> None:
        """Stop everything of this target on the agent, routers included."""
        _known.pop(self._known_key, None)
        try:
            self._call("DELETE", self._path, None)
        except _UnknownTarget:
            pass

    def _target_call(self, method: str, suffix: str, body: Any) -> Any:
        self.ensure_target()
        try:
            return self._call(method, self._path + suffix, body)
        except _UnknownTarget:
            pass
        # the agent does not know the target (it restarted): create it again, once
        _known.pop(self._known_key, None)
        self.ensure_target()
        return self._call(method, self._path + suffix, body)

    def _call(self, method: str, path: str, body: Any) -> Any:
        where, what = f"fleet agent at {self.fleet_url}", f"{method} {path}"
        headers = {}
        if self.fence is not None and method in ("PUT", "DELETE"):
            headers[FENCE_HEADER] = f"{self.fence[0]}:{self.fence[1]}"
        response = http.send(
            _client_for(self.fleet_url, self._token),
            method,
            path,
            where=where,
            what=what,
            hint="is `manage.py fleet` running?",
            timeout=TIMEOUT,
            json=body,
            headers=headers,
        )
        try:
            payload = response.json()
        except ValueError:
            payload = {"message": response.text.strip()[:300]}
        if response.is_success:
            return payload
        message = payload.get("message") if isinstance(payload, dict) else None
        if response.status_code == 409 and isinstance(payload, dict):
            if payload.get("code") == "stale_fence":
                raise StaleFence(f"{where} refused {what}: {message or 'a newer tick owns it'}")
        if response.status_code == 404 and path.startswith(self._path):
            raise _UnknownTarget(message or "HTTP 404", permanent=True)
        if response.status_code not in (401, 403) and response.status_code < 500:
            raise IntegrationError(message or f"HTTP {response.status_code}", permanent=True)
        http.refused(response, where=where, what=what, detail=message or "")


def status_from_json(data: dict[str, Any]) -> TargetStatus:
    """The agent's ``GET /targets/{key}`` as plain values."""
    slots = {}
    for name, slot in (data.get("slots") or {}).items():
        instances = tuple(
            InstanceStatus(
                id=inst["id"],
                slot=inst.get("slot", name),
                version=inst.get("version") or "",
                state=inst["state"],
                ready_for=float(inst.get("ready_for") or 0.0),
                address=inst.get("address") or "",
                restarts=int(inst.get("restarts") or 0),
            )
            for inst in slot.get("instances", ())
        )
        slots[name] = SlotStatus(
            name=name,
            version=slot.get("version"),
            desired=int(slot.get("desired") or 0),
            instances=instances,
        )
    weights = data.get("weights")
    routing = routing_from_json(data.get("routing") or {"weights": weights})
    return TargetStatus(
        endpoint=data["endpoint"],
        slots=slots,
        weights={k: int(v) for k, v in weights.items()} if weights is not None else None,
        # where the preview slot answers, only while there is one
        preview_endpoint=data.get("preview_endpoint") if routing.preview_slot else None,
        routing=routing,
    )


def routing_from_json(data: dict[str, Any]) -> Routing:
    weights = data.get("weights")
    return Routing(
        weights={k: int(v) for k, v in weights.items()} if weights is not None else None,
        preview_slot=data.get("preview_slot"),
        stable_slot=data.get("stable_slot"),
        canary_slot=data.get("canary_slot"),
        header=data.get("header"),
        cookie=data.get("cookie"),
        sticky_key=data.get("sticky_key"),
        header_routes=tuple(data["header_routes"]) if data.get("header_routes") else None,
        mirror_routes=tuple(data["mirror_routes"]) if data.get("mirror_routes") else None,
    )
