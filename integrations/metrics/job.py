"""A command as an analysis measurement (Argo Rollouts' ``job`` provider), run by the target's
provider: on the local fleet, a process on the fleet's host; on a Kubernetes target, a batch/v1
Job of the metric's ``image`` in the target's namespace (``integrations.kubernetes.jobs``).

A metric ``{"provider": "job", "query": "curl -fsS http://127.0.0.1:8080/{{slot}}/health"}`` runs
the command at each measurement, for the canary arm: the command is split like a shell would
(``shlex``), then each word's ``{{slot}}``, ``{{version}}``, ``{{target}}``, ``{{args.NAME}}``
is filled in (a value never becomes more than one word, nor shell syntax: there is no shell
unless the command is ``sh -c ...``). The process (or the Job's container) also gets the
metric's ``env`` (its values' placeholders filled in the same way) and ``SWITCHYARD_TARGET``,
``SWITCHYARD_SLOT`` and ``SWITCHYARD_VERSION`` in its environment. Exit status 0 (a Job that
succeeded) is the observation 1 (success), anything else 0; a command that is not found is a
permanent error. A run longer than the metric's ``timeout`` (default ``JOB_METRICS_TIMEOUT``
seconds, 60) is killed (the Job deleted) and counts as a failure. The measurement waits for the
command: keep jobs short (a smoke test).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from typing import Any

from integrations.base import IntegrationError, MetricQuery

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
DEFAULT_TIMEOUT = 60.0
RUNS_ON = ("local", "kubernetes")  # the target providers that can run a job


def settings_options() -> dict[str, Any]:
    from django.conf import settings

    return {"timeout": float(getattr(settings, "JOB_METRICS_TIMEOUT", DEFAULT_TIMEOUT))}


def fill(text: str, values: dict[str, Any], what: str = "command") -> str:
    """``text`` with its placeholders filled in (a value is put in as it is, never re-split)."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise IntegrationError(
                f"the job's {what} uses {{{{{name}}}}}, which has no value here", permanent=True
            )
        return str(values[name])

    return PLACEHOLDER.sub(replace, text)


def words(command: str, values: dict[str, Any]) -> list[str]:
    """The command's words with their placeholders filled in (one word stays one word)."""
    try:
        split = shlex.split(command)
    except ValueError as exc:
        raise IntegrationError(f"the job's command cannot be read: {exc}", permanent=True) from None
    if not split:
        raise IntegrationError("the job has no command", permanent=True)
    return [fill(word, values) for word in split]


class JobMetrics:
    def __init__(
        self,
        *,
        runner: str = "local",
        timeout: float = DEFAULT_TIMEOUT,
        env: dict[str, str] | None = None,
        image: str | None = None,
        backoff_limit: int | None = None,
        cluster: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        poll: float | None = None,
        **_: Any,
    ) -> None:
        if runner not in RUNS_ON:
            raise IntegrationError(
                f"a {runner} target cannot run job metrics (the local fleet runs them as a "
                "process, Kubernetes as a Job): use a prometheus or web metric",
                permanent=True,
            )
        if runner == "kubernetes" and not image:
            raise IntegrationError(
                "a job metric on a Kubernetes target runs as a Job: give the metric an 'image' "
                "(Argo: the Job's container image)",
                permanent=True,
            )
        self._runner = runner
        self._timeout = float(timeout)
        self._env = dict(env or {})
        self._image = image
        self._backoff_limit = backoff_limit or 0
        self._cluster = cluster or {}  # a kubernetes target's config
        self._labels = dict(labels or {})
        self._poll = poll

    def begin(self, query: MetricQuery) -> dict[str, Any]:
        return {}

    def fetch(
        self, query: MetricQuery, cursor: dict[str, Any], start: float, end: float
    ) -> dict[str, dict[str, Any]]:
        arm = query.canary
        values = {
            **query.values,
            "target": query.values.get("target", query.target),
            "slot": arm.slot,
            "version": arm.version or "",
        }
        if not query.query.strip() and self._runner != "kubernetes":
            raise IntegrationError(
                "the job metric has only an image (its entrypoint): the local fleet runs a "
                "command as a process; give it a command, or run it on a Kubernetes target",
                permanent=True,
            )
        argv = words(query.query, values) if query.query.strip() else []  # [] : the entrypoint
        secrets = {n: v for n, v in self._env.items() if isinstance(v, dict)}
        if secrets and self._runner != "kubernetes":
            raise IntegrationError(
                f"the job's env {', '.join(sorted(secrets))} comes from a Kubernetes Secret, "
                "which only a Kubernetes target's Job can read: use a template argument with "
                "valueFrom.secretKeyRef (the secret store) on the local fleet",
                permanent=True,
            )
        env = {
            **{
                name: value if isinstance(value, dict) else fill(value, values, f"env {name}")
                for name, value in self._env.items()
            },
            "SWITCHYARD_TARGET": str(values["target"]),
            "SWITCHYARD_SLOT": str(arm.slot),
            "SWITCHYARD_VERSION": str(arm.version or ""),
        }
        if self._runner == "kubernetes":
            passed = self._run_job(argv, env, str(values["target"]))
        else:
            passed = self._run_process(argv, env)
        return {"baseline": {"values": []}, "canary": {"values": [1.0 if passed else 0.0]}}

    def _run_process(self, argv: list[str], env: dict[str, str]) -> bool:
        try:
            done = subprocess.run(  # noqa: S603 -- argv, no shell: written by an admin's template
                argv,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self._timeout,
                check=False,
            )
        except FileNotFoundError:
            message = f"the job's command {argv[0]!r} is not found"
            raise IntegrationError(message, permanent=True) from None
        except subprocess.TimeoutExpired:
            return False  # killed: failed
        return done.returncode == 0

    def _run_job(self, argv: list[str], env: dict[str, str], target: str) -> bool:
        from integrations.kubernetes.client import Cluster
        from integrations.kubernetes.config import settings_options
        from integrations.kubernetes.jobs import POLL, JobSpec, run_job
        from integrations.kubernetes.manifests import TARGET

        options = settings_options()
        cluster = Cluster(
            self._cluster.get("cluster") or {},
            kubeconfig=options["kubeconfig"],
            timeout=options["timeout"],
        )
        spec = JobSpec(
            namespace=self._cluster["namespace"],
            name=self._cluster["name"],
            image=str(self._image),
            command=argv,
            env=env,
            labels={TARGET: target, **self._labels},
            backoff_limit=self._backoff_limit,
            timeout=self._timeout,
        )
        return run_job(cluster, spec, poll=POLL if self._poll is None else self._poll) == 1.0
