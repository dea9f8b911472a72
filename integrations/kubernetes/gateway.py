"""The ``gateway-api`` router: weights and header matches in an HTTPRoute's rules (see
``integrations.kubernetes.routers``)."""

from __future__ import annotations

from typing import Any

from integrations.base import Routing
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
        if routing.weights is None:
            backends = [self._backend(None)]
        else:
            backends = [self._backend(s, int(w)) for s, w in sorted(routing.weights.items())]
        rules.append({"matches": [{"path": path}], "backendRefs": backends})
        return rules

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
