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
  (``always`` -> the canary slot's Service, ``never`` -> the stable one), one per header route
  (-> the canary), one per mirror route (a ``RequestMirror`` filter), then the default rule
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

import json
from dataclasses import asdict
from typing import Any

from integrations.base import IntegrationError, Routing
from integrations.kubernetes import manifests as m


def routing_annotation(routing: Routing) -> str:
    return json.dumps(asdict(routing), sort_keys=True)


def routing_from(obj: dict[str, Any] | None) -> Routing | None:
    raw = ((obj or {}).get("metadata", {}).get("annotations") or {}).get(m.ROUTING_ANNOTATION)
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for key in ("header_routes", "mirror_routes"):  # JSON has lists; a Routing holds tuples
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    return Routing(**data)


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
            "header_routes": ", ".join(r.get("name", "?") for r in routing.header_routes or ()),
            "mirroring": ", ".join(r.get("name", "?") for r in routing.mirror_routes or ()),
        }
        weights = [w for w in (routing.weights or {}).values() if w]
        if len(weights) > 1:
            asked["weights"] = f"{routing.weights}"
        for name, value in asked.items():
            if value and not getattr(can, name):
                raise IntegrationError(
                    f"the {self.kind} router cannot do {name.replace('_', ' ')} ({value}): "
                    "use a router that can (gateway-api, istio, ingress-nginx) or change the "
                    "strategy",
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


def router_class(kind: str) -> type[Router]:
    """The router class for a config's ``router.kind`` (imported when first used)."""
    from integrations.kubernetes.gateway import GatewayAPI
    from integrations.kubernetes.istio import Istio
    from integrations.kubernetes.nginx import IngressNginx

    classes = {cls.kind: cls for cls in (ServiceSelector, GatewayAPI, IngressNginx, Istio)}
    if kind not in classes:
        raise IntegrationError(f"unknown router {kind!r} in the target's config", permanent=True)
    return classes[kind]
