"""ECS behind an ALB through the reconcile loop (``releases.reconcile.tick.tick``, in this
process, no worker) against a real moto_server process: recreate, rolling, blue-green and a
canary stepping 10 -> 50 -> 100 on the listener's weights, abort and rollback.

moto runs no tasks and carries no traffic (shared NOTES): readiness comes from the services'
running counts as moto reports them, and the blue-green smoke checks run against a loopback HTTP
server standing in for the application behind the test listener (moto's load balancer DNS names
resolve nowhere); the docstring of that test says so again.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integrations.aws import session
from releases import actions
from releases.models import State
from releases.reconcile import tick
from tests import factories
from tests.integrations.aws.moto import make_ecs_world
from tests.ticks import tick_until


@pytest.fixture
def world(moto):
    return make_ecs_world(moto)


@pytest.fixture
def ecs_target(world, service, dev):
    return factories.make_target(
        service,
        dev,
        provider="aws-ecs",
        config=world.config(test_listener_arn=world.test_listener_arn),
    )


def deploy(target, version, strategy):
    factories.make_release(target.service, version, artifact={"image": f"example/api:{version}"})
    d, _ = actions.start_deployment(
        factories.api_actor(),
        service=target.service,
        environment=target.environment,
        version=version,
        strategy=strategy,
    )
    return d


def live(target, version="1.0.0", replicas=2):
    spec = {"kind": "recreate", "replicas": replicas}
    d = tick_until(deploy(target, version, spec), lambda d: d.state == State.SUCCEEDED)
    target.refresh_from_db()
    return d


def weights(moto, listener_arn, world):
    listener = moto.client("elbv2").describe_listeners(ListenerArns=[listener_arn])
    groups = listener["Listeners"][0]["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    slot_of = {arn: slot for slot, arn in world.target_groups.items()}
    return {slot_of[g["TargetGroupArn"]]: g["Weight"] for g in groups}


def service_of(moto, world, slot):
    ecs = moto.client("ecs")
    service = ecs.describe_services(cluster="prod", services=[world.services[slot]])["services"][0]
    definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    labels = definition["taskDefinition"]["containerDefinitions"][0].get("dockerLabels") or {}
    return service["desiredCount"], labels.get("switchyard.version")


def canary_spec(*steps):
    return {"kind": "canary", "steps": list(steps), "stable_replicas": 2}


def test_a_first_recreate_runs_the_release_and_routes_all_traffic_to_it(moto, world, ecs_target):
    d = live(ecs_target)
    slot = d.canary_slot
    assert service_of(moto, world, slot) == (2, "1.0.0")
    assert weights(moto, world.listener_arn, world)[slot] == 100
    assert ecs_target.stable_slot == slot
    assert ecs_target.observed[slot]["ready"] == 2


def test_a_canary_steps_the_listener_weights_10_50_100(moto, world, ecs_target):
    live(ecs_target)
    d = deploy(
        ecs_target,
        "2.0.0",
        canary_spec(
            {"set_weight": 10},
            {"pause": {}},
            {"set_weight": 50},
            {"pause": {}},
            {"set_weight": 100},
        ),
    )
    stable, canary = d.stable_slot, d.canary_slot
    seen = []
    for _ in range(2):
        d = tick_until(d, lambda d: d.state == State.PAUSED, what="the pause")
        seen.append(weights(moto, world.listener_arn, world)[canary])
        actions.promote(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: d.state == State.SUCCEEDED, what="success")
    seen.append(weights(moto, world.listener_arn, world)[canary])
    assert seen == [10, 50, 100]
    assert weights(moto, world.listener_arn, world) == {stable: 0, canary: 100}
    assert service_of(moto, world, canary) == (2, "2.0.0")
    assert d.weights == {"stable": 0, "canary": 100}


def test_an_abort_writes_100_percent_stable_to_the_listener_first(moto, world, ecs_target):
    live(ecs_target)
    d = deploy(ecs_target, "2.0.0", canary_spec({"set_weight": 50}, {"pause": {}}))
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="50% on the canary")
    stable, canary = d.stable_slot, d.canary_slot
    assert weights(moto, world.listener_arn, world) == {stable: 50, canary: 50}
    actions.abort(factories.api_actor(), d.pk, reason="looks wrong")
    with session.journal() as calls:
        tick.tick(d.pk)
    d.refresh_from_db()
    # the tick's very first AWS call but for the fence check on the listener's tags, which
    # comes before every routing write (integrations.aws.fencing)
    fence = ("elasticloadbalancing:DescribeTags", "elasticloadbalancing:AddTags")
    assert [n for n, _ in calls[:2]] == list(fence)
    name, params = calls[2]
    assert name == "elasticloadbalancing:ModifyListener"
    groups = params["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    assert {g["TargetGroupArn"]: g["Weight"] for g in groups} == {
        world.target_groups[stable]: 100,
        world.target_groups[canary]: 0,
    }
    d = tick_until(d, lambda d: d.state == State.ABORTED, what="aborted")
    assert weights(moto, world.listener_arn, world) == {stable: 100, canary: 0}
    assert service_of(moto, world, stable) == (2, "1.0.0")


def rolled(target):
    """A rolling update of 4 replicas, batches of 2, surge 1, to success: the deployment and the
    (stable, canary) desired counts each tick saw, checked never to pass replicas + surge."""
    live(target, replicas=4)
    spec = {"kind": "rolling", "replicas": 4, "batch_size": 2, "max_surge": 1}
    d = deploy(target, "2.0.0", spec)
    stable, canary = d.stable_slot, d.canary_slot
    seen = []

    def observed(d):
        d.target.refresh_from_db()
        seen.append((d.target.observed[stable]["desired"], d.target.observed[canary]["desired"]))
        return d.state == State.SUCCEEDED

    d = tick_until(d, observed, what="success")
    during = seen[:-1]  # the done tick starts the previous release again (the rollback window)
    assert all(old + new <= 5 for old, new in during)  # never above replicas + max_surge
    return d, seen


def test_a_rolling_update_moves_the_replicas_and_ends_on_the_new_release(moto, world, ecs_target):
    d, seen = rolled(ecs_target)
    stable, canary = d.stable_slot, d.canary_slot
    assert (3, 2) in seen or (2, 2) in seen  # a batch of two
    assert service_of(moto, world, canary) == (4, "2.0.0")
    assert service_of(moto, world, stable) == (4, "1.0.0") and d.window_until is not None
    assert weights(moto, world.listener_arn, world) == {stable: 0, canary: 100}


class _App(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = b"ok"
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def preview_app():
    """A loopback HTTP server standing in for the new release behind the ALB's test listener:
    moto's load balancers carry no traffic, so the smoke checks need something real to GET."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_blue_green_previews_on_the_test_listener_then_switches_and_rolls_back(
    moto, world, ecs_target, preview_app
):
    ecs_target.config = {**ecs_target.config, "preview_endpoint": preview_app}
    ecs_target.save(update_fields=["config"])
    live(ecs_target)
    spec = {
        "kind": "blue_green",
        "replicas": 2,
        "preview_replicas": 1,
        "smoke": [{"path": "/health", "status": 200}],
        "auto_promote": 0,
        "scale_down_delay": "1h",
    }
    d = deploy(ecs_target, "2.0.0", spec)
    stable, canary = d.stable_slot, d.canary_slot
    d = tick_until(d, lambda d: (d.checks or {}).get("smoke"), what="the smoke checks")
    assert d.checks["smoke"]["passed"], d.checks["smoke"]
    assert weights(moto, world.test_listener_arn, world) == {stable: 0, canary: 100}
    assert weights(moto, world.listener_arn, world) == {stable: 100, canary: 0}
    d = tick_until(d, lambda d: d.weights.get("canary") == 100, what="the switch")
    assert weights(moto, world.listener_arn, world) == {stable: 0, canary: 100}
    assert service_of(moto, world, stable) == (2, "1.0.0")  # kept for an instant rollback
    actions.rollback(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: d.state == State.ROLLED_BACK, what="rolled back")
    assert weights(moto, world.listener_arn, world) == {stable: 100, canary: 0}


