"""``aws-ecs`` in task-set mode (``integrations.aws.tasksets``) against a real moto_server
process: one service with the EXTERNAL deployment controller, a slot as a task set in its own
target group; the target alone, then through the reconcile loop (in this process, no worker):
recreate, a canary stepping 10 -> 50 -> 100, abort, rolling, blue-green with the rollback
window's warm slot.

What moto implements and what it does not (moto 5.2): CreateTaskSet, DescribeTaskSets (and the
task sets in DescribeServices), UpdateTaskSet, UpdateServicePrimaryTaskSet and DeleteTaskSet
work; a task set's answer has no ``computedDesiredCount``, ``runningCount`` or ``pendingCount``
and is always ``STEADY_STATE``, so readiness here is the computed count of a steady task set
(ECS' own definition of steady), never a running count; moto deletes a primary task set where ECS
refuses, so that refusal is not tested; CreateTaskSet with a scale runs its tasks through RunTask,
so the cluster has one EC2 container instance.
"""

from __future__ import annotations

import pytest

from integrations import registry
from integrations.aws import session
from integrations.aws.tasksets import EcsTaskSetTarget, computed, scale_for
from integrations.base import IntegrationError, ReleaseRef
from releases import actions
from releases.models import State
from releases.reconcile import cleanup, tick
from tests import factories
from tests.integrations.aws.moto import make_taskset_world
from tests.integrations.aws.test_aws_ecs_reconcile import (
    canary_spec,
    deploy,
    live,
    rolled,
    weights,
)
from tests.ticks import tick_until


@pytest.fixture
def world(moto):
    return make_taskset_world(moto)


@pytest.fixture
def ts_target(world, service, dev):
    return factories.make_target(
        service,
        dev,
        provider="aws-ecs",
        config=world.config(test_listener_arn=world.ecs.test_listener_arn),
    )


def target_of(world, **extra) -> EcsTaskSetTarget:
    built = registry.build_target("aws-ecs", "api.prod", world.config(**extra))
    assert isinstance(built, EcsTaskSetTarget)
    return built


def task_sets(moto, world) -> dict[str, list[dict]]:
    """Slot -> its task sets as moto has them: status, scale, version label, target group."""
    ecs = moto.client("ecs")
    found: dict[str, list[dict]] = {}
    for t in ecs.describe_task_sets(cluster="prod", service=world.service)["taskSets"]:
        definition = ecs.describe_task_definition(taskDefinition=t["taskDefinition"])
        container = definition["taskDefinition"]["containerDefinitions"][0]
        found.setdefault(t["externalId"].removeprefix("switchyard-"), []).append(
            {
                "status": t["status"],
                "scale": t["scale"]["value"],
                "version": (container.get("dockerLabels") or {}).get("switchyard.version"),
                "group": t["loadBalancers"][0]["targetGroupArn"],
            }
        )
    return found


def service_desired(moto, world) -> int:
    ecs = moto.client("ecs")
    return ecs.describe_services(cluster="prod", services=[world.service])["services"][0][
        "desiredCount"
    ]


def test_the_scale_percentage_comes_back_as_the_count():
    for desired in (1, 2, 3, 7, 10, 33, 100, 999):
        for count in range(desired + 1):
            scale = scale_for(count, desired)
            assert 0 <= scale <= 100
            assert computed({"scale": {"value": scale}}, desired) == count


def test_config_validation_of_the_task_set_mode(world):
    assert registry.validate_target_config("aws-ecs", world.config()) == []
    assert "mode" in {p for p, _ in registry.validate_target_config("aws-ecs", {"mode": "x"})}
    bad = world.config()
    bad["slots"]["blue"]["service"] = "api-blue"  # a task set's slot names no service
    paths = [p for p, _ in registry.validate_target_config("aws-ecs", bad)]
    assert paths == ["slots.blue.service"]
    wrong = world.config(container_port=70000)
    del wrong["service"]
    paths = {p for p, _ in registry.validate_target_config("aws-ecs", wrong)}
    assert paths == {"service", "container_port"}
    # the service mode refuses the task-set keys
    services = {**world.config(), "mode": "services"}
    services["slots"] = {s: {"service": f"api-{s}", **v} for s, v in services["slots"].items()}
    del services["task_definition"]
    assert [p for p, _ in registry.validate_target_config("aws-ecs", services)] == ["service"]


