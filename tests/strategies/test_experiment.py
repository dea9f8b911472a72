"""The canary ``experiment`` step (Argo Rollouts' experiment: a fresh baseline and a fresh canary
side by side, with their analyses, then torn down), read from ours and from Argo's syntax, and
carried out by the engine against the simulated fleet of ``tests.strategies.fleet``, whose
experiment slots start, resize and go away as the reconcile loop makes them."""

from __future__ import annotations

import pytest

from integrations import registry
from strategies.engine import decide
from strategies.spec import SpecError, analysis_refs, describe_steps, normalise
from strategies.spec import required_capabilities as needs

from .fleet import NEVER, Fleet, run

FAST = {"interval": "100ms"}
BOTH = [
    {"name": "baseline", "spec_ref": "stable", "weight": 5},
    {"name": "canary", "spec_ref": "canary", "weight": 5},
]
COMPARE = {"name": "compare", "template": "error-rate", "args": {"max": "0.05"}}


def canary(*steps, **extra) -> dict:
    raw = {"kind": "canary", "steps": list(steps), "stable_replicas": 2, "health": FAST}
    return normalise({**raw, **extra})


def outcome(verdicts: dict[str, tuple[int, str]]):
    return lambda key, request: verdicts.get(key, (NEVER, "pass"))


def until(predicate):
    return lambda d: predicate(d) or d.outcome is not None or d.failure is not None


def errors_of(raw) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as caught:
        normalise(raw)
    return [(e.path, e.message) for e in caught.value.errors]


# --- reading it --------------------------------------------------------------------------------


def test_ours_is_read_with_its_defaults_and_worded_as_a_step():
    spec = canary(
        {"set_weight": 20},
        {"experiment": {"duration": "1m", "templates": BOTH, "analyses": [COMPARE]}},
    )
    step = spec["steps"][1]["experiment"]
    assert step["duration"] == 60.0
    assert step["templates"][0] == {
        "name": "baseline",
        "spec_ref": "stable",
        "replicas": 1,
        "weight": 5,
    }
    assert step["analyses"] == [
        {
            "name": "compare",
            "template": "error-rate",
            "args": {"max": "0.05"},
            "required_for_completion": False,
        }
    ]
    assert describe_steps(spec)[1] == (
        "experiment for 1m: baseline (1 instance of the old release, 5% of requests), canary "
        "(1 instance of the new release, 5% of requests); compare: analysis 'error-rate' "
        "(max=0.05) (fail: roll back); then torn down"
    )
    assert ("steps[1].experiment.analyses[0]", step["analyses"][0]) in list(analysis_refs(spec))


def test_it_needs_experiment_slots_which_the_local_fleet_has_and_lambda_does_not():
    spec = canary({"experiment": {"templates": BOTH}})
    assert needs(spec) == {"weights", "experiment_slots"}
    assert registry.missing_capabilities("local", needs(spec)) == []
    assert registry.missing_capabilities("aws-lambda", needs(spec)) == ["experiment_slots"]
    assert "extra slots for an experiment step" in registry.describe_missing(
        "aws-lambda", ["experiment_slots"]
    )


@pytest.mark.parametrize(
    "experiment, path, words",
    [
        ({}, "steps[0].experiment.templates", "must list the slots to run"),
        ({"templates": []}, "steps[0].experiment.templates", "must list the slots to run"),
        (
            {"templates": [{"name": "b", "spec_ref": "old"}]},
            "steps[0].experiment.templates[0].spec_ref",
            "must be 'stable' (the old release) or 'canary'",
        ),
        (
            {"templates": [{"spec_ref": "canary"}]},
            "steps[0].experiment.templates[0].name",
            "is required",
        ),
        (
            {"templates": [{"name": "Big_Name", "spec_ref": "canary"}]},
            "steps[0].experiment.templates[0].name",
            "lower-case letters",
        ),
        (
            {
                "templates": [
                    {"name": "a", "spec_ref": "canary"},
                    {"name": "a", "spec_ref": "stable"},
                ]
            },
            "steps[0].experiment.templates[1].name",
            "names a template twice",
        ),
        (
            {"templates": [{"name": "a", "spec_ref": "canary", "replicas": 0}]},
            "steps[0].experiment.templates[0].replicas",
            "",
        ),
        (
            {"templates": [{"name": "a", "spec_ref": "canary", "weight": 101}]},
            "steps[0].experiment.templates[0].weight",
            "between 0 and 100",
        ),
        (
            {"templates": BOTH, "duration": "soon"},
            "steps[0].experiment.duration",
            "",
        ),
        (
            {"templates": BOTH, "analyses": [{"template": "error-rate"}]},
            "steps[0].experiment.analyses[0].name",
            "is required",
        ),
        (
            {"templates": BOTH, "analyses": [{"name": "x"}]},
            "steps[0].experiment.analyses[0].template",
            "is required",
        ),
        (
            {"templates": BOTH, "analyses": [{**COMPARE, "required_for_completion": "yes"}]},
            "steps[0].experiment.analyses[0].required_for_completion",
            "true or false",
        ),
        (
            {"templates": BOTH, "colour": 1},
            "steps[0].experiment.colour",
            "unknown key",
        ),
    ],
)
def test_what_is_wrong_with_ours_is_named_at_its_path(experiment, path, words):
    raw = {"kind": "canary", "stable_replicas": 2, "steps": [{"experiment": experiment}]}
    errors = errors_of(raw)
    assert errors[0][0] == path, errors
    assert words in errors[0][1]