def test_a_permission_error_is_recorded_on_the_deployment(moto, world, ecs_target):
    ecs_target.config = {
        **ecs_target.config,
        "slots": {
            **ecs_target.config["slots"],
            "green": {
                "service": "api-missing",
                "target_group_arn": world.target_groups["green"],
            },
        },
    }
    ecs_target.save(update_fields=["config"])
    d = deploy(ecs_target, "1.0.0", {"kind": "recreate", "replicas": 1})
    d = tick_until(
        d, lambda d: d.state == State.FAILED or "api-missing" in d.message, what="the error"
    )
    assert "ecs:DescribeServices" in d.message and "api-missing" in d.message


def test_a_codedeploy_configuration_name_runs_as_its_canary(moto, world, ecs_target):
    live(ecs_target)
    d = deploy(ecs_target, "2.0.0", {"codedeploy": "ECSCanary10Percent5Minutes"})
    assert [s.get("set_weight") for s in d.strategy["steps"]] == [10, None, 100]
    d = tick_until(d, lambda d: d.weights.get("canary") == 10, what="10% on the canary")
    assert weights(moto, world.listener_arn, world)[d.canary_slot] == 10
    actions.promote(factories.api_actor(), d.pk)  # a person cuts the 5 minutes short
    d = tick_until(d, lambda d: d.state == State.SUCCEEDED, what="success")
    assert weights(moto, world.listener_arn, world)[d.canary_slot] == 100


