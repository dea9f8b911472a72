"""Strategy specs: normalising, every validation error, planned steps, the kind registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from strategies.spec import (
    KINDS,
    FieldError,
    SpecError,
    describe_steps,
    health_of,
    min_ready_of,
    normalise,
    rolling_sizes,
)

COUNT_OR_PERCENT = "must be a whole number >= {} or a percentage like '25%'"
DURATION = "a number of seconds or a string like '500ms', '30s', '5m', '1h30m'"
HEALTH = {"path": "/health", "interval": 0.5, "healthy_threshold": 2, "unhealthy_threshold": 3}
KIND_NAMES = "'recreate', 'rolling', 'blue_green', 'canary'"


def errors_of(raw) -> list[dict[str, str]]:
    with pytest.raises(SpecError) as caught:
        normalise(raw)
    return caught.value.as_dicts()


def test_rolling_defaults_are_filled_in():
    assert normalise({"kind": "rolling"}) == {
        "kind": "rolling",
        "replicas": 1,
        "batch_size": 1,
        "max_surge": 1,
        "max_unavailable": 0,
        "min_ready": 0.0,
        "analysis": None,
        "progress_deadline": 600.0,
        "health": HEALTH,
    }


def test_recreate_defaults_are_filled_in():
    assert normalise({"kind": "recreate", "replicas": 2}) == {
        "kind": "recreate",
        "replicas": 2,
        "progress_deadline": 600.0,
        "health": HEALTH,
    }


def test_rolling_keeps_percentages_and_turns_durations_into_seconds():
    spec = normalise(
        {
            "kind": "rolling",
            "replicas": 4,
            "batch_size": "25%",
            "max_surge": "50%",
            "max_unavailable": 1,
            "min_ready": "5s",
            "progress_deadline": "10m",
            "health": {"path": "/ready", "interval": "1s", "healthy_threshold": 1},
        }
    )
    assert spec["batch_size"] == "25%"
    assert spec["max_surge"] == "50%"
    assert spec["max_unavailable"] == 1
    assert spec["min_ready"] == 5.0
    assert spec["progress_deadline"] == 600.0
    assert spec["health"] == {**HEALTH, "path": "/ready", "interval": 1.0, "healthy_threshold": 1}
    assert json.loads(json.dumps(spec)) == spec


@pytest.mark.parametrize(
    "raw",
    [
        {"kind": "rolling", "replicas": 3, "batch_size": "50%", "min_ready": "2s"},
        {"kind": "recreate", "replicas": 2, "health": {"interval": "250ms"}},
    ],
)
def test_a_normalised_spec_normalises_to_itself(raw):
    spec = normalise(raw)
    assert normalise(spec) == spec


def test_whole_floats_count_as_whole_numbers():
    assert normalise({"kind": "recreate", "replicas": 3.0})["replicas"] == 3


def test_unknown_keys_are_errors_naming_the_key_at_every_level():
    assert errors_of({"kind": "rolling", "replica": 2, "health": {"pth": "/x"}}) == [
        {"path": "health.pth", "message": "unknown key 'pth'"},
        {"path": "replica", "message": "unknown key 'replica'"},
    ]


def test_rolling_only_keys_are_unknown_to_recreate():
    assert errors_of({"kind": "recreate", "batch_size": 1}) == [
        {"path": "batch_size", "message": "unknown key 'batch_size'"}
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("replicas", "x", "must be a whole number >= 1, got 'x'"),
        ("replicas", 0, "must be a whole number >= 1, got 0"),
        ("replicas", 2.5, "must be a whole number >= 1, got 2.5"),
        ("replicas", True, "must be a whole number >= 1, got true"),
        ("replicas", None, "must be a whole number >= 1, got null"),
        ("batch_size", 0, f"{COUNT_OR_PERCENT.format(1)}, got 0"),
        ("batch_size", "12.5%", f"{COUNT_OR_PERCENT.format(1)}, got '12.5%'"),
        ("batch_size", "140%", "must be between 0% and 100%, got '140%'"),
        ("max_surge", -1, f"{COUNT_OR_PERCENT.format(0)}, got -1"),
        ("max_surge", "-5%", f"{COUNT_OR_PERCENT.format(0)}, got '-5%'"),
        ("max_unavailable", "101%", "must be between 0% and 100%, got '101%'"),
        ("max_unavailable", [1], f"{COUNT_OR_PERCENT.format(0)}, got [1]"),
        ("min_ready", "-1s", f"invalid duration '-1s': expected {DURATION}"),
        ("min_ready", -3, "invalid duration -3: must be a finite number >= 0"),
        ("progress_deadline", "0s", "must be a duration > 0, got '0s'"),
        ("progress_deadline", "soon", f"invalid duration 'soon': expected {DURATION}"),
        ("health", "/health", "must be an object, got '/health'"),
    ],
)
def test_bad_values_are_errors_naming_the_field_and_the_value(field, value, message):
    assert errors_of({"kind": "rolling", "replicas": 4, field: value}) == [
        {"path": field, "message": message}
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("path", "health", "must be a URL path starting with '/', got 'health'"),
        ("path", 5, "must be a URL path starting with '/', got 5"),
        ("interval", 0, "must be a duration > 0, got 0"),
        ("healthy_threshold", 0, "must be a whole number >= 1, got 0"),
        ("unhealthy_threshold", "3", "must be a whole number >= 1, got '3'"),
    ],
)
def test_bad_health_values_are_errors_under_health(field, value, message):
    assert errors_of({"kind": "recreate", "health": {field: value}}) == [
        {"path": f"health.{field}", "message": message}
    ]


def test_every_error_is_reported_not_just_the_first():
    errors = errors_of(
        {
            "kind": "rolling",
            "replicas": "x",
            "batch_size": "abc",
            "progress_deadline": "never",
            "health": {"interval": "fast", "pth": 1},
            "extra": True,
        }
    )
    assert [error["path"] for error in errors] == [
        "replicas",
        "batch_size",
        "progress_deadline",
        "health.interval",
        "health.pth",
        "extra",
    ]


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "shown"),
    [
        (4, 0, 0, "max_surge (0) and max_unavailable (0)"),
        (3, "0%", "25%", "max_surge ('0%' = 0) and max_unavailable ('25%' = 0)"),
    ],
)
def test_surge_and_unavailable_both_zero_is_an_error_naming_both(
    replicas, surge, unavailable, shown
):
    raw = {"kind": "rolling", "replicas": replicas}
    errors = errors_of({**raw, "max_surge": surge, "max_unavailable": unavailable})
    assert len(errors) == 1
    assert errors[0]["path"] == "max_surge"
    assert errors[0]["message"].startswith(shown)
    assert f"both 0 with {replicas} replicas" in errors[0]["message"]


def test_surge_zero_is_fine_when_unavailable_resolves_to_one():
    spec = normalise({"kind": "rolling", "replicas": 4, "max_surge": 0, "max_unavailable": "25%"})
    assert rolling_sizes(spec) == (4, 0, 1, 1)


@pytest.mark.parametrize(
    ("raw", "sizes"),
    [
        ({"replicas": 3, "max_surge": "25%", "max_unavailable": "50%"}, (3, 1, 1, 1)),
        ({"replicas": 3, "batch_size": "50%"}, (3, 1, 0, 2)),
        ({"replicas": 10, "max_surge": "10%", "max_unavailable": "19%"}, (10, 1, 1, 1)),
        ({"replicas": 10, "batch_size": "1%"}, (10, 1, 0, 1)),
        ({"replicas": 4, "batch_size": "0%"}, (4, 1, 0, 1)),
        ({"replicas": 4, "batch_size": 9, "max_unavailable": 7}, (4, 1, 4, 4)),
    ],
)
def test_percentages_resolve_surge_up_unavailable_down_batch_up(raw, sizes):
    assert rolling_sizes(normalise({"kind": "rolling", **raw})) == sizes


def test_missing_kind_is_an_error_listing_the_kinds():
    assert errors_of({"replicas": 2}) == [
        {"path": "kind", "message": f"is required: one of {KIND_NAMES}"}
    ]


@pytest.mark.parametrize("kind", ["linear", 5, None])
def test_unknown_kind_is_an_error_listing_the_kinds(kind):
    [error] = errors_of({"kind": kind})
    assert error["path"] == "kind"
    assert error["message"].startswith("unknown strategy ")
    assert error["message"].endswith(f"expected one of {KIND_NAMES}")


@pytest.mark.parametrize(("name", "ours"), [("blueGreen", "blue_green"), ("canary", "canary")])
def test_an_argo_name_given_as_kind_points_at_ours(name, ours):
    if name == ours:
        assert normalise({"kind": name, "steps": [{"set_weight": 5}]})["kind"] == ours
        return
    assert errors_of({"kind": name}) == [
        {
            "path": "kind",
            "message": f"unknown strategy '{name}': did you mean '{ours}'? (Argo Rollouts' form "
            f'has no "kind": {{"{name}": {{...}}}})',
        }
    ]


def test_a_spec_that_is_not_an_object_is_an_error():
    assert errors_of(["rolling"]) == [{"path": "", "message": 'must be an object, got ["rolling"]'}]


def test_spec_error_reads_as_one_line_listing_every_error():
    first = FieldError("replicas", "must be a whole number >= 1, got 'x'")
    error = SpecError([first, FieldError("", "must be an object, got 3")])
    assert str(error) == (
        "invalid strategy spec (2 errors): replicas: must be a whole number >= 1, got 'x'; "
        "spec: must be an object, got 3"
    )
    assert error.errors[0] == FieldError(
        path="replicas", message="must be a whole number >= 1, got 'x'"
    )


def test_rolling_steps_are_one_per_batch():
    spec = normalise({"kind": "rolling", "replicas": 4})
    assert describe_steps(spec) == [
        "batch 1 of 4: 1/4 instances on the new release",
        "batch 2 of 4: 2/4 instances on the new release",
        "batch 3 of 4: 3/4 instances on the new release",
        "batch 4 of 4: 4/4 instances on the new release",
    ]


def test_rolling_steps_with_a_batch_that_does_not_divide_replicas():
    spec = normalise({"kind": "rolling", "replicas": 5, "batch_size": "40%"})
    assert describe_steps(spec) == [
        "batch 1 of 3: 2/5 instances on the new release",
        "batch 2 of 3: 4/5 instances on the new release",
        "batch 3 of 3: 5/5 instances on the new release",
    ]


@pytest.mark.parametrize(("replicas", "start"), [(2, "start 2 instances"), (1, "start 1 instance")])
def test_recreate_steps_stop_start_route(replicas, start):
    assert describe_steps(normalise({"kind": "recreate", "replicas": replicas})) == [
        "stop the old release",
        f"{start} of the new release",
        "route 100% to the new release",
    ]


def test_health_of_and_min_ready_of_read_a_normalised_spec():
    spec = normalise({"kind": "rolling", "min_ready": "1.5s", "health": {"interval": "2s"}})
    assert health_of(spec) == {**HEALTH, "interval": 2.0}
    assert min_ready_of(spec) == 1.5
    assert min_ready_of(normalise({"kind": "recreate"})) == 0.0


def test_every_kind_design_promises_is_registered():
    assert list(KINDS) == ["recreate", "rolling", "blue_green", "canary"]


def test_strategies_import_neither_django_nor_integrations():
    code = (
        "import sys, strategies.engine, strategies.spec; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'integrations')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
