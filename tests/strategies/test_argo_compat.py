"""Argo Rollouts' syntax read as it is written: a whole Rollout manifest, a canary without steps
(Argo's rolling update), steps holding several fields, setHeaderRoute / setMirrorRoute, the
analysis reference's other spellings; every error at the path the user wrote, saying what to
do. (Templates, conditions and several templates: test_argo_analysis_compat.py.)"""

from __future__ import annotations

import pytest

from strategies.spec import SpecError, describe_steps, normalise, required_capabilities


def errors_of(raw) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as caught:
        normalise(raw)
    return [(e.path, e.message) for e in caught.value.errors]


def rollout(strategy: dict, **spec) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {},
            **spec,
            "strategy": strategy,
        },
    }


# --- a whole Rollout ---------------------------------------------------------------------------


def test_a_rollout_manifest_reads_its_strategy_replicas_min_ready_and_deadline():
    spec = normalise(
        rollout(
            {"canary": {"steps": [{"setWeight": 25}, {"pause": {}}]}},
            replicas=4,
            minReadySeconds=10,
            progressDeadlineSeconds=120,
            progressDeadlineAbort=True,
            rollbackWindow={"revisions": 3},
            revisionHistoryLimit=2,
        )
    )
    assert spec["kind"] == "canary" and spec["stable_replicas"] == 4
    assert spec["min_ready"] == 10.0 and spec["progress_deadline"] == 120.0
    assert spec["steps"] == [{"set_weight": 25}, {"pause": {}}]


def test_a_rollout_manifest_errors_name_the_manifest_paths():
    assert errors_of(
        rollout(
            {"canary": {"steps": [{"setWeight": 140}]}},
            replicas=0,
            minReadySeconds="soon",
            progressDeadlineAbort=False,
            paused=True,
        )
    ) == [
        (
            "spec.progressDeadlineAbort",
            "a missed progress deadline always fails the rollout and rolls back here (as true "
            "does); got false: remove it or set true",
        ),
        (
            "spec.paused",
            "starting paused is not supported: begin the steps with pause: {} to wait for a person",
        ),
        ("spec.strategy.canary.steps[0].setWeight", "must be between 0 and 100, got 140"),
        ("spec.replicas", "must be a whole number >= 1, got 0"),
        (
            "spec.minReadySeconds",
            "invalid duration 'soon': expected a number of seconds or a string like '500ms', "
            "'30s', '5m', '1h30m'",
        ),
    ]


def test_a_manifest_that_is_not_a_rollout_is_refused_saying_what_to_paste():
    ((path, message),) = errors_of({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}})
    assert path == "kind" and "paste the Rollout, or its spec.strategy" in message


def test_canary_and_blue_green_together_is_one_strategy_too_many():
    assert errors_of({"canary": {"steps": [{"setWeight": 5}]}, "blueGreen": {}}) == [
        ("blueGreen", "a rollout has one strategy: give 'canary' or 'blueGreen', not both")
    ]


def test_a_blue_green_rollout_reads_min_ready():
    spec = normalise(rollout({"blueGreen": {"activeService": "a"}}, replicas=2, minReadySeconds=5))
    assert spec["kind"] == "blue_green" and spec["replicas"] == 2 and spec["min_ready"] == 5.0


# --- a canary without steps is Argo's rolling update --------------------------------------------


def test_a_canary_without_steps_is_a_rolling_update_limited_by_surge_and_unavailable():
    spec = normalise(rollout({"canary": {"maxSurge": 1, "maxUnavailable": "20%"}}, replicas=5))
    assert spec["kind"] == "rolling"
    assert (spec["replicas"], spec["batch_size"]) == (5, "100%")
    assert (spec["max_surge"], spec["max_unavailable"]) == (1, "20%")
    assert describe_steps(spec) == ["batch 1 of 1: 5/5 instances on the new release"]


def test_a_canary_without_anything_takes_argos_defaults_of_25_percent():
    spec = normalise({"canary": {}, "replicas": 8})
    assert (spec["max_surge"], spec["max_unavailable"]) == ("25%", "25%")


def test_a_rolling_canary_with_bad_limits_names_argos_keys():
    assert errors_of({"canary": {"maxSurge": 0, "maxUnavailable": 0}, "replicas": 3})[0] == (
        "canary.maxSurge",
        "max_surge (0) and max_unavailable (0) are both 0 with 3 replicas: no instance could "
        "ever be replaced; set one of them to at least 1",
    )


def test_max_surge_beside_steps_is_named_with_what_to_use():
    ((path, message),) = errors_of({"canary": {"steps": [{"setWeight": 5}], "maxSurge": 1}})
    assert path == "canary.maxSurge" and "use 'setCanaryScale'" in message


# --- steps -------------------------------------------------------------------------------------


