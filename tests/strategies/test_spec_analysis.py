"""Analysis in strategy specs: canary analysis steps and background analysis, blue-green pre-/post-
promotion analysis, rolling analysis after each batch; ours and Argo Rollouts' spelling; every
error by the path the user wrote; templates checked by the caller's function."""

from __future__ import annotations

import json

import pytest

from strategies.spec import SpecError, analysis_refs, describe_steps, normalise


def errors_of(raw, **kwargs) -> list[dict[str, str]]:
    with pytest.raises(SpecError) as caught:
        normalise(raw, **kwargs)
    return caught.value.as_dicts()


CANARY = {
    "kind": "canary",
    "steps": [
        {"set_weight": 20},
        {"analysis": {"template": "error-rate", "args": {"max": 0.05, "window": "30s"}}},
        {"set_weight": 50},
        {"pause": {"duration": "10s"}},
    ],
    "stable_replicas": 4,
    "analysis": {"template": "latency", "start_at_step": 2},
}
ARGO_CANARY = {
    "replicas": 4,
    "canary": {
        "steps": [
            {"setWeight": 20},
            {
                "analysis": {
                    "templates": [{"templateName": "error-rate"}],
                    "args": [{"name": "max", "value": "0.05"}, {"name": "window", "value": "30s"}],
                }
            },
            {"setWeight": 50},
            {"pause": {"duration": "10s"}},
        ],
        "analysis": {"templates": [{"templateName": "latency"}], "startingStep": 2},
    },
}


def test_a_canary_with_an_analysis_step_and_background_analysis_is_normalised_and_worded():
    spec = normalise(CANARY)
    assert spec["steps"][1] == {
        "analysis": {"template": "error-rate", "args": {"max": "0.05", "window": "30s"}}
    }
    assert spec["analysis"] == {"template": "latency", "args": {}, "start_at_step": 2}
    assert normalise(spec) == spec and json.loads(json.dumps(spec)) == spec
    assert describe_steps(spec) == [
        "set weight 20%: 1 instance of the new release, 4 of the old one",
        "analysis 'error-rate' (max=0.05, window=30s): the new release against the old one "
        "(fail: roll back)",
        "set weight 50%: 2 instances of the new release, 4 of the old one; background analysis "
        "'latency' starts, until promotion",
        "pause 10s",
        "promote: 4 instances of the new release take 100%, then the old release is scaled down",
    ]
    assert list(analysis_refs(spec)) == [
        ("steps[1].analysis", spec["steps"][1]["analysis"]),
        ("analysis", spec["analysis"]),
    ]


def test_argo_analysis_steps_and_background_analysis_are_translated():
    assert normalise(ARGO_CANARY) == normalise(CANARY)


def test_background_analysis_defaults_to_the_first_step_and_is_optional():
    spec = normalise(
        {"kind": "canary", "steps": [{"set_weight": 5}], "analysis": {"template": "x"}}
    )
    assert spec["analysis"] == {"template": "x", "args": {}, "start_at_step": 0}
    assert normalise({"kind": "canary", "steps": [{"set_weight": 5}]})["analysis"] is None


def test_bad_analysis_references_are_errors_by_path():
    raw = {
        "kind": "canary",
        "steps": [
            {"analysis": "error-rate"},
            {"analysis": {"template": "no spaces please"}},
            {"analysis": {"template": "x", "args": ["max=1"]}},
            {"analysis": {"template": "x", "args": {"max": True, "min": None}}},
            {"analysis": {"args": {}, "count": 3}},
        ],
        "analysis": {"template": "y", "start_at_step": 5, "startingStep": 1},
    }
    assert errors_of(raw) == [
        {
            "path": "steps[0].analysis",
            "message": 'must be an object like {"template": "error-rate", "args": '
            '{"max-errors": "0.05"}}, got \'error-rate\'',
        },
        {
            "path": "steps[1].analysis.template",
            "message": "must be an analysis template's name (letters, digits, '-' and '_', at "
            "most 63), got 'no spaces please'",
        },
        {
            "path": "steps[2].analysis.args",
            "message": 'must be an object of values like {"max-errors": "0.05"}, got ["max=1"]',
        },
        {"path": "steps[3].analysis.args.max", "message": "must be a string or a number, got true"},
        {"path": "steps[3].analysis.args.min", "message": "must be a string or a number, got null"},
        {
            "path": "steps[4].analysis.template",
            "message": "is required: an analysis template's name",
        },
        {"path": "steps[4].analysis.count", "message": "unknown key 'count'"},
        {"path": "analysis.startingStep", "message": "unknown key 'startingStep'"},
        {
            "path": "analysis.start_at_step",
            "message": "must be the index of a step (0 to 4), got 5",
        },
    ]


