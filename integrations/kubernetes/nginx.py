"""The ``ingress-nginx`` router: a canary Ingress beside the stable one (see
``integrations.kubernetes.routers``)."""

from __future__ import annotations

import copy
from typing import Any

from integrations.base import IntegrationError, Routing
from integrations.kubernetes import manifests as m
from integrations.kubernetes.routers import Router, routing_annotation, routing_from, split

NGINX = "nginx.ingress.kubernetes.io/"


class IngressNginx(Router):
    kind = "ingress-nginx"

    @property
    def canary_name(self) -> str:
        return f"{self.t.router['ingress']}-canary"

    def _read(self, name: str, *, missing_ok: bool = False):
        return self.t.cluster.call(
            f"read Ingress {self.t.namespace}/{name}",
            self.t.cluster.networking.read_namespaced_ingress,
            name,
            self.t.namespace,
            missing_ok=missing_ok,
        )

    def _owned(self, service_name: str) -> bool:
        return service_name == self.t.service or service_name.startswith(f"{self.t.name}-")

    def _retarget(self, spec: dict[str, Any], service: str) -> tuple[dict[str, Any], int]:
        spec, count = copy.deepcopy(spec), 0
        backends = [spec.get("defaultBackend")] + [
            p.get("backend")
            for rule in spec.get("rules") or []
            for p in (rule.get("http") or {}).get("paths") or []
        ]
        for backend in backends:
            svc = (backend or {}).get("service")
            if svc and self._owned(svc.get("name", "")):
                svc["name"], svc["port"], count = service, {"number": self.t.port}, count + 1
        return spec, count

    def _apply(self, routing: Routing) -> None:
        ingress_name = self.t.router["ingress"]
        stable_ing = self._read(ingress_name)
        if routing.weights is None:
            stable, canary, weight = None, routing.canary_slot, 0
        else:
            stable, canary, weight = split(routing)
        stable_svc = self.t.service if stable is None else m.slot_name(self.t.name, stable)
        spec, count = self._retarget(stable_ing.get("spec") or {}, stable_svc)
        if not count:
            raise IntegrationError(
                f"Ingress {self.t.namespace}/{ingress_name} routes to no Service of this target: "
                f"point its backend at Service {self.t.service!r}",
                permanent=True,
            )
        if spec != stable_ing.get("spec"):
            stable_ing["spec"] = spec
            self.t.guard(
                stable_ing, stable_ing, f"update Ingress {self.t.namespace}/{ingress_name}"
            )
            self.t.cluster.call(
                f"update Ingress {self.t.namespace}/{ingress_name}",
                self.t.cluster.networking.replace_namespaced_ingress,
                ingress_name,
                self.t.namespace,
                stable_ing,
            )
        canary_svc = m.slot_name(self.t.name, canary) if canary else self.t.service
        canary_spec, _ = self._retarget(spec, canary_svc)
        canary_spec.pop("defaultBackend", None)
        annotations = {
            NGINX + "canary": "true",
            NGINX + "canary-weight": str(weight if canary else 0),
            m.ROUTING_ANNOTATION: routing_annotation(routing),
        }
        if routing.header and canary:
            annotations[NGINX + "canary-by-header"] = routing.header
        if routing.cookie and canary:
            annotations[NGINX + "canary-by-cookie"] = routing.cookie
        wanted = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": self.canary_name,
                "namespace": self.t.namespace,
                "labels": {m.NAME: self.t.name, m.MANAGED_BY: m.MANAGER},
                "annotations": annotations,
            },
            "spec": canary_spec,
        }
        current = self._read(self.canary_name, missing_ok=True)
        if current is None:
            self.t.guard(None, wanted, f"create Ingress {self.t.namespace}/{self.canary_name}")
            self.t.cluster.call(
                f"create Ingress {self.t.namespace}/{self.canary_name}",
                self.t.cluster.networking.create_namespaced_ingress,
                self.t.namespace,
                wanted,
            )
            return
        current_notes = {
            k: v
            for k, v in (current["metadata"].get("annotations") or {}).items()
            if k.startswith(NGINX) or k == m.ROUTING_ANNOTATION
        }
        if current_notes == annotations and current.get("spec") == canary_spec:
            return
        wanted["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
        self.t.guard(current, wanted, f"update Ingress {self.t.namespace}/{self.canary_name}")
        self.t.cluster.call(
            f"update Ingress {self.t.namespace}/{self.canary_name}",
            self.t.cluster.networking.replace_namespaced_ingress,
            self.canary_name,
            self.t.namespace,
            wanted,
        )

    def read(self):
        canary = self._read(self.canary_name, missing_ok=True)
        routing = routing_from(canary)
        if canary is None or routing is None:
            return None, routing
        annotations = canary["metadata"].get("annotations") or {}
        weight = int(annotations.get(NGINX + "canary-weight") or 0)
        if routing.weights is None:
            return None, routing
        stable, canary_slot, _ = split(routing)
        weights = {stable: 100 - weight}
        if canary_slot:
            weights[canary_slot] = weight
        return weights, routing
