"""A loopback fake of the Kubernetes API, for the tests of the kubernetes provider.

No kube-apiserver can run on these machines (no Docker for kind/k3d/minikube, no envtest
binaries), so the provider is driven by the official ``kubernetes`` client over real HTTP against
this server, which implements exactly the endpoints the provider uses, the way the API server
answers them:

- Deployments (apps/v1), Services and pods (v1), Ingresses (networking.k8s.io/v1), HTTPRoutes
  (gateway.networking.k8s.io/v1), Istio VirtualServices and DestinationRules
  (networking.istio.io/v1): get, list (``labelSelector``: ``k=v``, ``k!=v``, ``k``),
  create, replace (``metadata.resourceVersion`` checked: 409 Conflict when stale), delete;
- bearer-token authentication (401), RBAC refusals set with ``forbid(verb, resource)`` (403, the
  API server's message), missing namespaces and objects (404), invalid Deployments (422: no
  image, a selector that does not match the template, a changed selector);
- a small controller, run before every request: a Deployment gets pods of its current template
  (older ones are deleted), which turn Ready ``ready_after`` seconds after they start; an image
  containing ``crashloop`` crash-loops (``CrashLoopBackOff``), one containing ``missing`` cannot
  be pulled (``ImagePullBackOff``); a Deployment whose pods are not all ready within its
  ``progressDeadlineSeconds`` says ``ProgressDeadlineExceeded``. Pods get ``podIP`` 127.0.0.1.
- Jobs (batch/v1): create (422 without an image), read (and its ``/status``), delete (the
  ``propagationPolicy`` is written down in ``deletions``); the controller runs a Job's container
  ``ready_after`` seconds after its creation and gives the Job the status the Job controller
  would, by a rule on the command (no container really runs): the exit status is N of an
  ``exit N`` in the command (else 0), a command with ``sleep`` in it runs until its
  ``activeDeadlineSeconds`` (``Failed``, ``DeadlineExceeded``); a failed pod is retried up to
  ``backoffLimit`` times (then ``Failed``, ``BackoffLimitExceeded``), exit 0 is ``Complete``.

Every request is written down (``requests``: method, path, query) so tests can count calls, and
every write with its time and body (``writes``) so a benchmark can see when a routing landed.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>status))?)?$"
)
KINDS = {
    ("", "pods"): "Pod",
    ("", "services"): "Service",
    ("apps", "deployments"): "Deployment",
    ("batch", "jobs"): "Job",
    ("networking.k8s.io", "ingresses"): "Ingress",
    ("gateway.networking.k8s.io", "httproutes"): "HTTPRoute",
    ("networking.istio.io", "virtualservices"): "VirtualService",
    ("networking.istio.io", "destinationrules"): "DestinationRule",
}
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "DELETE": "delete", "PATCH": "patch"}
USER = "system:serviceaccount:switchyard:switchyard"


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def status_body(code: int, reason: str, message: str, **details) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, **details):
        super().__init__(message)
        self.code, self.body = code, status_body(code, reason, message, **details)


def matches(labels: dict, selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key.rstrip("=")) != value:
                return False
        elif term not in labels:
            return False
    return True


class FakeCluster:
    def __init__(self, *, namespaces=("shop",), ready_after=0.2, token="fake-token"):
        self.namespaces = set(namespaces)
        self.ready_after = ready_after
        self.token = token
        self.objects: dict[tuple[str, str, str, str], dict] = {}  # (group, plural, ns, name)
        self.forbidden: set[tuple[str, str]] = set()  # (verb, plural)
        self.conflicts: dict[tuple[str, str], int] = {}  # (verb, plural) -> 409s still to answer
        self.requests: list[tuple[str, str, str]] = []
        self.writes: list[tuple[float, str, str, dict | None]] = []  # (time, method, path, body)
        self.deletions: list[tuple[str, str, str | None]] = []  # (plural, name, propagationPolicy)
        self.lock = threading.RLock()
        self._rv = itertools.count(1)
        self._pod_ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # -- what tests use -----------------------------------------------------------------------

    def start(self) -> FakeCluster:
        handler = type("Handler", (_Handler,), {"cluster": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def forbid(self, verb: str, plural: str) -> None:
        self.forbidden.add((verb, plural))

    def conflict_next(self, verb: str, plural: str, times: int = 1) -> None:
        self.conflicts[(verb, plural)] = times

    def put(self, obj: dict) -> dict:
        """Store an object as if someone had applied it (what exists before the provider)."""
        group = obj["apiVersion"].rpartition("/")[0]
        plural = {v: k for k, v in KINDS.items()}[(obj["kind"])][1]
        with self.lock:
            return self._create(group, plural, obj["metadata"]["namespace"], copy.deepcopy(obj))

    def get(self, group: str, plural: str, name: str, ns: str = "shop") -> dict | None:
        with self.lock:
            self._reconcile()
            obj = self.objects.get((group, plural, ns, name))
            return copy.deepcopy(obj) if obj else None

    def list(self, group: str, plural: str, ns: str = "shop") -> list[dict]:
        with self.lock:
            self._reconcile()
            return [
                copy.deepcopy(o)
                for (g, p, n, _), o in sorted(self.objects.items())
                if (g, p, n) == (group, plural, ns)
            ]

    def calls(self, since: int = 0) -> list[tuple[str, str, str]]:
        return self.requests[since:]

    # -- the API ------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict, body: dict | None, auth: str):
        self.requests.append((method, path, "&".join(f"{k}={v[0]}" for k, v in query.items())))
        if method != "GET":
            self.writes.append((time.time(), method, path, copy.deepcopy(body)))
        if auth != f"Bearer {self.token}":
            raise ApiError(401, "Unauthorized", "Unauthorized")
        found = PATH.match(path)
        if not found:
            raise ApiError(
                404, "NotFound", f"the server could not find the requested resource {path}"
            )
        group, ns, plural, name = (
            found["group"] or "",
            found["ns"],
            found["plural"],
            found["name"],
        )
        if (group, plural) not in KINDS:
            raise ApiError(
                404, "NotFound", f"the server could not find the requested resource {path}"
            )
        verb = "list" if method == "GET" and name is None else VERBS[method]
        if (verb, plural) in self.forbidden:
            what = f"{plural}.{group}" if group else plural
            subject = f'{what} "{name}" is' if name else f"{what} is"
            raise ApiError(
                403,
                "Forbidden",
                f'{subject} forbidden: User "{USER}" cannot {verb} resource "{plural}" in API '
                f'group "{group}" in the namespace "{ns}"',
                name=name or "",
                group=group,
                kind=plural,
            )
        if ns not in self.namespaces:
            raise ApiError(
                404, "NotFound", f'namespaces "{ns}" not found', name=ns, kind="namespaces"
            )
        if self.conflicts.get((verb, plural)):
            self.conflicts[(verb, plural)] -= 1
            raise self._conflict(group, plural, name or "")
        with self.lock:
            self._reconcile()
            key = (group, plural, ns, name)
            if verb == "list":
                selector = query.get("labelSelector", [""])[0]
                items = [
                    copy.deepcopy(o)
                    for (g, p, n, _), o in sorted(self.objects.items())
                    if (g, p, n) == (group, plural, ns)
                    and matches(o["metadata"].get("labels") or {}, selector)
                ]
                kind = KINDS[(group, plural)] + "List"
                rv = str(self._last_rv())
                return 200, {"kind": kind, "metadata": {"resourceVersion": rv}, "items": items}
            if verb == "create":
                return 201, self._create(group, plural, ns, body or {})
            if key not in self.objects:
                raise self._not_found(group, plural, name)
            if verb == "get":
                return 200, copy.deepcopy(self.objects[key])
            if verb == "update":
                return 200, self._replace(key, body or {})
            if verb == "delete":
                del self.objects[key]
                policy = query.get("propagationPolicy", [None])[0]
                if policy is None and isinstance(body, dict):
                    policy = body.get("propagationPolicy")
                self.deletions.append((plural, name, policy))
                return 200, status_body(200, "", "") | {"status": "Success"}
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported by this fake")

    def _last_rv(self) -> int:
        return max(
            (int(o["metadata"]["resourceVersion"]) for o in self.objects.values()), default=0
        )

    def _not_found(self, group, plural, name):
        what = f"{plural}.{group}" if group else plural
        return ApiError(404, "NotFound", f'{what} "{name}" not found', name=name, kind=plural)

    def _conflict(self, group, plural, name):
        what = f"{plural}.{group}" if group else plural
        return ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {what} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again",
        )

    def _validate(self, plural: str, obj: dict, old: dict | None) -> None:
        if plural == "jobs":
            return self._validate_job(obj)
        if plural != "deployments":
            return
        causes = []
        spec = obj.get("spec") or {}
        template = spec.get("template") or {}
        for i, c in enumerate((template.get("spec") or {}).get("containers") or []):
            if not c.get("image"):
                causes.append(
                    {
                        "field": f"spec.template.spec.containers[{i}].image",
                        "message": "Required value",
                    }
                )
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            causes.append(
                {
                    "field": "spec.template.metadata.labels",
                    "message": "`selector` does not match template `labels`",
                }
            )
        if old is not None and (old["spec"].get("selector") != spec.get("selector")):
            causes.append({"field": "spec.selector", "message": "field is immutable"})
        if causes:
            name = obj["metadata"].get("name")
            text = ", ".join(f"{c['field']}: Invalid value: {c['message']}" for c in causes)
            raise ApiError(
                422,
                "Invalid",
                f'Deployment.apps "{name}" is invalid: {text}',
                name=name,
                kind="Deployment",
                causes=causes,
            )

    def _validate_job(self, obj: dict) -> None:
        pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        causes = [
            {"field": f"spec.template.spec.containers[{i}].image", "message": "Required value"}
            for i, c in enumerate(pod.get("containers") or [])
            if not c.get("image")
        ]
        if pod.get("restartPolicy") not in ("Never", "OnFailure"):
            causes.append(
                {"field": "spec.template.spec.restartPolicy", "message": "Unsupported value"}
            )
        if causes:
            name = obj["metadata"].get("name")
            text = ", ".join(f"{c['field']}: Invalid value: {c['message']}" for c in causes)
            raise ApiError(
                422,
                "Invalid",
                f'Job.batch "{name}" is invalid: {text}',
                name=name,
                kind="Job",
                causes=causes,
            )

    def _create(self, group, plural, ns, obj):
        name = obj.get("metadata", {}).get("name")
        key = (group, plural, ns, name)
        if key in self.objects:
            what = f"{plural}.{group}" if group else plural
            raise ApiError(409, "AlreadyExists", f'{what} "{name}" already exists')
        self._validate(plural, obj, None)
        meta = obj.setdefault("metadata", {})
        meta.update(
            namespace=ns,
            uid=str(uuid.uuid4()),
            creationTimestamp=stamp(time.time()),
            resourceVersion=str(next(self._rv)),
        )
        if plural == "deployments":
            meta["generation"] = 1
            obj["status"] = {}
            obj.setdefault("x-fake", {})["updated"] = time.time()
        if plural == "jobs":
            obj["status"] = {}
            obj["x-fake"] = {"created": time.time()}
        self.objects[key] = obj
        return copy.deepcopy(obj)

    def _replace(self, key, obj):
        old = self.objects[key]
        sent = (obj.get("metadata") or {}).get("resourceVersion")
        if sent and sent != old["metadata"]["resourceVersion"]:
            raise self._conflict(key[0], key[1], key[3])
        self._validate(key[1], obj, old)
        meta = obj.setdefault("metadata", {})
        for field in ("uid", "creationTimestamp", "namespace"):
            meta[field] = old["metadata"][field]
        meta["resourceVersion"] = str(next(self._rv))
        if key[1] == "deployments":
            changed = obj.get("spec") != old.get("spec")
            meta["generation"] = old["metadata"]["generation"] + (1 if changed else 0)
            obj["status"] = old.get("status", {})
            obj["x-fake"] = dict(old.get("x-fake", {}))
            if changed:
                obj["x-fake"]["updated"] = time.time()
        self.objects[key] = obj
        return {k: v for k, v in copy.deepcopy(obj).items() if k != "x-fake"}

    # -- the controller -----------------------------------------------------------------------

    def _reconcile(self) -> None:
        from tests.integrations.kubernetes.fake_controller import (
            reconcile_deployment,
            reconcile_job,
        )

        now = time.time()
        for (_group, plural, ns, name), obj in list(self.objects.items()):
            if plural == "deployments":
                reconcile_deployment(self, ns, name, obj, now)
            elif plural == "jobs":
                reconcile_job(self, obj, now)


class _Handler(BaseHTTPRequestHandler):
    cluster: FakeCluster
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        # as Go's net/http (the API server) does: without it, headers and body written apart
        # meet the client's delayed ACK and every call takes ~40 ms more
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self):
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        try:
            code, payload = self.cluster.handle(
                self.command,
                parts.path,
                parse_qs(parts.query),
                body,
                self.headers.get("Authorization", ""),
            )
        except ApiError as exc:
            code, payload = exc.code, exc.body
        payload = _public(payload)
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


def _public(payload):
    """Without the fake's own bookkeeping (keys starting with ``x-``)."""
    if isinstance(payload, dict):
        return {k: _public(v) for k, v in payload.items() if not k.startswith("x-")}
    if isinstance(payload, list):
        return [_public(v) for v in payload]
    return payload


def kubeconfig(path, clusters: dict[str, FakeCluster]) -> str:
    """Write a kubeconfig with one context per fake cluster (JSON is YAML); returns its path."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": c.url}} for n, c in clusters.items()],
        "users": [{"name": n, "user": {"token": c.token}} for n, c in clusters.items()],
        "contexts": [
            {"name": n, "context": {"cluster": n, "user": n, "namespace": "shop"}} for n in clusters
        ],
        "current-context": next(iter(clusters)),
    }
    with open(path, "w") as fh:
        json.dump(doc, fh)
    return str(path)
