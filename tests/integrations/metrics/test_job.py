"""The job metric provider runs real processes (the local fleet's way of running Argo's ``job``
metrics): exit status as the observation, placeholders that stay one word, the arm in the
environment, a timeout that kills, and targets that cannot run jobs refusing them."""

from __future__ import annotations

import sys

import pytest

from integrations.base import Arm, IntegrationError, MetricQuery
from integrations.metrics import build_metrics
from integrations.metrics.job import JobMetrics, words

PY = sys.executable


def query(command: str, **values) -> MetricQuery:
    return MetricQuery(
        command,
        baseline=Arm("blue", "1.0"),
        canary=Arm("green", "2.0"),
        target="api.dev",
        values={"target": "api.dev", **values},
    )


def canary_values(source, command: str, **values) -> list[float]:
    got = source.fetch(query(command, **values), {}, 0.0, 1.0)
    assert got["baseline"] == {"values": []}  # a job measures the new release only
    return got["canary"]["values"]


def test_exit_status_zero_is_success_anything_else_failure():
    source = build_metrics("job", runner="local")
    assert canary_values(source, "sh -c 'exit 0'") == [1.0]
    assert canary_values(source, "sh -c 'exit 3'") == [0.0]


def test_the_arm_is_in_the_environment_and_placeholders_stay_one_word(tmp_path):
    out = tmp_path / "seen"
    script = (
        "import os, sys; open(sys.argv[1], 'w').write('|'.join([sys.argv[2], "
        "os.environ['SWITCHYARD_SLOT'], os.environ['SWITCHYARD_VERSION'], "
        "os.environ['SWITCHYARD_TARGET'], str(len(sys.argv))]))"
    )
    command = f'{PY} -c "{script}" {out} {{{{args.who}}}}'
    values = canary_values(JobMetrics(), command, **{"args.who": "a b; rm -rf /"})

    assert values == [1.0]
    assert out.read_text() == "a b; rm -rf /|green|2.0|api.dev|3"


def test_a_job_past_its_timeout_is_killed_and_fails():
    source = JobMetrics(timeout=0.5)
    assert canary_values(source, f"{PY} -c 'import time; time.sleep(5)'") == [0.0]


def test_the_metrics_env_is_in_the_environment(tmp_path):
    out = tmp_path / "seen"
    command = f"{PY} -c \"import os, sys; open(sys.argv[1], 'w').write(os.environ['MODE'])\" {out}"
    assert canary_values(JobMetrics(env={"MODE": "smoke"}), command) == [1.0]
    assert out.read_text() == "smoke"


def test_what_cannot_run_is_a_permanent_error():
    with pytest.raises(IntegrationError) as caught:
        JobMetrics().fetch(query("no-such-command-here --x"), {}, 0.0, 1.0)
    assert caught.value.permanent and "not found" in caught.value.message
    with pytest.raises(IntegrationError) as caught:
        build_metrics("job", runner="aws-ecs")
    assert caught.value.permanent and "cannot run job metrics" in caught.value.message
    with pytest.raises(IntegrationError) as caught:  # a Job needs an image
        build_metrics("job", runner="kubernetes")
    assert caught.value.permanent and "give the metric an 'image'" in caught.value.message
    with pytest.raises(IntegrationError):
        words("sh -c 'unterminated", {})
    with pytest.raises(IntegrationError) as caught:  # an image's entrypoint: Kubernetes only
        JobMetrics(image="example/endtest:0.2.1").fetch(query(""), {}, 0.0, 1.0)
    assert caught.value.permanent and "Kubernetes target" in caught.value.message
    secret = {"secret": {"name": "s", "key": "k"}}
    with pytest.raises(IntegrationError) as caught:  # a Kubernetes Secret: Kubernetes only
        JobMetrics(env={"TOKEN": secret}).fetch(query("true"), {}, 0.0, 1.0)
    assert caught.value.permanent and "Kubernetes Secret" in caught.value.message