def test_an_unknown_codedeploy_configuration_is_refused_naming_the_known_ones(ecs_target):
    from releases.errors import InvalidSpec

    with pytest.raises(InvalidSpec) as caught:
        actions.validate_strategy({"codedeploy": "ECSCanary50Percent"}, provider="aws-ecs")
    (error,) = caught.value.details["errors"]
    assert error["path"] == "codedeploy"
    assert "ECSLinear10PercentEvery1Minutes" in error["message"]


def test_sticky_users_are_refused_for_the_ecs_provider(ecs_target):
    from releases.errors import InvalidSpec

    spec = {"kind": "canary", "steps": [{"set_weight": 5}], "route": {"sticky_key": "cookie:u"}}
    with pytest.raises(InvalidSpec) as caught:
        actions.validate_strategy(spec, provider="aws-ecs")
    assert caught.value.details["missing_capabilities"] == ["sticky"]


def test_a_canary_with_a_header_rule_writes_it_on_the_listener_and_removes_it(
    moto, world, ecs_target
):
    """``route.header`` through the reconcile loop: while the canary runs, a listener rule sends
    ``X-Canary: always`` to the canary's target group (``never`` to the stable one); when it
    ends, the rules are gone and the listener forwards 100% to the new slot."""
    live(ecs_target)
    spec = {
        "kind": "canary",
        "steps": [{"set_weight": 10}, {"pause": {}}],
        "route": {"header": "X-Canary"},
        "stable_replicas": 2,
    }
    d = deploy(ecs_target, "2.0.0", spec)
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="the pause at 10%")
    elb = moto.client("elbv2")
    rules = [
        r
        for r in elb.describe_rules(ListenerArn=world.listener_arn)["Rules"]
        if r["Priority"] != "default"
    ]
    slot_of = {arn: slot for slot, arn in world.target_groups.items()}
    seen = {
        r["Conditions"][0]["HttpHeaderConfig"]["Values"][0]: slot_of[
            r["Actions"][0]["TargetGroupArn"]
        ]
        for r in rules
    }
    assert seen == {"always": d.canary_slot, "never": d.stable_slot}
    actions.promote(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: d.state == State.SUCCEEDED, what="success")
    rules = elb.describe_rules(ListenerArn=world.listener_arn)["Rules"]
    assert [r["Priority"] for r in rules] == ["default"]
    assert weights(moto, world.listener_arn, world)[d.canary_slot] == 100
