"""An Argo ``job`` AnalysisTemplate, pasted as it is, run for a deployment on a local-fleet target:
the container's command runs as a process; exit 0 passes, another status fails the analysis."""

from __future__ import annotations

import pytest

from releases.analysis import runs, templates
from strategies.analysis import argo_template
from tests import factories

pytestmark = pytest.mark.django_db


def job_template(args: list[str]) -> dict:
    # argo-rollouts examples/analysis-templates.yaml ("pass"), with a short interval
    return argo_template.normalise(
        {
            "kind": "AnalysisTemplate",
            "metadata": {"name": "pass"},
            "spec": {
                "metrics": [
                    {
                        "name": "pass",
                        "interval": "200ms",
                        "count": 2,
                        "maxFailures": 0,
                        "provider": {
                            "job": {
                                "spec": {
                                    "template": {
                                        "spec": {
                                            "containers": [
                                                {
                                                    "name": "sleep",
                                                    "image": "alpine:3.8",
                                                    "command": ["sh", "-c"],
                                                    "args": args,
                                                }
                                            ],
                                            "restartPolicy": "Never",
                                        }
                                    },
                                    "backoffLimit": 0,
                                }
                            }
                        },
                    }
                ]
            },
        }
    )


@pytest.mark.parametrize(("args", "decision"), [(["exit 0"], "pass"), (["exit 1"], "fail")])
def test_the_jobs_exit_status_decides(target, args, decision):
    assert target.provider == "local"
    templates.save_template("pass", job_template(args))
    deployment = factories.make_deployment(target, "2.0")

    verdict = runs.run_analysis(deployment, "pass", key="step-1", wait=True, timeout=10)

    assert verdict.decision == decision, verdict.reason
