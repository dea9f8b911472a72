"""The ``gateway-api`` router: weights and header matches in an HTTPRoute's rules (see
``integrations.kubernetes.routers``)."""

from __future__ import annotations

import re
from typing import Any

from integrations.base import IntegrationError, Routing
from integrations.kubernetes import manifests as m
from integrations.kubernetes.routers import Router, routing_annotation, routing_from, split

GATEWAY = ("gateway.networking.k8s.io", "v1", "httproutes")


class GatewayAPI(Router):
    kind = "gateway-api"

    def _route(self) -> dict[str, Any]:
        return self.t.cluster.call(
            f"read HTTPRoute {self.t.namespace}/{self.t.router['route']}",
            self.t.cluster.custom.get_namespaced_custom_object,
            *GATEWAY[:2],
            self.t.namespace,
            GATEWAY[2],
            self.t.router["route"],
        )

    def _backend(self, slot: str | None, weight: int = 1) -> dict[str, Any]:
        name = self.t.service if slot is None else m.slot_name(self.t.name, slot)
        return {"name": name, "port": self.t.port, "weight": weight}

    def rules(self, routing: Routing) -> list[dict[str, Any]]:
        path = {"type": "PathPrefix", "value": self.t.router.get("path", "/")}
        rules = []
        stable, canary, _ = split(routing) if routing.weights else (None, None, 0)
        stable, canary = routing.stable_slot or stable, routing.canary_slot or canary
        if routing.header and canary and stable:
            for value, slot in (("always", canary), ("never", stable)):
                header = {"type": "Exact", "name": routing.header, "value": value}
                rules.append(
                    {
                        "matches": [{"path": path, "headers": [header]}],
                        "backendRefs": [self._backend(slot)],
                    }
                )
        if canary:
            # Argo's setHeaderRoute: a request matching every header of a route -> the canary
            for route in routing.header_routes or ():
                headers = [_header_match(m["header"], m["value"]) for m in route.get("match") or ()]
                rules.append(
                    {
                        "matches": [{"path": path, "headers": headers}],
                        "backendRefs": [self._backend(canary)],
                    }
                )
        if routing.weights is None:
            backends = [self._backend(None)]
        else:
            backends = [self._backend(s, int(w)) for s, w in sorted(routing.weights.items())]
        if canary:
            # Argo's setMirrorRoute: the matching requests go where the weights say, and the
            # RequestMirror filter copies ``percentage``% of them to the canary's Service
            for mirror in routing.mirror_routes or ():
                matches = [self._match(m, path) for m in mirror.get("match") or ()] or [
                    {"path": path}
                ]
                mirror_ref = {"name": m.slot_name(self.t.name, canary), "port": self.t.port}
                rules.append(
                    {
                        "matches": matches,
                        "filters": [
                            {
                                "type": "RequestMirror",
                                "requestMirror": {
                                    "backendRef": mirror_ref,
                                    "percent": int(mirror.get("percentage", 100)),
                                },
                            }
                        ],
                        "backendRefs": [dict(b) for b in backends],
                    }
                )
        rules.append({"matches": [{"path": path}], "backendRefs": backends})
        return rules

    def _match(self, match: dict[str, Any], default_path: dict[str, str]) -> dict[str, Any]:
        """A mirror route's match as an ``HTTPRouteMatch`` (method exact only, as the Gateway
        API has it)."""
        out: dict[str, Any] = {"path": default_path}
        if match.get("path"):
            ((kind, value),) = match["path"].items()
            types = {"exact": "Exact", "prefix": "PathPrefix", "regex": "RegularExpression"}
            out["path"] = {"type": types[kind], "value": value}
        if match.get("method"):
            ((kind, value),) = match["method"].items()
            if kind != "exact":
                raise IntegrationError(
                    f"the gateway-api router matches a method exactly, not by {kind} "
                    f"({value!r}): use {{'exact': 'GET'}}",
                    permanent=True,
                )
            out["method"] = str(value).upper()
        headers = match.get("headers") or {}
        if headers:
            out["headers"] = [_header_match(k, v) for k, v in headers.items()]
        return out

    def _apply(self, routing: Routing) -> None:
        route = self._route()
        wanted = self.rules(routing)
        note = routing_annotation(routing)
        annotations = route.setdefault("metadata", {}).setdefault("annotations", {}) or {}
        if (
            route.get("spec", {}).get("rules") == wanted
            and annotations.get(m.ROUTING_ANNOTATION) == note
        ):
            return
        route["metadata"]["annotations"] = {**annotations, m.ROUTING_ANNOTATION: note}
        route.setdefault("spec", {})["rules"] = wanted
        self.t.guard(route, route, f"update HTTPRoute {self.t.namespace}/{self.t.router['route']}")
        self.t.cluster.call(
            f"update HTTPRoute {self.t.namespace}/{self.t.router['route']}",
            self.t.cluster.custom.replace_namespaced_custom_object,
            *GATEWAY[:2],
            self.t.namespace,
            GATEWAY[2],
            self.t.router["route"],
            route,
        )

    def read(self):
        route = self._route()
        rules = route.get("spec", {}).get("rules") or []
        default = next((r for r in reversed(rules) if not _has_headers(r)), None)
        weights: dict[str, int] | None = {}
        prefix = f"{self.t.name}-"
        for ref in (default or {}).get("backendRefs") or []:
            name = ref.get("name", "")
            if name == self.t.service:
                weights = None
                break
            if name.startswith(prefix):
                weights[name[len(prefix) :]] = int(ref.get("weight", 1))
        return weights, routing_from(route)


def _has_headers(rule: dict[str, Any]) -> bool:
    return any(match.get("headers") for match in rule.get("matches") or [])


def _header_match(name: str, value: dict[str, str]) -> dict[str, str]:
    """``{"exact" | "prefix" | "regex": text}`` as an ``HTTPHeaderMatch``: the Gateway API
    matches a header exactly or by a regular expression, so a prefix is a regex, and a regex is
    anchored (the local router's regex must match the whole value, so must this one)."""
    ((kind, text),) = value.items()
    if kind == "exact":
        return {"type": "Exact", "name": name, "value": text}
    pattern = f"^{re.escape(text)}.*$" if kind == "prefix" else f"^(?:{text})$"
    return {"type": "RegularExpression", "name": name, "value": pattern}
