"""Job metrics on a Kubernetes target: each measurement is a batch/v1 Job in the target's
namespace, created, read and deleted by the official ``kubernetes`` client over real HTTP against
the loopback fake of the API server (fake_api.py here: no kube-apiserver can run on these
machines; its Job controller decides a Job's outcome by a rule on the command, see there).

The runner alone (pass, fail, a Job that outlives its timeout is deleted with
``propagationPolicy: Background``, API errors in our terms), then a pasted Argo job
AnalysisTemplate run for a deployment through the analysis code path (``runs.run_analysis``)."""

from __future__ import annotations

import kubernetes_validate
import pytest

from integrations.base import Arm, IntegrationError, MetricQuery
from integrations.metrics import build_metrics
from releases.analysis import runs, templates
from releases.models import AnalysisRun
from strategies.analysis import argo_template
from tests import factories
from tests.integrations.kubernetes.conftest import target_config

JOBS = "batch", "jobs"


@pytest.fixture
def k8s(cluster, kubeconfig_path, settings):
    settings.KUBERNETES_KUBECONFIG = kubeconfig_path
    return cluster


def source(**options):
    return build_metrics(
        "job",
        runner="kubernetes",
        cluster=target_config(),
        image="registry.example.com/smoke:1",
        poll=0.02,
        **options,
    )


def measure(metrics, command: str) -> float:
    query = MetricQuery(
        query=command,
        baseline=Arm("blue", "1.0"),
        canary=Arm("green", "2.0"),
        target="api.dev",
        values={"target": "api.dev", "args.path": "/health"},
    )
    result = metrics.fetch(query, metrics.begin(query), 0, 1)
    assert result["baseline"] == {"values": []}
    (value,) = result["canary"]["values"]
    return value


def created(cluster) -> list[dict]:
    return [
        body for _, method, path, body in cluster.writes if (method, path[-5:]) == ("POST", "/jobs")
    ]


def test_a_job_that_succeeds_passes_and_is_deleted(k8s):
    metrics = source(
        env={"MODE": "smoke", "CHECK": "{{args.path}}"}, labels={"switchyard.dev/deployment": "7"}
    )

    assert measure(metrics, "curl -fsS http://api-{{slot}}.shop{{args.path}}") == 1.0

    (job,) = created(k8s)
    assert job["metadata"]["namespace"] == "shop"
    assert job["metadata"]["labels"]["switchyard.dev/deployment"] == "7"
    assert job["metadata"]["labels"]["switchyard.dev/target"] == "api.dev"
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] == 60
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/smoke:1"
    assert container["command"] == ["curl", "-fsS", "http://api-green.shop/health"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODE"] == "smoke" and env["SWITCHYARD_SLOT"] == "green"
    assert env["CHECK"] == "/health"  # placeholders in env values are filled in too
    assert k8s.list(*JOBS) == []
    assert k8s.deletions == [("jobs", job["metadata"]["name"], "Background")]
    calls = [(m, p.rpartition("/jobs")[2]) for m, p, _ in k8s.calls() if "/jobs" in p]
    name = job["metadata"]["name"]
    assert calls[0] == ("POST", "") and calls[-1] == ("DELETE", f"/{name}")
    assert set(calls[1:-1]) == {("GET", f"/{name}")}
    kubernetes_validate.validate(job, "1.37.0", strict=True)


def test_a_job_with_only_an_image_runs_its_entrypoint_reading_env_from_a_secret(k8s):
    """Argo's analysis-endtest example: no command (the image's entrypoint runs) and credentials
    from a Secret, which the Job reads itself: the manifest holds the reference, not a value."""
    metrics = source(env={"APP_ID": {"secret": {"name": "endtest-credentials", "key": "APP_ID"}}})

    assert measure(metrics, "") == 1.0

    (job,) = created(k8s)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert "command" not in container
    (app_id,) = [e for e in container["env"] if e["name"] == "APP_ID"]
    assert app_id == {
        "name": "APP_ID",
        "valueFrom": {"secretKeyRef": {"name": "endtest-credentials", "key": "APP_ID"}},
    }
    assert k8s.list(*JOBS) == []
    kubernetes_validate.validate(job, "1.37.0", strict=True)


def test_a_job_that_fails_fails(k8s):
    metrics = source(backoff_limit=2)
    assert measure(metrics, "sh -c 'exit 3'") == 0.0
    (job,) = created(k8s)
    assert job["spec"]["backoffLimit"] == 2
    assert k8s.list(*JOBS) == []


def test_a_job_still_running_at_its_timeout_is_deleted_and_fails(k8s):
    metrics = source(timeout=0.3)
    assert measure(metrics, "sleep 3600") == 0.0
    (job,) = created(k8s)
    assert job["spec"]["activeDeadlineSeconds"] == 1  # whole seconds, at least 1
    assert k8s.list(*JOBS) == []
    assert k8s.deletions == [("jobs", job["metadata"]["name"], "Background")]


def test_api_errors_are_integration_errors(k8s):
    k8s.forbid("create", "jobs")
    with pytest.raises(IntegrationError) as caught:
        measure(source(), "true")
    assert caught.value.permanent and "403" in caught.value.message
    assert "create Job shop/api-job-" in caught.value.message

    with pytest.raises(IntegrationError) as caught:
        build_metrics("job", runner="kubernetes", cluster=target_config())
    assert caught.value.permanent and "image" in caught.value.message


def argo_job_template(args: list[str], image="alpine:3.8") -> dict:
    container = {"name": "smoke", "image": image, "command": ["sh", "-c"], "args": args}
    job = {
        "spec": {
            "template": {"spec": {"containers": [container], "restartPolicy": "Never"}},
            "backoffLimit": 1,
            "activeDeadlineSeconds": 30,
        }
    }
    return argo_template.normalise(
        {
            "kind": "AnalysisTemplate",
            "metadata": {"name": "smoke"},
            "spec": {
                "metrics": [
                    {
                        "name": "smoke",
                        "interval": "200ms",
                        "count": 2,
                        "maxFailures": 0,
                        "provider": {"job": job},
                    }
                ]
            },
        }
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "decision"), [(["exit 0"], "pass"), (["exit 1"], "fail")])
def test_an_argo_job_template_runs_as_jobs_for_a_kubernetes_deployment(k8s, args, decision):
    target = factories.make_target(
        factories.make_service("api"),
        factories.make_environment("dev"),
        provider="kubernetes",
        config=target_config(),
    )
    templates.save_template("smoke", argo_job_template(args))
    deployment = factories.make_deployment(target, "2.0")

    verdict = runs.run_analysis(deployment, "smoke", key="step-1", wait=True, timeout=20)

    assert verdict.decision == decision, verdict.reason
    run = AnalysisRun.objects.get(deployment=deployment)
    jobs = created(k8s)
    assert len(jobs) == (2 if decision == "pass" else 1)
    for job in jobs:
        labels = job["metadata"]["labels"]
        assert labels["switchyard.dev/deployment"] == str(deployment.pk)
        assert labels["switchyard.dev/analysis-run"] == str(run.pk)
        assert labels["switchyard.dev/metric"] == "smoke"
        assert job["spec"]["backoffLimit"] == 1 and job["spec"]["activeDeadlineSeconds"] == 30
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["image"] == "alpine:3.8"
        assert container["command"] == ["sh", "-c", args[0]]
    assert k8s.list(*JOBS) == []


