"""A Flagger MetricTemplate, pasted as it is (POST /analysis-templates' reader), run as an
analysis for a deployment against a real Prometheus (the Debian package) scraping a real fleet
agent whose new release (2.0) fails half its requests: the Canary's thresholdRange decides."""

from __future__ import annotations

import pytest

from releases.analysis import runs, templates
from strategies.analysis import flagger_template
from tests import factories
from tests.integrations.metrics.test_prometheus import window  # noqa: F401 -- a fixture

pytestmark = pytest.mark.django_db

ERROR_RATIO = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "MetricTemplate",
    "metadata": {"name": "error-ratio", "namespace": "flagger"},
    "spec": {
        "provider": {"type": "prometheus"},  # no address: PROMETHEUS_URL
        "query": """
            sum(rate(switchyard_router_requests_total{
                target="{{ target }}", version="{{ version }}", code_class=~"5xx|error"
            }[{{ interval }}]))
            /
            sum(rate(switchyard_router_requests_total{
                target="{{ target }}", version="{{ version }}"}[{{ interval }}]))
        """,
    },
}


@pytest.fixture
def deployment(settings, prometheus, window):  # noqa: F811
    settings.PROMETHEUS_URL = prometheus
    templates.save_template("error-ratio", flagger_template.normalise(ERROR_RATIO))
    target = factories.make_target(
        factories.make_service("api"), factories.make_environment("analysis")
    )
    assert target.key == "api.analysis"  # the fleet's target (conftest.KEY)
    return factories.make_deployment(target, "2.0")


def run(deployment, **args):
    # what the Canary's translation passes (strategies.flagger), with a 0.2 s check interval
    given = {"namespace": "flagger", "metric-interval": "30s", **args}
    runs.start(deployment, "error-ratio", given, key="background", overrides={"interval": 0.2})
    return runs.run_analysis(deployment, "error-ratio", key="background", wait=True, timeout=3)


def test_a_value_above_the_ranges_max_fails_the_check(deployment):
    verdict = run(deployment, max="0.1")
    assert verdict.decision == "fail", verdict.reason
    assert "canary < -1e308 || canary > 0.1" in verdict.reason


def test_a_value_inside_the_range_passes(deployment):
    verdict = run(deployment, min="0.2", max="0.8")
    assert verdict.decision == "pass", verdict.reason
    assert verdict.metrics["error-ratio"]["measurements"] >= 2
