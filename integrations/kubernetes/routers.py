"""Traffic routers: a ``Routing`` written to the cluster, and read back from it.

Every router keeps a preview Service ``<name>-preview`` whose selector is the preview slot (a
slot that matches no pod while there is none) and records the whole ``Routing`` it applied as the
annotation ``switchyard.dev/routing`` on the object it owns; what it reads back as weights comes
from the object itself, so a hand edit on the cluster shows.

- ``service-selector``: the target's Service selects one slot (blue-green), or every slot
  (``weights`` None: evenly over every ready pod). It cannot split traffic by percentage, nor
  route by header: asked to, it refuses (permanent), though the capability check refuses such a
  spec before it starts.
- ``gateway-api``: the HTTPRoute the config names gets our ``rules``: one rule per header value
  (``always`` -> the canary slot's Service, ``never`` -> the stable one), then the default rule
  whose ``backendRefs`` carry the weights over the slot Services ``<name>-<slot>`` (``weights``
  None: one backendRef to the target's Service, which selects every slot).
- ``ingress-nginx``: the stable Ingress the config names routes to the stable slot's Service; a
  canary Ingress ``<ingress>-canary`` with the same rules routes to the canary slot's Service
  with ``canary-weight``, ``canary-by-header`` and ``canary-by-cookie`` annotations (values
  ``always`` / ``never``, as ingress-nginx reads them);
- ``istio``: the VirtualService the config names gets ``http`` routes over the subsets of a
  DestinationRule the provider keeps (see ``Istio``).

Writes are conditional: a replace carries the ``resourceVersion`` just read (a 409 means someone
else wrote meanwhile: transient, the next tick reads again), and nothing is written when the
object already says what is wanted.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from typing import Any

from integrations.base import IntegrationError, Routing
from integrations.kubernetes import manifests as m

GATEWAY = ("gateway.networking.k8s.io", "v1", "httproutes")
NGINX = "nginx.ingress.kubernetes.io/"


def routing_annotation(routing: Routing) -> str:
    return json.dumps(asdict(routing), sort_keys=True)


def routing_from(obj: dict[str, Any] | None) -> Routing | None:
    raw = ((obj or {}).get("metadata", {}).get("annotations") or {}).get(m.ROUTING_ANNOTATION)
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return None
    return Routing(**data) if isinstance(data, dict) else None


def split(routing: Routing) -> tuple[str | None, str | None, int]:
    """(stable slot, canary slot, canary weight) of a weighted routing."""
    weights = routing.weights or {}
    stable = routing.stable_slot or (max(weights, key=weights.get) if weights else None)
    canary = routing.canary_slot or next((s for s in weights if s != stable), None)
    return stable, canary, int(weights.get(canary, 0)) if canary else 0


class Router:
    kind = ""
    slot_services = True  # whether each slot needs its own Service
    shared_service = True  # whether the target's Service selects every slot (weights None)

    def __init__(self, target) -> None:
        self.t = target  # the KubernetesTarget: its cluster, names and Service helper

    def apply(self, routing: Routing) -> None:
        self._refuse_unsupported(routing)
        preview = routing.preview_slot or m.NO_SLOT
        self.t.ensure_service(
            self.t.preview_service, m.slot_selector(self.t.name, preview), fixed=False
        )
        self._apply(routing)

    def read(self) -> tuple[dict[str, int] | None, Routing | None]:
        raise NotImplementedError

    def _apply(self, routing: Routing) -> None:
        raise NotImplementedError

    def _refuse_unsupported(self, routing: Routing) -> None:
        from integrations.kubernetes.config import CAPABILITIES

        can = CAPABILITIES[self.kind]
        asked = {
            "header_rules": routing.header,
            "cookie_rules": routing.cookie,
            "sticky": routing.sticky_key,
        }
        weights = [w for w in (routing.weights or {}).values() if w]
        if len(weights) > 1:
            asked["weights"] = f"{routing.weights}"
        for name, value in asked.items():
            if value and not getattr(can, name):
                raise IntegrationError(
                    f"the {self.kind} router cannot do {name.replace('_', ' ')} ({value}): "
                    "use a router that can (gateway-api, ingress-nginx) or change the strategy",
                    permanent=True,
                )


class ServiceSelector(Router):
    kind = "service-selector"
    slot_services = False
    shared_service = False  # its selector is the switch

    def _apply(self, routing: Routing) -> None:
        weights = routing.weights
        if weights is None:
            selector = m.base_selector(self.t.name)
        else:
            slot = max(weights, key=weights.get)
            selector = m.slot_selector(self.t.name, slot)
        self.t.ensure_service(self.t.service, selector, routing=routing)

    def read(self):
        svc = self.t.read_service(self.t.service)
        if svc is None:
            return None, None
        routing = routing_from(svc)
        slot = (svc.get("spec", {}).get("selector") or {}).get(m.SLOT)
        if slot is None:
            return None, routing
        slots = {s for s in (routing.stable_slot, routing.canary_slot) if s} if routing else set()
        return {s: (100 if s == slot else 0) for s in slots | {slot}}, routing


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


class Istio(Router):
    """A VirtualService the team owns (hosts, gateways) gets our ``http`` routes over the
    subsets of a DestinationRule ``<name>`` the provider keeps (one subset per slot, keyed by
    the slot label): header and cookie routes first (``always`` -> the canary subset, ``never``
    -> the stable one; the cookie matched by the usual ``cookie`` header regex), then the
    default route's weights. ``weights`` None: one destination without a subset (the target's
    Service, every slot)."""

    kind = "istio"
    slot_services = False
    VS = ("networking.istio.io", "v1", "virtualservices")
    DR = ("networking.istio.io", "v1", "destinationrules")

    def _get(self, kind, name, *, missing_ok=False):
        group, version, plural = kind
        return self.t.cluster.call(
            f"read {plural} {self.t.namespace}/{name}",
            self.t.cluster.custom.get_namespaced_custom_object,
            group,
            version,
            self.t.namespace,
            plural,
            name,
            missing_ok=missing_ok,
        )

    def _replace(self, kind, name, body):
        group, version, plural = kind
        self.t.cluster.call(
            f"update {plural} {self.t.namespace}/{name}",
            self.t.cluster.custom.replace_namespaced_custom_object,
            group,
            version,
            self.t.namespace,
            plural,
            name,
            body,
        )

    def _destination(self, slot: str | None, weight: int | None = None) -> dict[str, Any]:
        destination: dict[str, Any] = {"host": self.t.service}
        if slot is not None:
            destination["subset"] = slot
        route: dict[str, Any] = {"destination": destination}
        if weight is not None:
            route["weight"] = weight
        return route

    def http(self, routing: Routing) -> list[dict[str, Any]]:
        routes = []
        stable, canary, _ = split(routing) if routing.weights else (None, None, 0)
        stable, canary = routing.stable_slot or stable, routing.canary_slot or canary
        if stable and canary:
            for value, slot in (("always", canary), ("never", stable)):
                if routing.header:
                    routes.append(
                        {
                            "match": [{"headers": {routing.header: {"exact": value}}}],
                            "route": [self._destination(slot)],
                        }
                    )
                if routing.cookie:
                    cookie = f"^(.*?;\\s*)?({routing.cookie}={value})(;.*)?$"
                    routes.append(
                        {
                            "match": [{"headers": {"cookie": {"regex": cookie}}}],
                            "route": [self._destination(slot)],
                        }
                    )
        if routing.weights is None:
            routes.append({"route": [self._destination(None)]})
        else:
            routes.append(
                {
                    "route": [
                        self._destination(s, int(w)) for s, w in sorted(routing.weights.items())
                    ]
                }
            )
        return routes

    def _ensure_subsets(self, slots: set[str]) -> None:
        name = self.t.name
        current = self._get(self.DR, name, missing_ok=True)
        have = {s["name"] for s in ((current or {}).get("spec") or {}).get("subsets") or []}
        wanted = sorted(have | slots)
        subsets = [{"name": s, "labels": {m.SLOT: s}} for s in wanted]
        if current is None:
            group, version, plural = self.DR
            body = {
                "apiVersion": f"{group}/{version}",
                "kind": "DestinationRule",
                "metadata": {
                    "name": name,
                    "namespace": self.t.namespace,
                    "labels": {m.NAME: name, m.MANAGED_BY: m.MANAGER},
                },
                "spec": {"host": self.t.service, "subsets": subsets},
            }
            self.t.cluster.call(
                f"create DestinationRule {self.t.namespace}/{name}",
                self.t.cluster.custom.create_namespaced_custom_object,
                group,
                version,
                self.t.namespace,
                plural,
                body,
            )
        elif current["spec"].get("subsets") != subsets:
            current["spec"]["subsets"] = subsets
            self._replace(self.DR, name, current)

    def _apply(self, routing: Routing) -> None:
        slots = set(routing.weights or {}) | {
            s for s in (routing.stable_slot, routing.canary_slot) if s
        }
        self._ensure_subsets(slots)
        name = self.t.router["virtual_service"]
        vs = self._get(self.VS, name)
        wanted, note = self.http(routing), routing_annotation(routing)
        annotations = vs.setdefault("metadata", {}).get("annotations") or {}
        if (
            vs.get("spec", {}).get("http") == wanted
            and annotations.get(m.ROUTING_ANNOTATION) == note
        ):
            return
        vs["metadata"]["annotations"] = {**annotations, m.ROUTING_ANNOTATION: note}
        vs.setdefault("spec", {})["http"] = wanted
        self._replace(self.VS, name, vs)

    def read(self):
        vs = self._get(self.VS, self.t.router["virtual_service"])
        routes = (vs.get("spec") or {}).get("http") or []
        default = next((r for r in reversed(routes) if not r.get("match")), None)
        weights: dict[str, int] | None = {}
        for route in (default or {}).get("route") or []:
            subset = (route.get("destination") or {}).get("subset")
            if subset is None:
                weights = None
                break
            weights[subset] = int(route.get("weight", 100))
        return weights, routing_from(vs)


ROUTERS = {cls.kind: cls for cls in (ServiceSelector, GatewayAPI, IngressNginx, Istio)}
