"""A kubernetes target's config, its problems by path, and what its router can do.

    {
      "cluster": {"context": "prod-eu"},          # a kubeconfig context, or {"in_cluster": true}
      "namespace": "shop",
      "name": "api",                              # slots are Deployments api-blue / api-green
      "container": "app",                         # the container that runs the release's image
      "template": {"deployment": "api"},          # adopt a Deployment's pod template, or
                                                  # {"manifest": {...a pod template...}}
      "service": "api",                           # the Service users reach (default: name)
      "port": 80, "target_port": 8080,            # its port, and the pods' (default: 80, 8080)
      "router": {"kind": "gateway-api", "route": "api"},
      "url": "https://api.example.com",           # optional: where users reach it (shown)
      "preview_url": "http://api-preview.shop",   # optional: where smoke checks reach the preview
      "prometheus_url": "http://prometheus.monitoring:9090"  # optional: the cluster's Prometheus,
                                                  # for the live charts (else PROMETHEUS_URL)
    }

Routers: ``{"kind": "service-selector"}`` (blue-green by the Service's selector),
``{"kind": "gateway-api", "route": NAME}`` (HTTPRoute backendRefs weights, header matches) and
``{"kind": "ingress-nginx", "ingress": NAME}`` (a canary Ingress beside the stable one) and
``{"kind": "istio", "virtual_service": NAME}`` (route weights over DestinationRule subsets).

Credentials never enter the config: a context is looked up in the kubeconfig file the settings
name (``KUBERNETES_KUBECONFIG``, else ``$KUBECONFIG``, else ``~/.kube/config``); ``in_cluster``
uses the service account of the pod the worker runs in.
"""

from __future__ import annotations

import re
from typing import Any

from integrations.registry import Capabilities

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
HEADER = re.compile(r"^[A-Za-z0-9-]{1,100}$")
KNOWN_KEYS = (
    "cluster",
    "namespace",
    "name",
    "container",
    "template",
    "service",
    "port",
    "target_port",
    "router",
    "url",
    "preview_url",
    "prometheus_url",
    "progress_deadline_seconds",
)
ROUTERS = {
    "service-selector": (),
    "gateway-api": ("route",),
    "ingress-nginx": ("ingress",),
    "istio": ("virtual_service",),
}
NAME_MAX = 45  # room for "-preview" and "-green" within the 63 characters of a DNS label

# What each router can do, honestly. A preview Service (selector on the preview slot) and
# per-pod health come with every router; the rest is what the router's API can express.
CAPABILITIES = {
    # every router keeps both slots' Deployments: the previous one can stay scaled at 0% traffic
    # (warm_slot, the rollback window) and a switch back is one selector / route update
    "service-selector": Capabilities(
        switch=True, preview=True, instance_health=True, warm_slot=True
    ),
    "gateway-api": Capabilities(
        weights=True,
        preview=True,
        header_rules=True,
        header_routes=True,
        mirroring=True,
        instance_health=True,
        warm_slot=True,
    ),
    "ingress-nginx": Capabilities(
        weights=True,
        preview=True,
        header_rules=True,
        cookie_rules=True,
        instance_health=True,
        warm_slot=True,
    ),
    "istio": Capabilities(
        weights=True,
        preview=True,
        header_rules=True,
        header_routes=True,
        cookie_rules=True,
        mirroring=True,
        instance_health=True,
        warm_slot=True,
    ),
}
# what the provider can do with some router (the registry's answer when no config is known)
ANY_ROUTER = Capabilities(
    **{
        name: any(getattr(c, name) for c in CAPABILITIES.values())
        for name in Capabilities.__dataclass_fields__
    }
)


def capabilities_for(config: dict[str, Any] | None) -> Capabilities:
    kind = ((config or {}).get("router") or {}).get("kind") if isinstance(config, dict) else None
    return CAPABILITIES.get(kind, ANY_ROUTER) if isinstance(kind, str) else ANY_ROUTER


def describe(config: dict[str, Any] | None) -> str:
    """Where a target runs, for the board: ``"prod-eu · shop/api · gateway-api"``."""
    config = config if isinstance(config, dict) else {}
    cluster = config.get("cluster") or {}
    where = "in-cluster" if cluster.get("in_cluster") else cluster.get("context") or "?"
    router = (config.get("router") or {}).get("kind") or "?"
    return f"{where} · {config.get('namespace', '?')}/{config.get('name', '?')} · {router}"


def _name_errors(path: str, value: Any, *, limit: int = 63) -> list[tuple[str, str]]:
    if not isinstance(value, str) or not DNS_LABEL.match(value) or len(value) > limit:
        return [
            (
                path,
                f"must be a DNS label (lowercase letters, digits and '-', at most {limit} "
                f"characters), got {value!r}",
            )
        ]
    return []


