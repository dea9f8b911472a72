"""A job metric's measurement as a batch/v1 Job on the target's cluster (Argo Rollouts' ``job``
provider, the way the Argo controller runs it).

``run_job(cluster, spec, deadline=...)`` creates the Job in the target's namespace (labelled with
the target, the deployment, the analysis run and the metric; ``backoffLimit`` from the metric,
else 0; ``activeDeadlineSeconds`` from the metric's timeout), reads its status until it
succeeds (the observation 1) or fails (0), then deletes it. A Job still running when the timeout
is over is deleted (``propagationPolicy: Background``, so its pods go too) and counts as failed.
Every API call has the client's explicit timeout; a transient error while reading the status is
read again at the next poll until the timeout, a permanent one (RBAC, a missing namespace, an
invalid Job) is raised. ``ttlSecondsAfterFinished`` lets the cluster remove a finished Job even
when our delete could not reach it.

The measurement waits for the Job (called by the analysis outside any database transaction, like
every metric provider): keep jobs short.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from integrations.base import IntegrationError
from integrations.kubernetes.client import Cluster
from integrations.kubernetes.manifests import label_value

logger = logging.getLogger(__name__)

DEPLOYMENT = "switchyard.dev/deployment"
RUN = "switchyard.dev/analysis-run"
METRIC = "switchyard.dev/metric"
MANAGED_BY = "app.kubernetes.io/managed-by"
FINISHED_TTL = 600  # seconds the cluster keeps a finished Job our delete missed
POLL = 0.5  # seconds between status reads


@dataclass
class JobSpec:
    namespace: str
    name: str  # the target's name: Jobs are <name>-job-<random>
    image: str
    command: list[str]
    env: dict[str, Any] = field(default_factory=dict)  # values, or {"secret": {name, key}}
    labels: dict[str, str] = field(default_factory=dict)
    backoff_limit: int = 0
    timeout: float = 60.0


def _env_var(name: str, value: Any) -> dict[str, Any]:
    """A value, or ``{"secret": {"name", "key"}}``: the Job reads that Secret's key itself."""
    if isinstance(value, dict):
        ref = value["secret"]
        return {
            "name": name,
            "valueFrom": {"secretKeyRef": {"name": ref["name"], "key": ref["key"]}},
        }
    return {"name": name, "value": value}


def manifest(spec: JobSpec, job_name: str) -> dict[str, Any]:
    labels = {MANAGED_BY: "switchyard", **{k: label_value(v) for k, v in spec.labels.items()}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name, "namespace": spec.namespace, "labels": labels},
        "spec": {
            "backoffLimit": spec.backoff_limit,
            "activeDeadlineSeconds": max(1, math.ceil(spec.timeout)),
            "ttlSecondsAfterFinished": FINISHED_TTL,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "job",
                            "image": spec.image,
                            # no command: the image's entrypoint runs
                            **({"command": spec.command} if spec.command else {}),
                            "env": [_env_var(k, v) for k, v in spec.env.items()],
                        }
                    ],
                },
            },
        },
    }


def outcome(job: dict[str, Any]) -> bool | None:
    """True when the Job succeeded, False when it failed, None while it runs."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True":
            if condition.get("type") == "Complete":
                return True
            if condition.get("type") == "Failed":
                return False
    if status.get("succeeded"):
        return True
    return None


def run_job(cluster: Cluster, spec: JobSpec, *, poll: float = POLL) -> float:
    """Run ``spec`` as a Job; 1.0 if it succeeded, 0.0 if it failed or ran out of time."""
    job_name = f"{spec.name}-job-{uuid.uuid4().hex[:8]}"
    where = f"{spec.namespace}/{job_name}"
    deadline = time.monotonic() + spec.timeout
    try:
        cluster.call(
            f"create Job {where}",
            cluster.batch.create_namespaced_job,
            spec.namespace,
            manifest(spec, job_name),
        )
    except IntegrationError as exc:
        if not exc.permanent:  # the answer may be lost, not the Job: delete it if it is there
            _delete(cluster, spec.namespace, job_name)
        raise
    result = 0.0
    try:
        while True:
            try:
                job = cluster.call(
                    f"read Job {where}",
                    cluster.batch.read_namespaced_job,  # its status, with RBAC's jobs get
                    job_name,
                    spec.namespace,
                )
            except IntegrationError as exc:
                if exc.permanent:
                    raise
                logger.info("job %s: %s (read again)", where, exc.message)
                job = {}
            done = outcome(job)
            if done is not None:
                result = 1.0 if done else 0.0
                break
            left = deadline - time.monotonic()
            if left <= 0:
                logger.info("job %s: still running after %gs: deleted", where, spec.timeout)
                break
            time.sleep(min(poll, left))
    finally:
        _delete(cluster, spec.namespace, job_name)
    return result


def _delete(cluster: Cluster, namespace: str, job_name: str) -> None:
    try:
        cluster.call(
            f"delete Job {namespace}/{job_name}",
            cluster.batch.delete_namespaced_job,
            job_name,
            namespace,
            propagation_policy="Background",
            missing_ok=True,
        )
    except IntegrationError as exc:  # its ttlSecondsAfterFinished removes it later
        logger.warning("job %s/%s not deleted: %s", namespace, job_name, exc.message)
