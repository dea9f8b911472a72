"""Blue-green and canary specs: defaults, every validation error by path, Argo Rollouts'
syntax translated (with errors naming the key the user wrote), and the rollback spec."""

from __future__ import annotations

import json

import pytest

from strategies.spec import SpecError, describe_steps, normalise, rollback_spec_of

HEALTH = {"path": "/health", "interval": 0.5, "healthy_threshold": 2, "unhealthy_threshold": 3}


def errors_of(raw) -> list[dict[str, str]]:
    with pytest.raises(SpecError) as caught:
        normalise(raw)
    return caught.value.as_dicts()


# --- blue-green -----------------------------------------------------------------------------


def test_blue_green_defaults_are_filled_in():
    assert normalise({"kind": "blue_green", "replicas": 4}) == {
        "kind": "blue_green",
        "replicas": 4,
        "preview_replicas": 4,
        "smoke": [],
        "auto_promote": None,
        "scale_down_delay": 30.0,
        "pre_promotion_analysis": None,
        "post_promotion_analysis": None,
        "min_ready": 0.0,
        "progress_deadline": 600.0,
        "health": HEALTH,
    }


def test_blue_green_reads_every_key_of_ours():
    spec = normalise(
        {
            "kind": "blue_green",
            "replicas": 4,
            "preview_replicas": 1,
            "smoke": [{"path": "/health"}, {"path": "/", "status": 200, "body_contains": "1.4"}],
            "auto_promote": "30s",
            "scale_down_delay": "1m",
        }
    )
    assert spec["smoke"] == [
        {"path": "/health", "status": 200, "body_contains": None},
        {"path": "/", "status": 200, "body_contains": "1.4"},
    ]
    assert (spec["auto_promote"], spec["scale_down_delay"]) == (30.0, 60.0)
    assert normalise(spec) == spec and json.loads(json.dumps(spec)) == spec


@pytest.mark.parametrize(("given", "seconds"), [(False, None), (None, None), (True, 0.0), (0, 0.0)])
def test_auto_promote_false_waits_for_a_person_and_true_means_at_once(given, seconds):
    assert normalise({"kind": "blue_green", "auto_promote": given})["auto_promote"] == seconds


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        ({"preview_replicas": 5}, "preview_replicas", "must be at most replicas (4), got 5"),
        ({"preview_replicas": 0}, "preview_replicas", "must be a whole number >= 1, got 0"),
        ({"smoke": "/health"}, "smoke", "must be a list of checks like"),
        ({"smoke": ["/health"]}, "smoke[0]", "must be an object, got '/health'"),
        ({"smoke": [{"status": 200}]}, "smoke[0].path", "is required, e.g. '/health'"),
        ({"smoke": [{"path": "health"}]}, "smoke[0].path", "must be a URL path starting with"),
        ({"smoke": [{"path": "/", "status": 999}]}, "smoke[0].status", "must be an HTTP status"),
        ({"smoke": [{"path": "/", "status": "200"}]}, "smoke[0].status", "must be an HTTP status"),
        ({"smoke": [{"path": "/", "body_contains": ""}]}, "smoke[0].body_contains", "must be a"),
        ({"smoke": [{"path": "/", "method": "POST"}]}, "smoke[0].method", "unknown key 'method'"),
        ({"auto_promote": "soon"}, "auto_promote", "invalid duration 'soon'"),
        ({"scale_down_delay": -1}, "scale_down_delay", "invalid duration -1"),
        ({"steps": []}, "steps", "unknown key 'steps'"),
    ],
)
def test_blue_green_errors_name_the_field(raw, path, message):
    [error] = errors_of({"kind": "blue_green", "replicas": 4, **raw})
    assert error["path"] == path
    assert error["message"].startswith(message)


def test_blue_green_steps_are_worded():
    spec = normalise(
        {
            "kind": "blue_green",
            "replicas": 4,
            "preview_replicas": 1,
            "smoke": [{"path": "/health"}],
            "auto_promote": "30s",
        }
    )
    assert describe_steps(spec) == [
        "start 1 instance of the new release on the idle side, as a preview",
        "smoke checks on the preview: GET /health -> 200",
        "promote automatically after 30s",
        "scale the new release to 4 instances",
        "switch 100% of traffic to the new release at once",
        "keep the old release for 30s (a rollback is a switch back), then scale it down",
    ]
    waiting = normalise({"kind": "blue_green"})
    assert describe_steps(waiting)[1:3] == [
        "smoke checks on the preview: none configured",
        "wait for a person to promote",
    ]


