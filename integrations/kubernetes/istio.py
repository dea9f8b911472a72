"""The ``istio`` router: VirtualService routes over DestinationRule subsets (see
``integrations.kubernetes.routers``)."""

from __future__ import annotations

from typing import Any

from integrations.base import Routing
from integrations.kubernetes import manifests as m
from integrations.kubernetes.routers import Router, routing_annotation, routing_from, split


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
        self.t.guard(body, body, f"update {plural} {self.t.namespace}/{name}")
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
        if canary:
            # Argo's setHeaderRoute: a request matching every header of a route -> the canary
            for route in routing.header_routes or ():
                headers = {
                    str(m["header"]).lower(): dict(m["value"]) for m in route.get("match") or ()
                }
                routes.append(
                    {
                        "name": str(route["name"]),
                        "match": [{"headers": headers}],
                        "route": [self._destination(canary)],
                    }
                )
        if routing.weights is None:
            default = [self._destination(None)]
        else:
            default = [self._destination(s, int(w)) for s, w in sorted(routing.weights.items())]
        if canary:
            # Argo's setMirrorRoute: the matching requests go where the weights say, and a copy
            # of ``percentage``% of them to the canary subset (its answer dropped by the proxy)
            for mirror in routing.mirror_routes or ():
                entry: dict[str, Any] = {"name": str(mirror["name"])}
                matches = [_istio_match(m) for m in mirror.get("match") or ()]
                if matches:
                    entry["match"] = matches
                entry["route"] = [dict(r, destination=dict(r["destination"])) for r in default]
                entry["mirror"] = {"host": self.t.service, "subset": canary}
                entry["mirrorPercentage"] = {"value": float(mirror.get("percentage", 100))}
                routes.append(entry)
        routes.append({"route": default})
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
            self.t.guard(None, body, f"create DestinationRule {self.t.namespace}/{name}")
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


def _istio_match(match: dict[str, Any]) -> dict[str, Any]:
    """A mirror route's match (``integrations.base.Routing.mirror_routes``) as an Istio
    ``HTTPMatchRequest``: method and path as ``method`` / ``uri``, headers by lowercase name."""
    out: dict[str, Any] = {}
    if match.get("method"):
        out["method"] = dict(match["method"])
    if match.get("path"):
        out["uri"] = dict(match["path"])
    headers = match.get("headers") or {}
    if headers:
        out["headers"] = {str(k).lower(): dict(v) for k, v in headers.items()}
    return out
