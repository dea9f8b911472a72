"""The official ``kubernetes`` client, one per cluster and process, and its errors in our terms.

``Cluster(cluster_config, kubeconfig=..., timeout=...)`` builds (once per process) an
``ApiClient`` from a kubeconfig context or from the pod's service account, and ``call`` runs one
API method with the explicit ``_request_timeout`` and no retries inside the client (the reconcile
loop retries transient errors itself, on the next tick). Every answer is read as plain JSON
(``_preload_content=False``): the provider works on dicts, the way the objects are written.

Errors become ``IntegrationError`` with a message a person can act on: 401/403 (credentials or
RBAC: the verb and resource the service account lacks), 404 (namespace or object missing) and
400/422 (the invalid field) are permanent; 409 conflicts (another writer, or a stale worker
fenced by ``resourceVersion``), 429, 5xx, timeouts and refused connections are transient.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from integrations.base import IntegrationError

_clients: dict[tuple, k8s.ApiClient] = {}
_lock = threading.Lock()


def _api_client(cluster: dict[str, Any], kubeconfig: str | None) -> k8s.ApiClient:
    context = cluster.get("context")
    key = (os.getpid(), kubeconfig, context, bool(cluster.get("in_cluster")))
    with _lock:
        api = _clients.get(key)
        if api is not None:
            return api
        configuration = k8s.Configuration()
        try:
            if cluster.get("in_cluster"):
                k8s_config.load_incluster_config(client_configuration=configuration)
            else:
                k8s_config.load_kube_config(
                    config_file=kubeconfig, context=context, client_configuration=configuration
                )
        except (ConfigException, OSError) as exc:
            where = (
                "the pod's service account"
                if cluster.get("in_cluster")
                else (f"context {context!r} of kubeconfig {kubeconfig or '$KUBECONFIG'}")
            )
            raise IntegrationError(
                f"cannot load the cluster credentials from {where}: {exc}", permanent=True
            ) from exc
        configuration.retries = False  # the reconcile loop retries, on its next tick
        api = _clients[key] = k8s.ApiClient(configuration)
        return api


class Cluster:
    """The API groups of one cluster, as the provider uses them."""

    def __init__(self, cluster: dict[str, Any], *, kubeconfig: str | None, timeout: float):
        self.name = "in-cluster" if cluster.get("in_cluster") else str(cluster.get("context"))
        self.identity = (os.getpid(), kubeconfig, self.name)  # for per-process caches
        self.timeout = (min(2.0, timeout), timeout)  # (connect, read) seconds
        api = _api_client(cluster, kubeconfig)
        self.apps = k8s.AppsV1Api(api)
        self.core = k8s.CoreV1Api(api)
        self.networking = k8s.NetworkingV1Api(api)
        self.batch = k8s.BatchV1Api(api)  # analysis jobs (integrations.kubernetes.jobs)
        self.custom = k8s.CustomObjectsApi(api)
        self.calls = 0  # API calls made through this object (the bench counts them per tick)

    def call(self, what: str, method, *args, missing_ok: bool = False, **kwargs) -> Any:
        """``method(*args, **kwargs)`` as JSON; ``what`` says in words what it does ("read
        Deployment shop/api-blue"). With ``missing_ok`` a 404 answers None."""
        self.calls += 1
        try:
            response = method(
                *args, _request_timeout=self.timeout, _preload_content=False, **kwargs
            )
            data = response.data
        except ApiException as exc:
            if exc.status == 404 and missing_ok:
                return None
            raise api_error(self.name, what, exc) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise IntegrationError(
                f"cluster {self.name}: could not {what}: the API server did not answer within "
                f"{self.timeout[1]:g}s or refused the connection ({type(exc).__name__})",
                permanent=False,
            ) from exc
        return json.loads(data) if data else {}


def _status_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        return (exc.body or exc.reason or "").strip()[:300]
    if not isinstance(body, dict):
        return str(body)[:300]
    message = body.get("message") or exc.reason or ""
    causes = (body.get("details") or {}).get("causes") or []
    fields = [f"{c.get('field')}: {c.get('message')}" for c in causes if c.get("field")]
    return message + (f" ({'; '.join(fields)})" if fields and not message else "")


def api_error(cluster: str, what: str, exc: ApiException) -> IntegrationError:
    """An ``ApiException`` as an ``IntegrationError`` a person can act on."""
    status, detail = exc.status or 0, _status_message(exc)
    prefix = f"cluster {cluster}: could not {what}"
    if status == 401:
        return IntegrationError(
            f"{prefix}: the API server refused the credentials (401): refresh the kubeconfig "
            f"token or the service account: {detail}",
            permanent=True,
        )
    if status == 403:
        return IntegrationError(
            f"{prefix}: forbidden (403): the service account lacks this permission; grant it "
            f"in its Role (see docs/kubernetes-rbac.yaml): {detail}",
            permanent=True,
        )
    if status == 404:
        return IntegrationError(f"{prefix}: not found (404): {detail}", permanent=True)
    if status in (400, 422):
        return IntegrationError(f"{prefix}: invalid ({status}): {detail}", permanent=True)
    if status == 409:
        return IntegrationError(
            f"{prefix}: conflict (409), someone else changed it meanwhile; the next tick "
            f"reads it again: {detail}",
            permanent=False,
        )
    return IntegrationError(
        f"{prefix}: HTTP {status}: {detail}", permanent=status < 500 and status != 429
    )