def test_argo_blue_green_is_translated():
    spec = normalise(
        {
            "blueGreen": {
                "activeService": "shop-active",
                "previewService": "shop-preview",
                "autoPromotionSeconds": 30,
                "scaleDownDelaySeconds": 60,
                "previewReplicaCount": 1,
            },
            "replicas": 4,
            "smoke": [{"path": "/health"}],
        }
    )
    assert spec == normalise(
        {
            "kind": "blue_green",
            "replicas": 4,
            "preview_replicas": 1,
            "auto_promote": 30,
            "scale_down_delay": 60,
            "smoke": [{"path": "/health"}],
        }
    )


@pytest.mark.parametrize(
    ("block", "auto_promote"),
    [
        ({}, 0.0),  # Argo promotes as soon as the preview is ready
        ({"autoPromotionEnabled": True}, 0.0),
        ({"autoPromotionEnabled": False}, None),
        ({"autoPromotionEnabled": False, "autoPromotionSeconds": 30}, None),
        ({"autoPromotionSeconds": 45}, 45.0),
    ],
)
def test_argo_auto_promotion_follows_argo_semantics(block, auto_promote):
    assert normalise({"blueGreen": block})["auto_promote"] == auto_promote


def test_argo_blue_green_errors_name_the_key_the_user_wrote():
    assert errors_of(
        {
            "blueGreen": {
                "autoPromotionEnabled": "yes",
                "previewReplicaCount": "x",
                "scaleDownDelaySecond": 30,
                "prePromotionAnalysis": {"templates": []},
            }
        }
    ) == [
        {"path": "blueGreen.autoPromotionEnabled", "message": "must be true or false, got 'yes'"},
        {
            "path": "blueGreen.scaleDownDelaySecond",
            "message": "unknown key 'scaleDownDelaySecond' (not a field of Argo's blueGreen "
            "either)",
        },
        {
            "path": "blueGreen.prePromotionAnalysis.templates",
            "message": 'must list one template or more, like [{"templateName": "error-rate"}], '
            "got []",
        },
        {
            "path": "blueGreen.previewReplicaCount",
            "message": "must be a whole number >= 1, got 'x'",
        },
    ]


def test_argo_and_ours_saying_the_same_thing_twice_is_an_error():
    raw = {"blueGreen": {"previewReplicaCount": 1}, "preview_replicas": 2, "replicas": 2}
    assert errors_of(raw) == [
        {
            "path": "blueGreen.previewReplicaCount",
            "message": "is given twice: here and as 'preview_replicas'; keep one of them",
        }
    ]


def test_an_argo_block_that_is_not_an_object_is_an_error():
    assert errors_of({"blueGreen": "yes"}) == [
        {"path": "blueGreen", "message": "must be an object, got 'yes'"}
    ]


# --- canary ---------------------------------------------------------------------------------


def test_canary_defaults_are_filled_in():
    assert normalise({"kind": "canary", "steps": [{"set_weight": 10}]}) == {
        "kind": "canary",
        "steps": [{"set_weight": 10}],
        "stable_replicas": 1,
        "canary_replicas": "match_weight",
        "route": {"header": None, "cookie": None, "sticky_key": None},
        "analysis": None,
        "min_ready": 0.0,
        "progress_deadline": 600.0,
        "health": HEALTH,
    }


def test_canary_reads_every_step_and_route_key():
    spec = normalise(
        {
            "kind": "canary",
            "steps": [
                {"set_weight": 5},
                {"pause": {"duration": "5m"}},
                {"pause": {}},
                {"set_canary_scale": {"replicas": 2}},
                {"set_canary_scale": {"weight": 50}},
                {"set_canary_scale": {"match_traffic_weight": True}},
                {"set_weight": 100},
            ],
            "stable_replicas": 4,
            "canary_replicas": 2,
            "route": {"header": "X-Canary", "cookie": "canary", "sticky_key": "cookie:uid"},
        }
    )
    assert spec["steps"][1:3] == [{"pause": {"duration": 300.0}}, {"pause": {}}]
    assert spec["canary_replicas"] == 2
    assert spec["route"] == {"header": "X-Canary", "cookie": "canary", "sticky_key": "cookie:uid"}
    assert normalise(spec) == spec and json.loads(json.dumps(spec)) == spec
    assert describe_steps(spec) == [
        "set weight 5%: 2 instances of the new release, 4 of the old one",
        "pause 5m",
        "pause until promoted",
        "scale the new release to 2 instances (a fixed count)",
        "scale the new release to 2 instances (50% of the old release's size)",
        "scale the new release to 1 instance (matching its traffic weight)",
        "set weight 100%: 4 instances of the new release, 4 of the old one",
        "promote: 4 instances of the new release take 100%, then the old release is scaled down",
    ]