def test_a_step_holding_several_fields_is_several_steps_in_order():
    spec = normalise(
        {
            "canary": {
                "steps": [
                    {
                        "setCanaryScale": {"replicas": 1},
                        "setHeaderRoute": {
                            "name": "beta",
                            "match": [{"headerName": "X-Beta", "headerValue": {"exact": "yes"}}],
                        },
                    },
                    {"pause": {}},
                ]
            }
        }
    )
    assert spec["steps"] == [
        {"set_canary_scale": {"replicas": 1}},
        {
            "set_header_route": {
                "name": "beta",
                "match": [{"header": "X-Beta", "value": {"exact": "yes"}}],
            }
        },
        {"pause": {}},
    ]
    assert describe_steps(spec)[1] == (
        "header route 'beta': requests with X-Beta = 'yes' go to the new release"
    )
    assert required_capabilities(spec) == {"weights", "header_routes"}


def test_header_and_mirror_route_errors_name_argos_keys():
    assert errors_of(
        {
            "canary": {
                "steps": [
                    {"setHeaderRoute": {"match": [{"headerName": "X B", "headerValue": {}}]}},
                    {"setMirrorRoute": {"name": "m", "percentage": 150, "match": [{"path": 1}]}},
                ]
            }
        }
    ) == [
        ("canary.steps[0].setHeaderRoute.name", "is required: the route's name"),
        (
            "canary.steps[0].setHeaderRoute.match[0].headerName",
            "must be a header name like 'X-Beta', got 'X B'",
        ),
        (
            "canary.steps[0].setHeaderRoute.match[0].headerValue",
            "must be an object with one of exact, prefix, regex, got {}",
        ),
        (
            "canary.steps[1].setMirrorRoute.percentage",
            "must be a whole number between 0 and 100, got 150",
        ),
        (
            "canary.steps[1].setMirrorRoute.match[0].path",
            "must be an object with one of exact, prefix, regex, got 1",
        ),
    ]


def test_a_mirror_route_needs_mirroring_and_a_route_without_match_removes_it():
    spec = normalise(
        {
            "canary": {
                "steps": [
                    {"setMirrorRoute": {"name": "m", "percentage": 10}},
                    {"setHeaderRoute": {"name": "beta"}},
                ]
            }
        }
    )
    assert describe_steps(spec)[:2] == ["remove mirror route 'm'", "remove header route 'beta'"]
    assert required_capabilities(spec) == {"weights", "mirroring", "header_routes"}


def test_argo_step_types_we_lack_are_named_with_what_to_use():
    errors = errors_of({"canary": {"steps": [{"setWeight": 5}, {"plugin": {}}, {"setWieght": 1}]}})
    assert errors == [
        (
            "canary.steps[1].plugin",
            "step plugins are not supported: use 'analysis' or 'pause' steps",
        ),
        (
            "canary.steps[2].setWieght",
            "is not a step type of Argo Rollouts: did you mean 'setWeight'? Use 'setWeight', "
            "'pause', 'setCanaryScale', 'analysis', 'setHeaderRoute', 'setMirrorRoute', "
            "'experiment'",
        ),
    ]


def test_a_duration_beside_pause_says_to_indent_it():
    assert errors_of({"canary": {"steps": [{"pause": None, "duration": 60}]}}) == [
        (
            "canary.steps[0].duration",
            "is not a step type: indent it under 'pause' (pause: {duration: 60})",
        )
    ]


def test_every_canary_field_of_argo_is_translated_ignored_or_named():
    ignored = {
        "canaryService": "c",
        "stableService": "s",
        "trafficRouting": {"istio": {}},
        "canaryMetadata": {},
        "stableMetadata": {},
        "antiAffinity": {},
        "pingPong": {},
        "dynamicStableScale": False,
    }
    assert normalise({"canary": {"steps": [{"setWeight": 5}], **ignored}})["kind"] == "canary"
    named = {
        "scaleDownDelaySeconds": 30,
        "scaleDownDelayRevisionLimit": 1,
        "abortScaleDownDelaySeconds": 30,
        "dynamicStableScale": True,
        "minPodsPerReplicaSet": 2,
        "replicaProgressThreshold": {},
    }
    errors = errors_of({"canary": {"steps": [{"setWeight": 5}], **named}})
    assert [path for path, _ in errors] == [f"canary.{key}" for key in named]
    assert all("unknown" not in message for _, message in errors)
    assert errors_of({"canary": {"steps": [{"setWeight": 5}], "stableServce": "s"}}) == [
        (
            "canary.stableServce",
            "unknown key 'stableServce' (not a field of Argo Rollouts' canary either): did you "
            "mean 'stableService'?",
        )
    ]


# --- analysis references -----------------------------------------------------------------------


def test_analysis_references_in_argos_other_spellings_are_read():
    spec = normalise(
        {
            "canary": {
                "analysis": {"name": "bg", "templateName": "random-fail"},
                "steps": [
                    {"setWeight": 20},
                    {"analysis": {"templates": [{"clusterTemplateName": "always-pass"}]}},
                ],
            }
        }
    )
    assert spec["analysis"]["template"] == "random-fail"
    assert spec["steps"][1]["analysis"] == {"template": "always-pass", "args": {}}


def test_a_step_analysis_with_starting_step_is_told_it_is_for_background_analysis():
    errors = errors_of(
        {"canary": {"steps": [{"analysis": {"templateName": "a", "startingStep": 1}}]}}
    )
    assert errors == [
        (
            "canary.steps[0].analysis.startingStep",
            "applies to background analysis (canary.analysis) only",
        )
    ]
