"""The fake API server's controller (fake_api.py here): what the Deployment controller
and the kubelet would do, reduced to what the provider observes. Run before every request.

A Deployment gets pods of its current template (older ones are deleted, extra ones too), which
turn Ready ``cluster.ready_after`` seconds after they start; an image containing ``crashloop``
crash-loops (``CrashLoopBackOff``, restarts counting up), one containing ``missing`` cannot be
pulled (``ImagePullBackOff``); a Deployment whose pods are not all ready within its
``progressDeadlineSeconds`` says ``ProgressDeadlineExceeded``. Pods get ``podIP`` 127.0.0.1.

A Job (``reconcile_job``) gets the status the Job controller writes, by a rule on its container's
command (nothing runs): see ``fake_api``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid

from tests.integrations.kubernetes.fake_api import stamp


def reconcile_deployment(cluster, ns: str, name: str, dep: dict, now: float) -> None:
    spec = dep["spec"]
    template = spec["template"]
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
    pods = {
        k: p
        for k, p in cluster.objects.items()
        if k[1] == "pods" and k[2] == ns and p["x-owner"] == name
    }
    for key, pod in list(pods.items()):
        if pod["metadata"]["labels"].get("pod-template-hash") != digest:
            del cluster.objects[key]
            del pods[key]
    current = sorted(pods.items(), key=lambda kv: kv[1]["x-started"])
    want = int(spec.get("replicas") or 0)
    for key, _ in current[want:]:
        del cluster.objects[key]
    for _ in range(want - len(current)):
        pod_name = f"{name}-{digest}-{next(cluster._pod_ids):05d}"
        labels = {**(template["metadata"].get("labels") or {}), "pod-template-hash": digest}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": ns,
                "labels": labels,
                "annotations": dict(template["metadata"].get("annotations") or {}),
                "uid": str(uuid.uuid4()),
                "creationTimestamp": stamp(now),
                "resourceVersion": str(next(cluster._rv)),
            },
            "spec": copy.deepcopy(template["spec"]),
            "x-owner": name,
            "x-started": now,
        }
        cluster.objects[("", "pods", ns, pod_name)] = pod
    ready = 0
    for key, pod in cluster.objects.items():
        if key[1] == "pods" and key[2] == ns and pod["x-owner"] == name:
            ready += pod_status(cluster, pod, now)
    updated = dep.get("x-fake", {}).get("updated", now)
    deadline = int(spec.get("progressDeadlineSeconds") or 600)
    progressing = {
        "type": "Progressing",
        "status": "True",
        "reason": "NewReplicaSetAvailable" if ready >= want else "ReplicaSetUpdated",
    }
    if ready < want and now - updated > deadline:
        progressing = {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": f'ReplicaSet "{name}-{digest}" has timed out progressing.',
        }
    dep["status"] = {
        "observedGeneration": dep["metadata"]["generation"],
        "replicas": want,
        "updatedReplicas": want,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": max(0, want - ready),
        "conditions": [
            {"type": "Available", "status": "True" if ready >= want else "False"},
            progressing,
        ],
    }


def pod_status(cluster, pod: dict, now: float) -> int:
    image = pod["spec"]["containers"][0].get("image", "")
    started = pod["x-started"]
    name = pod["spec"]["containers"][0]["name"]
    status = {"phase": "Running", "podIP": "127.0.0.1", "startTime": stamp(started)}
    ready_at = started + cluster.ready_after
    if "crashloop" in image or "missing" in image:
        reason = "CrashLoopBackOff" if "crashloop" in image else "ImagePullBackOff"
        restarts = int((now - started) / max(cluster.ready_after, 0.01)) if "crash" in image else 0
        status["phase"] = "Running" if "crashloop" in image else "Pending"
        status["containerStatuses"] = [
            {
                "name": name,
                "ready": False,
                "restartCount": restarts,
                "image": image,
                "state": {"waiting": {"reason": reason, "message": f"back-off {image}"}},
            }
        ]
        status["conditions"] = [
            {"type": "Ready", "status": "False", "lastTransitionTime": stamp(started)}
        ]
        pod["status"] = status
        return 0
    ok = now >= ready_at
    status["containerStatuses"] = [
        {
            "name": name,
            "ready": ok,
            "restartCount": 0,
            "image": image,
            "state": {"running": {"startedAt": stamp(started)}},
        }
    ]
    status["conditions"] = [
        {
            "type": "Ready",
            "status": "True" if ok else "False",
            "lastTransitionTime": stamp(ready_at if ok else started),
        }
    ]
    pod["status"] = status
    return int(ok)


EXIT = re.compile(r"\bexit\s+(\d+)")


def _job_condition(kind: str, reason: str, now: float) -> dict:
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "lastProbeTime": stamp(now),
        "lastTransitionTime": stamp(now),
    }


def reconcile_job(cluster, job: dict, now: float) -> None:
    status = job["status"]
    if any(c["status"] == "True" for c in status.get("conditions") or []):
        return  # finished
    created = job["x-fake"]["created"]
    spec = job["spec"]
    status.setdefault("startTime", stamp(created))
    status["active"] = 1
    deadline = spec.get("activeDeadlineSeconds")
    (container,) = spec["template"]["spec"]["containers"]
    command = " ".join([*(container.get("command") or []), *(container.get("args") or [])])
    if deadline is not None and now - created >= deadline:
        status.update(active=0, failed=status.get("failed", 0) + 1)
        status["conditions"] = [_job_condition("Failed", "DeadlineExceeded", now)]
        return
    if "sleep" in command or now - created < cluster.ready_after:
        return  # still running
    found = EXIT.search(command)
    code = int(found.group(1)) if found else 0
    status["active"] = 0
    if code == 0:
        status.update(succeeded=1, completionTime=stamp(now))
        status["conditions"] = [_job_condition("Complete", "", now)]
        return
    status["failed"] = int(spec.get("backoffLimit", 6)) + 1  # every retry failed the same way
    status["conditions"] = [_job_condition("Failed", "BackoffLimitExceeded", now)]