def test_a_bad_analysis_step_is_an_error_naming_the_step():
    assert errors_of(
        {"kind": "canary", "steps": [{"set_weight": 5}, {"pause": {}}, {"analysis": {"x": 1}}]}
    ) == [
        {
            "path": "steps[2].analysis.template",
            "message": "is required: an analysis template's name",
        },
        {"path": "steps[2].analysis.x", "message": "unknown key 'x'"},
    ]


@pytest.mark.parametrize(
    ("steps", "path", "message"),
    [
        ([{"set_weight": 140}], "steps[0].set_weight", "must be between 0 and 100, got 140"),
        ([{"set_weight": -1}], "steps[0].set_weight", "must be a whole number between 0 and 100"),
        ([{"set_weight": "5"}], "steps[0].set_weight", "must be a whole number between 0 and 100"),
        ([{"set_weight": True}], "steps[0].set_weight", "must be a whole number between 0 and 100"),
        ([{"pause": "5m"}], "steps[0].pause", "must be an object: {} to wait until promoted"),
        ([{"pause": {"duration": "later"}}], "steps[0].pause.duration", "invalid duration"),
        ([{"pause": {"for": "5m"}}], "steps[0].pause.for", "unknown key 'for'"),
        ([{"set_canary_scale": {}}], "steps[0].set_canary_scale", "must set exactly one of"),
        (
            [{"set_canary_scale": {"replicas": 1, "weight": 5}}],
            "steps[0].set_canary_scale",
            "must set exactly one of 'replicas', 'weight', 'match_traffic_weight'; got "
            "'replicas', 'weight'",
        ),
        (
            [{"set_canary_scale": {"match_traffic_weight": False}}],
            "steps[0].set_canary_scale.match_traffic_weight",
            "must be true",
        ),
        ([{"set_canary_scale": {"replicas": -1}}], "steps[0].set_canary_scale.replicas", "must"),
        ([{"setweight": 5}], "steps[0].setweight", "unknown step type 'setweight': use one of"),
        ([{"set_weight": 5, "pause": {}}], "steps[0]", "must be an object with one key"),
        ([5], "steps[0]", "must be an object with one key"),
        ([], "steps", "must be a non-empty list like"),
        ("5%", "steps", "must be a non-empty list like"),
    ],
)
def test_canary_step_errors_name_the_step(steps, path, message):
    [error] = errors_of({"kind": "canary", "steps": steps})
    assert error["path"] == path
    assert error["message"].startswith(message)


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        ({}, "steps", "is required: a list like"),
        ({"replicas": 4}, "replicas", "unknown key 'replicas': a canary sizes its sides with"),
        ({"canary_replicas": "half"}, "canary_replicas", "must be 'match_weight' or a whole"),
        ({"route": {"header": "X Canary"}}, "route.header", "must be a header name"),
        ({"route": {"cookie": 5}}, "route.cookie", "must be a cookie name"),
        ({"route": {"sticky_key": "user"}}, "route.sticky_key", "must be 'header:NAME' or"),
        ({"route": {"sticky_key": "query:u"}}, "route.sticky_key", "must be 'header:NAME' or"),
        ({"route": {"path": "/beta"}}, "route.path", "unknown key 'path'"),
        ({"route": "X-Canary"}, "route", "must be an object"),
    ],
)
def test_canary_errors_name_the_field(raw, path, message):
    raw = {"kind": "canary", "steps": [{"set_weight": 5}], **raw}
    if raw.get("steps") and "steps" in path:
        raw.pop("steps")
    [error] = errors_of(raw)
    assert error["path"] == path
    assert error["message"].startswith(message)


def test_argo_canary_steps_are_translated():
    argo = {
        "replicas": 4,
        "canary": {
            "canaryService": "shop-canary",
            "stableService": "shop-stable",
            "trafficRouting": {"nginx": {"stableIngress": "shop"}},
            "steps": [
                {"setWeight": 5},
                {"pause": {"duration": "5m"}},
                {"pause": {"duration": 30}},
                {"pause": {}},
                {"setCanaryScale": {"replicas": 2}},
                {"setCanaryScale": {"weight": 25}},
                {"setCanaryScale": {"matchTrafficWeight": True}},
                {"setWeight": 50},
            ],
        },
        "route": {"header": "X-Canary"},
    }
    ours = {
        "kind": "canary",
        "stable_replicas": 4,
        "steps": [
            {"set_weight": 5},
            {"pause": {"duration": "5m"}},
            {"pause": {"duration": 30}},
            {"pause": {}},
            {"set_canary_scale": {"replicas": 2}},
            {"set_canary_scale": {"weight": 25}},
            {"set_canary_scale": {"match_traffic_weight": True}},
            {"set_weight": 50},
        ],
        "route": {"header": "X-Canary"},
    }
    assert normalise(argo) == normalise(ours)


