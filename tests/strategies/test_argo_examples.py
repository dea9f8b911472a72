"""Every Argo Rollouts example document (``argo_examples/``, one file per example of the
argo-rollouts repository) pasted as it is: a Rollout is accepted and plans the same ladder as
Argo, or is refused at the key it uses that Switchyard does not support, saying what to use
instead (never "unknown"); the same for each AnalysisTemplate."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from integrations import registry
from strategies.analysis import argo_template
from strategies.spec import SpecError, describe_steps, normalise, required_capabilities

FOLDER = Path(__file__).parent / "argo_examples"
KINDS = ("Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate")
ADVICE = ("use ", "remove it", "give ", "indent it", "set ", "must be", "rename ")


def documents() -> dict[str, dict]:
    out = {}
    for path in sorted(FOLDER.glob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if isinstance(doc, dict) and doc.get("kind") in KINDS:
                out[f"{path.stem}#{index}"] = doc
    return out


DOCUMENTS = documents()

EXPECTED = yaml.safe_load((FOLDER / "expected.yaml").read_text())
PLANS = {name: (plan["kind"], plan["steps"]) for name, plan in EXPECTED["plans"].items()}
REFUSED = EXPECTED["refused"]


def read(doc: dict) -> dict:
    if doc["kind"] == "Rollout":
        return normalise(doc)
    return argo_template.normalise(doc)


def test_every_document_is_expected_either_to_plan_or_to_be_refused():
    assert sorted(DOCUMENTS) == sorted([*PLANS, *REFUSED])
    assert len(DOCUMENTS) == 38
    # 14 before Argo's syntax was read as it is written, 23 before the job provider, 29 before
    # experiment steps, 34 before a job could run its image's entrypoint
    assert len(PLANS) == 35


@pytest.mark.parametrize("name", sorted(PLANS))
def test_it_accepts_the_example_and_plans_argos_ladder(name):
    kind, ladder = PLANS[name]
    spec = read(DOCUMENTS[name])
    if kind == "template":
        assert spec["metrics"]
        return
    assert spec["kind"] == kind
    assert describe_steps(spec) == ladder


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_it_refuses_the_example_at_the_unsupported_key_saying_what_to_do(name):
    with pytest.raises(SpecError) as caught:
        read(DOCUMENTS[name])
    errors = caught.value.errors
    assert errors[0].path == REFUSED[name]
    for error in errors:
        assert "unknown" not in error.message, error
        assert any(word in error.message for word in ADVICE), error


def test_the_mirror_route_example_needs_mirroring_which_the_local_fleet_has():
    spec = read(DOCUMENTS["istio-mirror#0"])
    assert required_capabilities(spec) == {"weights", "mirroring"}
    assert registry.missing_capabilities("local", required_capabilities(spec)) == []


def test_the_success_rate_idiom_of_the_app_mesh_example_is_read_as_argo_means_it():
    from strategies.analysis import expr

    metric = read(DOCUMENTS["appmesh-canary-rollout#0"])["metrics"][0]
    assert metric["success_condition"] == "result[0] >= 0.99"
    assert metric["failure_limit"] == 3 and metric["interval"] == 300.0
    assert expr.evaluate(metric["success_condition"], expr.variables(0.995, None))
    assert not expr.evaluate(metric["success_condition"], expr.variables(0.98, None))