def test_the_experiment_may_not_take_more_than_the_old_release_still_has():
    raw = {
        "kind": "canary",
        "stable_replicas": 2,
        "steps": [
            {"set_weight": 90},
            {"experiment": {"templates": [{"name": "c", "spec_ref": "canary", "weight": 20}]}},
        ],
    }
    ((path, message),) = errors_of(raw)
    assert path == "steps[1].experiment.templates"
    assert "at most 10% in all" in message


ARGO = {
    "canary": {
        "steps": [
            {"setWeight": 20},
            {
                "experiment": {
                    "duration": "10m",
                    "templates": [
                        {"name": "baseline", "specRef": "stable", "replicas": 2, "weight": 5},
                        {
                            "name": "canary",
                            "specRef": "canary",
                            "selector": {"matchLabels": {"app": "x"}},
                            "metadata": {"labels": {"app": "x"}},
                        },
                    ],
                    "analyses": [
                        {
                            "name": "mann-whitney",
                            "templateName": "mann-whitney",
                            "requiredForCompletion": True,
                            "args": [
                                {
                                    "name": "baseline-hash",
                                    "value": "{{templates.baseline.podTemplateHash}}",
                                }
                            ],
                        }
                    ],
                }
            },
        ]
    },
    "replicas": 4,
}


def test_argos_experiment_step_is_translated_field_by_field():
    spec = normalise(ARGO)
    step = spec["steps"][1]["experiment"]
    assert step == {
        "duration": 600.0,
        "templates": [
            {"name": "baseline", "spec_ref": "stable", "replicas": 2, "weight": 5},
            {"name": "canary", "spec_ref": "canary", "replicas": 1, "weight": None},
        ],
        "analyses": [
            {
                "name": "mann-whitney",
                "template": "mann-whitney",
                "args": {"baseline-hash": "{{templates.baseline.podTemplateHash}}"},
                "required_for_completion": True,
            }
        ],
    }


@pytest.mark.parametrize(
    "change, path, words",
    [
        (
            lambda e: e["templates"][0].update(specRef="old"),
            "canary.steps[1].experiment.templates[0].specRef",
            "must be 'stable'",
        ),
        (
            lambda e: e["templates"][1].pop("specRef") if "specRef" in e["templates"][1] else None,
            "canary.steps[1].experiment.templates[1].specRef",
            "is required",
        ),
        (
            lambda e: e["templates"][0].update(colour="red"),
            "canary.steps[1].experiment.templates[0].colour",
            "use name, specRef, replicas, weight",
        ),
        (
            lambda e: e.update(dryRun=[{"metricName": "x"}]),
            "canary.steps[1].experiment.dryRun",
            "set dryRun on the AnalysisTemplate",
        ),
        (
            lambda e: e["analyses"][0].update(templateName="Not a name!"),
            "canary.steps[1].experiment.analyses[0].templateName",
            "must be an analysis template's name",
        ),
        (
            lambda e: e["analyses"][0]["args"][0].update(
                value="{{templates.other.podTemplateHash}}"
            ),
            "canary.steps[1].experiment.analyses[0].args[0].value",
            "names no template of this experiment",
        ),
        (
            lambda e: e["analyses"][0]["args"][0].update(valueFrom={"secretKeyRef": {}}),
            "canary.steps[1].experiment.analyses[0].args[0].valueFrom",
            "give the value",
        ),
        (
            lambda e: e.update(duration="forever"),
            "canary.steps[1].experiment.duration",
            "",
        ),
    ],
)
def test_what_is_wrong_with_argos_is_named_at_the_key_the_user_wrote(change, path, words):
    import copy

    raw = copy.deepcopy(ARGO)
    change(raw["canary"]["steps"][1]["experiment"])
    errors = errors_of(raw)
    assert errors[0][0] == path, errors
    assert words in errors[0][1]
    assert all("unknown key 'experiment'" not in m for _, m in errors)


# --- carrying it out ---------------------------------------------------------------------------