def test_argo_canary_errors_name_the_key_the_user_wrote():
    assert errors_of(
        {
            "canary": {
                "steps": [
                    {"setWeight": 140},
                    {"pause": {"duration": "soon"}},
                    {"setCanaryScale": {"matchTrafficWeight": "yes"}},
                    {"analysis": {"templates": [{"templateName": "success-rate"}]}},
                    {"plugin": {}},
                    {"setWeigth": 5},
                ],
                "maxSurge": "25%",
                "analysis": {"templates": []},
            }
        }
    ) == [
        {
            "path": "canary.steps[4].plugin",
            "message": "step plugins are not supported: use 'analysis' or 'pause' steps",
        },
        {
            "path": "canary.steps[5].setWeigth",
            "message": "is not a step type of Argo Rollouts: did you mean 'setWeight'? Use "
            "'setWeight', 'pause', 'setCanaryScale', 'analysis', 'setHeaderRoute', "
            "'setMirrorRoute', 'experiment'",
        },
        {
            "path": "canary.maxSurge",
            "message": "applies here only to a canary without steps (Argo's rolling update); "
            "with steps the new release is sized by its weight: use 'setCanaryScale' to size it "
            "otherwise",
        },
        {
            "path": "canary.analysis.templates",
            "message": 'must list one template or more, like [{"templateName": "error-rate"}], '
            "got []",
        },
        {"path": "canary.steps[0].setWeight", "message": "must be between 0 and 100, got 140"},
        {
            "path": "canary.steps[1].pause.duration",
            "message": "invalid duration 'soon': expected a number of seconds or a string like "
            "'500ms', '30s', '5m', '1h30m'",
        },
        {
            "path": "canary.steps[2].setCanaryScale.matchTrafficWeight",
            "message": "must be true (leave the step out to keep the scale), got 'yes'",
        },
    ]


def test_argo_canary_bad_shapes_are_errors_at_argo_paths():
    assert errors_of({"canary": {"steps": "setWeight: 5"}}) == [
        {
            "path": "canary.steps",
            "message": 'must be a non-empty list like [{"set_weight": 10}, {"pause": '
            '{"duration": "1m"}}, {"set_weight": 50}], got \'setWeight: 5\'',
        }
    ]
    # Argo reads every field of a step: one holding two is two of ours, in order
    assert normalise({"canary": {"steps": [{"setWeight": 5, "pause": {}}]}})["steps"] == [
        {"set_weight": 5},
        {"pause": {}},
    ]
    assert errors_of(
        {"canary": {"steps": [{"setWeight": 5}]}, "stable_replicas": 2, "replicas": 3}
    ) == [
        {
            "path": "replicas",
            "message": "is given twice: here and as 'stable_replicas'; keep one of them",
        }
    ]


# --- rolling back a succeeded deployment ---------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        {"kind": "blue_green", "replicas": 3, "smoke": [{"path": "/x"}], "auto_promote": None},
        {"kind": "canary", "steps": [{"set_weight": 5}], "stable_replicas": 3},
    ],
)
def test_a_succeeded_blue_green_or_canary_is_rolled_back_by_a_quick_blue_green_switch(raw):
    spec = normalise({**raw, "health": {"interval": "200ms"}})
    back = normalise(rollback_spec_of(spec))
    assert back == normalise(
        {
            "kind": "blue_green",
            "replicas": 3,
            "preview_replicas": 3,
            "smoke": [],
            "auto_promote": 0,
            "scale_down_delay": 0,
            # the previous release served until just now: checked fast, one success is enough
            "health": {"path": "/health", "interval": "100ms", "healthy_threshold": 1},
        }
    )


def test_a_succeeded_rolling_deployment_is_rolled_back_by_a_fast_rolling_update():
    back = normalise(rollback_spec_of(normalise({"kind": "rolling", "replicas": 3})))
    assert (back["kind"], back["batch_size"], back["max_surge"]) == ("rolling", "100%", "100%")
    assert (back["health"]["interval"], back["health"]["healthy_threshold"]) == (0.1, 1)