def _port_errors(path: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        return [(path, f"must be a port number (1-65535), got {value!r}")]
    return []


def validate_config(config: Any) -> list[tuple[str, str]]:
    """Every problem with ``config`` as ``(path, message)``; an empty list means it is fine."""
    if not isinstance(config, dict):
        return [("", f"must be an object, got {type(config).__name__}")]
    errors: list[tuple[str, str]] = []
    for key in sorted(set(config) - set(KNOWN_KEYS), key=str):
        errors.append((str(key), f"unknown key {key!r} (known: {', '.join(KNOWN_KEYS)})"))
    for key in ("cluster", "namespace", "name", "template", "router"):
        if key not in config:
            errors.append((key, "is required"))
    if "cluster" in config:
        errors += _cluster_errors(config["cluster"])
    if "namespace" in config:
        errors += _name_errors("namespace", config["namespace"])
    if "name" in config:
        errors += _name_errors("name", config["name"], limit=NAME_MAX)
    for key in ("container", "service"):
        if key in config:
            errors += _name_errors(key, config[key])
    for key in ("port", "target_port"):
        if key in config:
            errors += _port_errors(key, config[key])
    if "template" in config:
        errors += _template_errors(config["template"])
    if "router" in config:
        errors += _router_errors(config["router"])
    for key in ("url", "preview_url", "prometheus_url"):
        value = config.get(key)
        if value is not None and not (isinstance(value, str) and value.startswith("http")):
            errors.append((key, f"must be an http(s) URL, got {value!r}"))
    deadline = config.get("progress_deadline_seconds")
    if deadline is not None and (
        isinstance(deadline, bool) or not isinstance(deadline, int) or deadline < 1
    ):
        errors.append(
            ("progress_deadline_seconds", f"must be a positive integer, got {deadline!r}")
        )
    return errors


def _cluster_errors(cluster: Any) -> list[tuple[str, str]]:
    if not isinstance(cluster, dict):
        return [("cluster", 'must be an object: {"context": NAME} or {"in_cluster": true}')]
    if "cluster" in cluster or set(cluster) - {"context", "in_cluster"}:
        unknown = sorted(set(cluster) - {"context", "in_cluster"})
        return [(f"cluster.{key}", "is not a known key (context, in_cluster)") for key in unknown]
    context, in_cluster = cluster.get("context"), cluster.get("in_cluster")
    if in_cluster is not None and not isinstance(in_cluster, bool):
        return [("cluster.in_cluster", f"must be true or false, got {in_cluster!r}")]
    if context is not None and (not isinstance(context, str) or not context.strip()):
        return [("cluster.context", f"must be a kubeconfig context name, got {context!r}")]
    if bool(context) == bool(in_cluster):
        return [
            (
                "cluster",
                'name exactly one of "context" (a kubeconfig context) and "in_cluster": true',
            )
        ]
    return []


def _template_errors(template: Any) -> list[tuple[str, str]]:
    if not isinstance(template, dict) or len(template) != 1:
        return [
            (
                "template",
                'must be {"deployment": NAME} (adopt its pod template) or {"manifest": {...}}',
            )
        ]
    if "deployment" in template:
        return _name_errors("template.deployment", template["deployment"])
    manifest = template.get("manifest")
    if "manifest" not in template:
        key = next(iter(template))
        return [(f"template.{key}", "is not a known key (deployment, manifest)")]
    if not isinstance(manifest, dict):
        return [("template.manifest", "must be a pod template object")]
    spec = manifest.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("containers"), list):
        return [("template.manifest.spec.containers", "must list the pod's containers")]
    errors = []
    for i, container in enumerate(spec["containers"]):
        if not isinstance(container, dict) or not container.get("name"):
            errors.append((f"template.manifest.spec.containers.{i}.name", "is required"))
    return errors


def _router_errors(router: Any) -> list[tuple[str, str]]:
    if not isinstance(router, dict):
        return [("router", "must be an object with a kind")]
    kind = router.get("kind")
    if kind not in ROUTERS:
        known = ", ".join(ROUTERS)
        return [("router.kind", f"must be one of {known}, got {kind!r}")]
    errors = []
    needed = ROUTERS[kind]
    for key in sorted(set(router) - {"kind", *needed, "path"}):
        errors.append((f"router.{key}", f"is not a known key for the {kind} router"))
    for key in needed:
        if key not in router:
            errors.append((f"router.{key}", f"is required for the {kind} router"))
        else:
            errors += _name_errors(f"router.{key}", router[key])
    path = router.get("path")
    if path is not None and (not isinstance(path, str) or not path.startswith("/")):
        errors.append(("router.path", f"must be a path starting with '/', got {path!r}"))
    return errors


def settings_options() -> dict[str, Any]:
    """The provider's own settings: which kubeconfig file holds the contexts, the timeout of
    every API call and the Prometheus the live charts read when a target names none
    (``KUBERNETES_KUBECONFIG``, ``KUBERNETES_TIMEOUT``, ``PROMETHEUS_URL``)."""
    from django.conf import settings  # read when a target is built, never at import

    return {
        "kubeconfig": getattr(settings, "KUBERNETES_KUBECONFIG", "") or None,
        "timeout": float(getattr(settings, "KUBERNETES_TIMEOUT", 5.0)),
        "prometheus_url": getattr(settings, "PROMETHEUS_URL", "") or "",
    }