def test_a_transient_error_while_reading_is_read_again_one_at_creation_is_raised(k8s):
    k8s.conflict_next("get", "jobs", times=2)  # 409s: someone else's write, read again
    assert measure(source(), "true") == 1.0
    assert k8s.list(*JOBS) == []

    k8s.conflict_next("create", "jobs")
    with pytest.raises(IntegrationError) as caught:
        measure(source(), "true")
    assert not caught.value.permanent and "409" in caught.value.message
    assert k8s.calls()[-1][0] == "DELETE"  # in case the Job was made and only the answer lost


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "state"), [(["exit 0"], "succeeded"), (["exit 1"], "failed")])
def test_a_canary_step_on_kubernetes_is_judged_by_its_jobs_through_the_reconcile_loop(
    k8s, args, state
):
    """The reconcile loop (tick by tick in this process) runs the canary's analysis step, whose
    measurements are Jobs on the fake cluster: a failing Job rolls the HTTPRoute back."""
    from releases.models import State
    from tests.integrations.kubernetes.test_reconcile_kubernetes import (
        deploy,
        kube_target,
        live,
        weights_of,
    )
    from tests.ticks import tick_until

    target = kube_target()
    live(target)
    templates.save_template("smoke", argo_job_template(args))
    spec = {
        "kind": "canary",
        "steps": [{"set_weight": 50}, {"analysis": {"template": "smoke"}}, {"set_weight": 100}],
        "stable_replicas": 2,
    }
    d = deploy(target, "2.0.0", spec)
    d = tick_until(d, lambda d: not d.is_active, timeout=60, what="the rollout to finish")

    assert d.state == State(state), d.failure_reason
    stable = f"api-{d.stable_slot}" if state == "failed" else f"api-{d.canary_slot}"
    assert weights_of(k8s)[stable] == 100
    jobs = created(k8s)
    assert jobs and {j["metadata"]["labels"]["switchyard.dev/deployment"] for j in jobs} == {
        str(d.pk)
    }
    assert k8s.list(*JOBS) == []
    if state == "failed":
        assert "smoke" in d.failure_reason