def test_argo_analysis_errors_name_the_key_the_user_wrote():
    raw = {
        "canary": {
            "steps": [
                {"setWeight": 10},
                {
                    "analysis": {
                        "templates": [{"templateName": "a"}, {"templateName": "b"}],
                        "args": [{"name": "max", "valueFrom": {"fieldRef": {}}}],
                        "dryRun": [{"metricName": "x"}],
                    }
                },
                {"analysis": {"args": [{"name": "max", "value": True}]}},
                {"analysis": {"templates": [{"templateName": "a", "clusterScope": True, "x": 1}]}},
            ],
            "analysis": {"templates": [{"templateName": "bg"}], "startingStep": 9},
        }
    }
    assert errors_of(raw) == [
        {
            "path": "canary.steps[1].analysis.args[0].valueFrom",
            "message": "is not supported (there are no Kubernetes objects to read here): give the "
            "value",
        },
        {
            "path": "canary.steps[1].analysis.dryRun",
            "message": "is not supported on the reference: set dryRun on the AnalysisTemplate "
            "(or dry_run on its metrics)",
        },
        {"path": "canary.steps[3].analysis.templates[0].x", "message": "unknown key 'x'"},
        {
            "path": "canary.steps[2].analysis.templates",
            "message": "is required: an analysis template's name",
        },
        {
            "path": "canary.steps[2].analysis.args[0].value",
            "message": "must be a string or a number, got true",
        },
        {
            "path": "canary.analysis.startingStep",
            "message": "must be the index of a step (0 to 3), got 9",
        },
    ]


# --- blue-green and rolling -----------------------------------------------------------------


def test_blue_green_pre_and_post_promotion_analysis_ours_and_argo():
    ours = normalise(
        {
            "kind": "blue_green",
            "replicas": 2,
            "smoke": [{"path": "/health"}],
            "auto_promote": 0,
            "pre_promotion_analysis": {"template": "preview", "args": {"n": 5}},
            "post_promotion_analysis": {"template": "ceiling"},
        }
    )
    argo = normalise(
        {
            "replicas": 2,
            "smoke": [{"path": "/health"}],
            "blueGreen": {
                "prePromotionAnalysis": {
                    "templates": [{"templateName": "preview"}],
                    "args": [{"name": "n", "value": 5}],
                },
                "postPromotionAnalysis": {"templates": [{"templateName": "ceiling"}]},
            },
        }
    )
    assert ours == argo
    assert ours["pre_promotion_analysis"] == {"template": "preview", "args": {"n": "5"}}
    assert describe_steps(ours)[1] == (
        "smoke checks on the preview: GET /health -> 200; then pre-promotion analysis "
        "'preview' (n=5) of the preview must pass"
    )
    assert describe_steps(ours)[5] == (
        "keep the old release for 30s and until post-promotion analysis 'ceiling' passes "
        "(fail: switch back), then scale it down"
    )
    assert [path for path, _ in analysis_refs(ours)] == [
        "pre_promotion_analysis",
        "post_promotion_analysis",
    ]


def test_rolling_analysis_runs_after_each_batch_but_the_last():
    spec = normalise(
        {"kind": "rolling", "replicas": 3, "batch_size": 1, "analysis": {"template": "errors"}}
    )
    assert spec["analysis"] == {"template": "errors", "args": {}}
    assert describe_steps(spec) == [
        "batch 1 of 3: 1/3 instances on the new release, then analysis 'errors' against the old "
        "release (fail: roll back)",
        "batch 2 of 3: 2/3 instances on the new release, then analysis 'errors' against the old "
        "release (fail: roll back)",
        "batch 3 of 3: 3/3 instances on the new release",
    ]
    one_batch = {
        "kind": "rolling",
        "replicas": 3,
        "batch_size": "100%",
        "analysis": {"template": "e"},
    }
    assert errors_of(one_batch) == [
        {
            "path": "analysis",
            "message": "runs after each batch but the last, and batch_size '100%' replaces all 3 "
            "instance(s) in one batch: use a smaller batch_size",
        }
    ]


# --- templates checked by the caller --------------------------------------------------------


def check(name: str, args: dict[str, str]) -> list[tuple[str, str]]:
    if name == "missing":
        return [("template", "there is no analysis template 'missing'")]
    if "max" not in args:
        return [("args.max", "is required (the template has no default)")]
    return []


def test_the_callers_template_check_reports_at_our_paths():
    raw = {
        "kind": "canary",
        "steps": [{"analysis": {"template": "missing"}}, {"analysis": {"template": "errors"}}],
        "analysis": {"template": "errors", "args": {"max": 1}},
    }
    assert errors_of(raw, templates=check) == [
        {
            "path": "steps[0].analysis.template",
            "message": "there is no analysis template 'missing'",
        },
        {
            "path": "steps[1].analysis.args.max",
            "message": "is required (the template has no default)",
        },
    ]
    assert normalise(raw)  # without the check, it is a valid spec


def test_the_callers_template_check_reports_at_argo_paths():
    raw = {
        "canary": {
            "steps": [{"analysis": {"templates": [{"templateName": "missing"}]}}],
            "analysis": {"templates": [{"templateName": "errors"}], "args": [{"name": "x"}]},
        }
    }
    assert errors_of(raw, templates=check) == [
        {
            "path": "canary.steps[0].analysis.templates[0].templateName",
            "message": "there is no analysis template 'missing'",
        },
        {
            "path": "canary.analysis.args.max",
            "message": "is required (the template has no default)",
        },
    ]
