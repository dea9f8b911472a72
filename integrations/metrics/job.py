"""A command as an analysis measurement (Argo Rollouts' ``job`` provider), run by the target's
provider: on the local fleet, a process on the fleet's host; a Kubernetes Job when that provider
can run one (not yet: such a target refuses the metric with a permanent error).

A metric ``{"provider": "job", "query": "curl -fsS http://127.0.0.1:8080/{{slot}}/health"}`` runs
the command at each measurement, for the canary arm: the command is split like a shell would
(``shlex``), then each word's ``{{slot}}``, ``{{version}}``, ``{{target}}``, ``{{args.NAME}}``
is filled in (a value never becomes more than one word, nor shell syntax: there is no shell
unless the command is ``sh -c ...``). The process also gets ``SWITCHYARD_TARGET``,
``SWITCHYARD_SLOT`` and ``SWITCHYARD_VERSION`` in its environment. Exit status 0 is the
observation 1 (success), anything else 0; a command that is not found is a permanent error. A
run longer than ``JOB_METRICS_TIMEOUT`` seconds (default 60) is killed and counts as a failure.
The measurement waits for the command: keep jobs short (a smoke test).
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
RUNS_ON = ("local",)  # the target providers that can run a job


def settings_options() -> dict[str, Any]:
    from django.conf import settings

    return {"timeout": float(getattr(settings, "JOB_METRICS_TIMEOUT", DEFAULT_TIMEOUT))}


def words(command: str, values: dict[str, Any]) -> list[str]:
    """The command's words with their placeholders filled in (one word stays one word)."""
    try:
        split = shlex.split(command)
    except ValueError as exc:
        raise IntegrationError(f"the job's command cannot be read: {exc}", permanent=True) from None
    if not split:
        raise IntegrationError("the job has no command", permanent=True)

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise IntegrationError(
                f"the job's command uses {{{{{name}}}}}, which has no value here", permanent=True
            )
        return str(values[name])

    return [PLACEHOLDER.sub(replace, word) for word in split]


class JobMetrics:
    def __init__(
        self, *, runner: str = "local", timeout: float = DEFAULT_TIMEOUT, **_: Any
    ) -> None:
        if runner not in RUNS_ON:
            raise IntegrationError(
                f"a {runner} target cannot run job metrics yet (only the local fleet runs them, "
                "as a process): use a prometheus or web metric",
                permanent=True,
            )
        self._timeout = timeout

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
        argv = words(query.query, values)
        env = {
            **os.environ,
            "SWITCHYARD_TARGET": str(values["target"]),
            "SWITCHYARD_SLOT": str(arm.slot),
            "SWITCHYARD_VERSION": str(arm.version or ""),
        }
        try:
            done = subprocess.run(  # noqa: S603 -- argv, no shell: written by an admin's template
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self._timeout,
                check=False,
            )
        except FileNotFoundError:
            message = f"the job's command {argv[0]!r} is not found"
            raise IntegrationError(message, permanent=True) from None
        except subprocess.TimeoutExpired:
            return {"baseline": {"values": []}, "canary": {"values": [0.0]}}  # killed: failed
        return {
            "baseline": {"values": []},
            "canary": {"values": [1.0 if done.returncode == 0 else 0.0]},
        }