def test_a_slot_is_a_task_set_in_its_target_group_and_a_new_release_replaces_it(moto, world):
    t = target_of(world)
    assert t.status().slots["blue"].desired == 0
    t.ensure_slot("green", ReleaseRef("1.0.0", {"image": "example/api:1.0.0"}), replicas=2)
    assert task_sets(moto, world) == {
        "green": [
            {
                "status": "ACTIVE",
                "scale": 100.0,
                "version": "1.0.0",
                "group": world.ecs.target_groups["green"],
            }
        ]
    }
    status = t.status().slots["green"]
    assert (status.version, status.desired, status.ready) == ("1.0.0", 2, 2)
    t.ensure_slot("green", ReleaseRef("1.0.0", {"image": "example/api:1.0.0"}), replicas=1)
    assert task_sets(moto, world)["green"][0]["scale"] == 50.0  # the same task set, rescaled
    assert t.status().slots["green"].desired == 1
    # another release on the slot: a new task set (a task set's definition is fixed), the old gone
    t.ensure_slot("green", ReleaseRef("1.1.0", {"image": "example/api:1.1.0"}), replicas=1)
    [only] = task_sets(moto, world)["green"]
    assert (only["version"], only["scale"]) == ("1.1.0", 50.0)


def test_more_replicas_than_the_service_raise_its_count_and_keep_the_other_sizes(moto, world):
    t = target_of(world)
    t.ensure_slot("blue", ReleaseRef("1.0.0", {"image": "example/api:1.0.0"}), replicas=2)
    t.ensure_slot("green", ReleaseRef("2.0.0", {"image": "example/api:2.0.0"}), replicas=5)
    assert service_desired(moto, world) == 5
    slots = t.status().slots
    assert (slots["blue"].desired, slots["green"].desired) == (2, 5)
    assert task_sets(moto, world)["green"][0]["scale"] == 100.0


def test_full_weight_makes_the_primary_task_set_and_remove_slot_spares_it(moto, world):
    t = target_of(world)
    t.ensure_slot("blue", ReleaseRef("1.0.0", {"image": "example/api:1.0.0"}), replicas=2)
    t.ensure_slot("green", ReleaseRef("2.0.0", {"image": "example/api:2.0.0"}), replicas=2)
    t.set_weights({"blue": 90, "green": 10})
    assert {s: v[0]["status"] for s, v in task_sets(moto, world).items()} == {
        "blue": "ACTIVE",
        "green": "ACTIVE",
    }
    t.set_weights({"blue": 0, "green": 100})
    assert weights(moto, world.ecs.listener_arn, world.ecs) == {"blue": 0, "green": 100}
    assert task_sets(moto, world)["green"][0]["status"] == "PRIMARY"
    t.remove_slot("green")  # primary: scaled to 0%, not deleted (ECS deletes no primary one)
    assert task_sets(moto, world)["green"][0]["scale"] == 0.0
    t.remove_slot("blue")
    assert "blue" not in task_sets(moto, world)
    t.remove_slot("blue")  # nothing left: nothing done


def test_a_service_without_the_external_controller_is_refused_naming_it(moto, world):
    moto.client("ecs").create_service(cluster="prod", serviceName="plain", desiredCount=1)
    t = target_of(world, service="plain")
    with pytest.raises(IntegrationError) as caught:
        t.status()
    assert caught.value.permanent and "EXTERNAL" in caught.value.message
    missing = target_of(world, service="nope")
    with pytest.raises(IntegrationError) as caught:
        missing.status()
    assert "ecs:DescribeServices" in caught.value.message and "nope" in caught.value.message


# -- through the reconcile loop ---------------------------------------------------------------


def test_a_first_recreate_runs_a_task_set_and_routes_all_traffic_to_it(moto, world, ts_target):
    d = live(ts_target)
    slot = d.canary_slot
    [ts] = task_sets(moto, world)[slot]
    assert (ts["version"], ts["status"], ts["group"]) == (
        "1.0.0",
        "PRIMARY",
        world.ecs.target_groups[slot],
    )
    assert weights(moto, world.ecs.listener_arn, world.ecs)[slot] == 100
    assert ts_target.observed[slot]["ready"] == 2


