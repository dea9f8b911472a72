"""The kubernetes provider's ``Target``: slots as Deployments, routing through a router.

    target = KubernetesTarget("api.prod", config, kubeconfig="/etc/switchyard/kubeconfig")
    target.ensure_slot("green", ReleaseRef("1.4.2", {"image": "reg/api:1.4.2"}), replicas=3)
    target.set_routing(Routing({"blue": 95, "green": 5}, stable_slot="blue", canary_slot="green"))

What one call costs (API calls; all label-selected or by name, never a namespace-wide list):
``status`` lists the target's Deployments and its pods by label, then reads its router's object
(3-4); ``ensure_slot`` reads the slot's Deployment and writes it only when its replicas or its
spec (hashed into the annotation ``switchyard.dev/spec-hash``) differ (1-2, plus the template's
Deployment and, for weighted routers, the slot's Service the first time in a process);
``set_routing`` reads and, when it differs, writes the preview Service and the router's object.

Writes are conditional: a replace carries the ``resourceVersion`` of the read before it, so a
worker acting on a stale view is refused (409, transient) instead of undoing a newer write.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import replace
from typing import Any

from integrations.base import IntegrationError, ReleaseRef, Routing, TargetStatus
from integrations.kubernetes import manifests as m
from integrations.kubernetes.client import Cluster
from integrations.kubernetes.fencing import guard
from integrations.kubernetes.pods import slot_status
from integrations.kubernetes.routers import router_class, routing_annotation, routing_from

SPEC_HASH = "switchyard.dev/spec-hash"
DEFAULT_DEADLINE = 600
# (cluster, namespace, name, selector) -> when it was last seen as wanted (read again after TTL)
_known_services: dict[tuple, float] = {}
_templates: dict[
    tuple, tuple[float, dict]
] = {}  # adopted pod templates, read at most once a minute
TEMPLATE_TTL = 60.0


class KubernetesTarget:
    # the reconcile loop's fence, (deployment id, claim generation): every write carries it and
    # is refused when the object holds a newer one (``integrations.kubernetes.fencing``)
    fence: tuple[int, int] | None = None

    def __init__(
        self,
        key: str,
        config: dict[str, Any],
        *,
        kubeconfig: str | None = None,
        timeout: float = 5.0,
        **_: Any,  # the provider's other settings (prometheus_url: the metrics' own)
    ) -> None:
        self.key = key
        self.config = dict(config or {})
        self.cluster = Cluster(
            self.config.get("cluster") or {}, kubeconfig=kubeconfig, timeout=timeout
        )
        self.namespace: str = self.config["namespace"]
        self.name: str = self.config["name"]
        self.container: str = self.config.get("container", "app")
        self.service: str = self.config.get("service") or self.name
        self.preview_service = f"{self.name}-preview"
        self.port: int = int(self.config.get("port", 80))
        self.target_port: int = int(self.config.get("target_port", 8080))
        self.router: dict[str, Any] = self.config.get("router") or {}
        self.routing = router_class(self.router.get("kind"))(self)

    # -- the Target protocol ------------------------------------------------------------------

    def ensure_slot(self, slot: str, release: ReleaseRef, replicas: int) -> None:
        name = m.slot_name(self.name, slot)
        wanted = m.slot_deployment(
            name=self.name,
            slot=slot,
            key=self.key,
            namespace=self.namespace,
            template=self._template(),
            container=self.container,
            release=release,
            replicas=replicas,
            progress_deadline=int(self.config.get("progress_deadline_seconds", DEFAULT_DEADLINE)),
        )
        digest = _digest({k: v for k, v in wanted["spec"].items() if k != "replicas"})
        wanted["metadata"]["annotations"][SPEC_HASH] = digest
        current = self._read_deployment(name)
        if current is None:
            self.guard(None, wanted, f"create Deployment {self.namespace}/{name}")
            self.cluster.call(
                f"create Deployment {self.namespace}/{name}",
                self.cluster.apps.create_namespaced_deployment,
                self.namespace,
                wanted,
            )
        else:
            notes = current["metadata"].get("annotations") or {}
            if notes.get(SPEC_HASH) != digest or current["spec"].get("replicas") != replicas:
                wanted["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                self.guard(current, wanted, f"update Deployment {self.namespace}/{name}")
                self.cluster.call(
                    f"update Deployment {self.namespace}/{name}",
                    self.cluster.apps.replace_namespaced_deployment,
                    name,
                    self.namespace,
                    wanted,
                )
        if self.routing.slot_services:
            self.ensure_service(name, m.slot_selector(self.name, slot))

    def set_weights(self, weights: dict[str, int] | None) -> None:
        _, routing = self.routing.read()
        self.set_routing(replace(routing or Routing(), weights=weights))

    def set_routing(self, routing: Routing) -> None:
        if self.routing.slot_services and routing.weights is not None:
            for slot in routing.weights:  # every backend the route names exists
                self.ensure_service(m.slot_name(self.name, slot), m.slot_selector(self.name, slot))
        if self.routing.shared_service:  # the target's Service selects every slot
            self.ensure_service(self.service, m.base_selector(self.name))
        self.routing.apply(routing)

    def status(self) -> TargetStatus:
        selector = m.selector_string(m.base_selector(self.name))
        deployments = (
            self.cluster.call(
                f"list Deployments of {self.name} in {self.namespace}",
                self.cluster.apps.list_namespaced_deployment,
                self.namespace,
                label_selector=selector,
            ).get("items")
            or []
        )
        pods = (
            self.cluster.call(
                f"list pods of {self.name} in {self.namespace}",
                self.cluster.core.list_namespaced_pod,
                self.namespace,
                label_selector=selector,
            ).get("items")
            or []
        )
        now = time.time()
        slots = {}
        for deployment in deployments:
            slot = (deployment["metadata"].get("labels") or {}).get(m.SLOT)
            if slot:
                slots[slot] = slot_status(slot, deployment, pods, port=self.target_port, now=now)
        weights, routing = self.routing.read()
        preview = routing.preview_slot if routing else None
        return TargetStatus(
            endpoint=self.config.get("url") or self._service_url(self.service),
            slots=slots,
            weights=weights,
            preview_endpoint=(
                self.config.get("preview_url") or self._service_url(self.preview_service)
            )
            if preview
            else None,
            routing=replace(routing, weights=weights) if routing else None,
        )

    def remove_slot(self, slot: str) -> None:
        """Scale the slot's Deployment to zero (its pods terminate gracefully, the Deployment
        and its history stay for the next release)."""
        name = m.slot_name(self.name, slot)
        current = self._read_deployment(name)
        if current is None or current["spec"].get("replicas") == 0:
            return
        current["spec"]["replicas"] = 0
        self.guard(current, current, f"scale Deployment {self.namespace}/{name} to 0")
        self.cluster.call(
            f"scale Deployment {self.namespace}/{name} to 0",
            self.cluster.apps.replace_namespaced_deployment,
            name,
            self.namespace,
            current,
        )

    # -- helpers ------------------------------------------------------------------------------

    def guard(self, current: dict[str, Any] | None, body: dict[str, Any], what: str) -> None:
        """Refuse (``StaleFence``) a write whose fence is older than ``current``'s; stamp
        ``body`` with ours (``integrations.kubernetes.fencing``)."""
        guard(self.fence, current, body, f"{what} on cluster {self.cluster.name}")

    def _service_url(self, service: str) -> str:
        return f"http://{service}.{self.namespace}.svc.cluster.local:{self.port}"

    def _read_deployment(self, name: str) -> dict[str, Any] | None:
        return self.cluster.call(
            f"read Deployment {self.namespace}/{name}",
            self.cluster.apps.read_namespaced_deployment,
            name,
            self.namespace,
            missing_ok=True,
        )

    def _template(self) -> dict[str, Any]:
        template = self.config["template"]
        if "manifest" in template:
            return copy.deepcopy(template["manifest"])
        source = template["deployment"]
        key = (self.cluster.identity, self.namespace, source)
        cached = _templates.get(key)
        if cached is not None and time.monotonic() - cached[0] < TEMPLATE_TTL:
            return copy.deepcopy(cached[1])
        found = self._read_deployment(source)
        if found is None:
            raise IntegrationError(
                f"cluster {self.cluster.name}: the Deployment {self.namespace}/{source} whose "
                "pod template the target adopts does not exist",
                permanent=True,
            )
        pod_template = found["spec"]["template"]
        _templates[key] = (time.monotonic(), pod_template)
        return copy.deepcopy(pod_template)

    def read_service(self, name: str) -> dict[str, Any] | None:
        return self.cluster.call(
            f"read Service {self.namespace}/{name}",
            self.cluster.core.read_namespaced_service,
            name,
            self.namespace,
            missing_ok=True,
        )

    def ensure_service(
        self,
        name: str,
        selector: dict[str, str],
        *,
        routing: Routing | None = None,
        fixed: bool = True,
    ) -> None:
        """The Service ``name`` selects ``selector`` (created if missing, replaced with the
        read ``resourceVersion`` if not). A ``fixed`` Service (one whose selector never
        changes: a slot's, or the target's under a weighted router) is read once a minute;
        the others (the preview's, the service-selector's) are read every time."""
        note = routing_annotation(routing) if routing is not None else None
        fixed = fixed and note is None
        known = (self.cluster.identity, self.namespace, name, json.dumps(selector))
        if fixed and time.monotonic() - _known_services.get(known, -TEMPLATE_TTL) < TEMPLATE_TTL:
            return
        current = self.read_service(name)
        if current is None:
            wanted = m.service(
                name=name,
                namespace=self.namespace,
                selector=selector,
                port=self.port,
                target_port=self.target_port,
                owner=self.name,
            )
            if note is not None:
                wanted["metadata"]["annotations"] = {m.ROUTING_ANNOTATION: note}
            self.guard(None, wanted, f"create Service {self.namespace}/{name}")
            self.cluster.call(
                f"create Service {self.namespace}/{name}",
                self.cluster.core.create_namespaced_service,
                self.namespace,
                wanted,
            )
        else:
            same_note = note is None or routing_from(current) == routing
            if current.get("spec", {}).get("selector") != selector or not same_note:
                current["spec"]["selector"] = dict(selector)
                if note is not None:
                    annotations = current["metadata"].get("annotations") or {}
                    current["metadata"]["annotations"] = {**annotations, m.ROUTING_ANNOTATION: note}
                self.guard(current, current, f"update Service {self.namespace}/{name}")
                self.cluster.call(
                    f"update Service {self.namespace}/{name}",
                    self.cluster.core.replace_namespaced_service,
                    name,
                    self.namespace,
                    current,
                )
        if fixed:
            _known_services[known] = time.monotonic()


def _digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