def test_it_starts_both_slots_routes_their_shares_once_available_measures_then_tears_down():
    spec = canary(
        {"set_weight": 20},
        {"experiment": {"duration": "30s", "templates": BOTH, "analyses": [COMPARE]}},
        {"set_weight": 50},
    )
    fleet = Fleet(stable=2, analysis_outcome=outcome({"experiment-1-compare": (2, "pass")}))
    first, progress, _ = run(
        fleet, spec, {}, mode="forward", limit=20, stop=until(lambda d: d.experiment)
    )
    assert first.experiment == {
        "1-baseline": {"release": "stable", "replicas": 1},
        "1-canary": {"release": "canary", "replicas": 1},
    }
    assert fleet.weights == {"stable": 80, "canary": 20}  # no share before they are available
    started, progress, _ = run(
        fleet, spec, progress, mode="forward", limit=20, stop=until(lambda d: d.start_analysis)
    )
    assert started.start_analysis == [
        {
            "key": "experiment-1-compare",
            "template": "error-rate",
            "args": {"max": "0.05"},
            "step_index": 1,
            "arms": {"baseline": "1-baseline", "canary": "1-canary"},
        }
    ]
    assert fleet.weights == {
        "stable": 70,
        "canary": 20,
        "experiment:1-baseline": 5,
        "experiment:1-canary": 5,
    }
    assert fleet.experiment["1-baseline"].version == "1.0"
    assert fleet.experiment["1-canary"].version == "2.0"
    # it holds its duration even once the analysis passed, keeping its slots
    held, progress, _ = run(
        fleet, spec, progress, mode="forward", limit=40, stop=until(lambda d: not d.experiment)
    )
    assert held.step_index >= 2 and fleet.experiment == {}
    assert held.route and not any(role.startswith("experiment:") for role in held.weights)
    assert fleet.now - 1_000.0 >= 30
    assert any("experiment done: its slots are torn down" in e["message"] for e in held.events)
    last, _, _ = run(fleet, spec, progress, mode="forward", limit=40)
    assert last.outcome == "done"


def test_a_failed_analysis_fails_the_rollout_and_its_rollback_keeps_no_experiment_slot():
    spec = canary(
        {"set_weight": 20},
        {"experiment": {"duration": "10m", "templates": BOTH, "analyses": [COMPARE]}},
    )
    fleet = Fleet(stable=2, analysis_outcome=outcome({"experiment-1-compare": (2, "fail")}))
    failed, progress, _ = run(fleet, spec, {}, mode="forward", limit=40)
    assert (
        failed.failure and "analysis 'error-rate' (experiment-1-compare) failed" in failed.failure
    )
    assert failed.experiment is None and fleet.experiment == {}  # torn down with the failure
    back, _, _ = run(fleet, spec, progress, mode="rollback", limit=20)
    assert back.outcome == "restored" and back.experiment is None
    assert fleet.weights == {"stable": 100, "canary": 0}


def test_without_a_duration_it_waits_for_a_person_keeping_its_slots_while_paused():
    spec = canary({"experiment": {"templates": BOTH}}, {"set_weight": 50})
    fleet = Fleet(stable=2)
    waiting, progress, _ = run(
        fleet, spec, {}, mode="forward", limit=20, stop=until(lambda d: d.waiting_for_promotion)
    )
    assert "the experiment runs until promoted" in waiting.message
    assert set(waiting.experiment) == {"0-baseline", "0-canary"}
    paused = decide(spec, progress, fleet.observe(), mode="paused")
    assert paused.experiment == waiting.experiment  # a pause tears nothing down
    promoted = decide(spec, progress, fleet.observe(), mode="forward", intent="promote")
    assert promoted.experiment is None
    assert promoted.step_index == 1


def test_a_required_analysis_holds_the_step_past_its_duration_until_it_passes():
    required = {**COMPARE, "required_for_completion": True}
    spec = canary({"experiment": {"duration": "1s", "templates": BOTH, "analyses": [required]}})
    fleet = Fleet(stable=2, analysis_outcome=outcome({"experiment-0-compare": (30, "pass")}))
    seen = []
    last, _, _ = run(
        fleet,
        spec,
        {},
        mode="forward",
        limit=80,
        check=lambda obs, d: seen.append(
            (obs.analysis.get("experiment-0-compare") or {}).get("decision")
        ),
        stop=until(lambda d: d.step_index == 1),
    )
    assert "pass" in seen and seen.index("pass") == len(seen) - 1  # left only once it passed
    assert last.experiment is None


def test_an_optional_analysis_still_measuring_when_the_duration_ends_is_stopped():
    spec = canary({"experiment": {"duration": "2s", "templates": BOTH, "analyses": [COMPARE]}})
    fleet = Fleet(stable=2, analysis_outcome=outcome({}))
    run(fleet, spec, {}, mode="forward", limit=80, stop=until(lambda d: d.step_index == 1))
    assert fleet.analysis_stops == ["experiment-0-compare"]


def test_experiment_slots_that_never_get_ready_fail_at_the_progress_deadline():
    spec = canary({"experiment": {"templates": BOTH}}, progress_deadline="5s")
    fleet = Fleet(stable=2)
    fleet.experiment_failing = True
    failed, _, _ = run(fleet, spec, {}, mode="forward", limit=200)
    assert failed.failure and "1/2 instances of the experiment available" in failed.failure
    assert fleet.experiment == {}


def test_on_a_first_deployment_an_experiment_with_a_baseline_is_skipped():
    spec = canary({"experiment": {"templates": BOTH}})
    fleet = Fleet(stable=0, stable_version=None)
    last, _, _ = run(fleet, spec, {}, mode="forward", limit=40)
    assert last.outcome == "done"
    assert fleet.experiment == {}