def test_a_canary_on_task_sets_steps_10_50_100_and_keeps_the_old_one_warm(moto, world, ts_target):
    live(ts_target)
    d = deploy(
        ts_target,
        "2.0.0",
        canary_spec({"set_weight": 10}, {"pause": {}}, {"set_weight": 50}, {"pause": {}}),
    )
    stable, canary = d.stable_slot, d.canary_slot
    seen = []
    for _ in range(2):
        d = tick_until(d, lambda d: d.state == State.PAUSED, what="the pause")
        seen.append(weights(moto, world.ecs.listener_arn, world.ecs)[canary])
        actions.promote(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: d.state == State.SUCCEEDED, what="success")
    seen.append(weights(moto, world.ecs.listener_arn, world.ecs)[canary])
    assert seen == [10, 50, 100]
    sets = task_sets(moto, world)
    assert (sets[canary][0]["version"], sets[canary][0]["status"]) == ("2.0.0", "PRIMARY")
    # the rollback window: the previous release's task set stays, at its size, at 0% traffic
    assert d.window_until is not None
    assert (sets[stable][0]["version"], sets[stable][0]["scale"]) == ("1.0.0", 100.0)
    # a rollback inside the window is a switch back to the warm task set
    back = actions.rollback(factories.api_actor(), d.pk)  # a new deployment: the switch back
    back = tick_until(back, lambda b: b.state == State.SUCCEEDED, what="switched back")
    assert weights(moto, world.ecs.listener_arn, world.ecs) == {stable: 100, canary: 0}
    sets = task_sets(moto, world)
    assert (sets[stable][0]["version"], sets[stable][0]["status"]) == ("1.0.0", "PRIMARY")
    assert len(sets[stable]) == 1  # the warm task set itself, no new one


def test_an_abort_on_task_sets_writes_100_percent_stable_first(moto, world, ts_target):
    live(ts_target)
    d = deploy(ts_target, "2.0.0", canary_spec({"set_weight": 50}, {"pause": {}}))
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="50% on the canary")
    stable, canary = d.stable_slot, d.canary_slot
    actions.abort(factories.api_actor(), d.pk, reason="looks wrong")
    with session.journal() as calls:
        tick.tick(d.pk)
    names = [n for n, _ in calls]
    # the fence check on the listener's tags, then the weights: before any task-set call
    first = names.index("elasticloadbalancing:ModifyListener")
    assert not [n for n in names[:first] if "TaskSet" in n or n == "ecs:UpdateService"]
    groups = calls[first][1]["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    assert {g["TargetGroupArn"]: g["Weight"] for g in groups} == {
        world.ecs.target_groups[stable]: 100,
        world.ecs.target_groups[canary]: 0,
    }
    d = tick_until(d, lambda d: d.state == State.ABORTED, what="aborted")
    assert weights(moto, world.ecs.listener_arn, world.ecs) == {stable: 100, canary: 0}
    sets = task_sets(moto, world)
    assert (sets[stable][0]["version"], sets[stable][0]["status"]) == ("1.0.0", "PRIMARY")
    # a canary's abort keeps its task set for inspection (strategies.canary.decide_rollback)
    assert [(t["version"], t["scale"]) for t in sets[canary]] == [("2.0.0", 50.0)]


def test_a_rolling_update_on_task_sets_moves_the_replicas(moto, world, ts_target):
    d, _ = rolled(ts_target)
    stable, canary = d.stable_slot, d.canary_slot
    sets = task_sets(moto, world)
    assert (sets[canary][0]["version"], sets[canary][0]["status"]) == ("2.0.0", "PRIMARY")
    assert weights(moto, world.ecs.listener_arn, world.ecs) == {stable: 0, canary: 100}


def test_blue_green_on_task_sets_previews_then_switches_and_the_window_ends(moto, world, ts_target):
    live(ts_target)
    spec = {
        "kind": "blue_green",
        "replicas": 2,
        "preview_replicas": 1,
        "auto_promote": 0,
        "scale_down_delay": "1s",
    }
    d = deploy(ts_target, "2.0.0", spec)
    stable, canary = d.stable_slot, d.canary_slot
    d = tick_until(
        d,
        lambda d: weights(moto, world.ecs.test_listener_arn, world.ecs)[canary] == 100,
        what="the preview",
    )
    assert weights(moto, world.ecs.listener_arn, world.ecs) == {stable: 100, canary: 0}
    d = tick_until(d, lambda d: d.state == State.SUCCEEDED, what="success")
    assert weights(moto, world.ecs.listener_arn, world.ecs) == {stable: 0, canary: 100}
    assert task_sets(moto, world)[stable][0]["version"] == "1.0.0"  # warm for the window
    actions.end_window(factories.api_actor(), d.pk, reason="done")
    assert cleanup.retire_warm_slot(d.pk)  # what the cleanup task runs (a worker, in prod)
    assert stable not in task_sets(moto, world)  # not primary: deleted
    assert task_sets(moto, world)[canary][0]["status"] == "PRIMARY"
