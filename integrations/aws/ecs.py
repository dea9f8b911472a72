"""The ``aws-ecs`` provider's ``Target``: ECS services behind an Application Load Balancer.

    target = EcsTarget("api.prod", {"cluster": "prod", "listener_arn": "arn:...:listener/...",
                                    "slots": {"blue": {"service": "api-blue",
                                                       "target_group_arn": "arn:..."},
                                              "green": {...}}})
    target.ensure_slot("green", ReleaseRef("1.4.2", {"image": "repo/api:1.4.2"}), replicas=3)
    target.set_weights({"blue": 90, "green": 10})

A slot is an existing ECS service with its own target group (created once, by Terraform or
CloudFormation, like CodeDeploy's blue-green); Switchyard never creates or deletes services, it
sets their task definition and desired count. A release's artifact is an image
(``{"image": "...", "container": "app"}``, the container optional): ``ensure_slot`` registers a
revision derived from the service's current one (``taskdefs``) unless the service already runs
it, then updates the service. Routing is the listener's (or rule's) weighted forward (``alb``);
with a ``test_listener_arn`` the preview slot gets 100% of the test listener (as CodeDeploy's
test traffic), and without a preview the test listener follows the production weights.

Readiness (``status``): a slot's ready count is the running count of its current revision (the
service's deployment for that task definition, or the service's running count less the tasks of
other revisions' deployments), capped by its healthy targets once the target group has any
registered (an approximation while old tasks of the same service still drain from the target
group); unhealthy targets and failed tasks (all of them once ECS' circuit breaker marks the
rollout FAILED) count as failed. ``remove_slot`` scales the service to 0. Header and cookie
rules (and Argo-style header routes) are listener rules forwarding to a slot's target group
(``alb_rules``); sticky routing is not offered (``integrations.registry``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from integrations.aws import fencing, taskdefs
from integrations.aws.alb import Forward, percentages
from integrations.aws.alb_rules import DEFAULT_PRIORITY, HeaderRules, wanted_rules
from integrations.aws.config import options_for
from integrations.aws.errors import calling
from integrations.aws.session import client
from integrations.base import (
    InstanceStatus,
    IntegrationError,
    ReleaseRef,
    Routing,
    SlotStatus,
    TargetStatus,
)

BAD_TARGET_STATES = ("unhealthy", "unavailable")
_endpoints: dict[str, str] = {}  # listener ARN -> URL (a load balancer's DNS name never changes)
_endpoints_lock = threading.Lock()


def image_of(release: ReleaseRef) -> str:
    image = (release.artifact or {}).get("image")
    if not isinstance(image, str) or not image:
        raise IntegrationError(
            f"release {release.version} has no image: an aws-ecs release's artifact is "
            '{"image": "repository/name:tag"}',
            permanent=True,
        )
    return image


class EcsTarget:
    # the reconcile loop's fence (``integrations.aws.fencing``): tagged on listeners and services
    fence: tuple[int, int] | None = None

    def __init__(self, key: str, config: dict[str, Any] | None, **settings: Any) -> None:
        self.key = key
        self.config = dict(config or {})
        self.options = options_for(self.config, settings)
        self.cluster = self.config.get("cluster", "default")
        self.slots: dict[str, dict[str, str]] = dict(self.config.get("slots") or {})
        self.container = self.config.get("container")
        self.ecs = client("ecs", self.options)
        self.elb = client("elbv2", self.options)
        self.forward = Forward(
            self.elb,
            listener_arn=self.config.get("listener_arn"),
            rule_arn=self.config.get("rule_arn"),
        )
        test = self.config.get("test_listener_arn")
        self.test = Forward(self.elb, listener_arn=test) if test else None

    # -- the Target protocol ------------------------------------------------------------------

    def ensure_slot(self, slot: str, release: ReleaseRef, replicas: int) -> None:
        image = image_of(release)
        container = (release.artifact or {}).get("container") or self.container
        service = self._services([slot])[slot]
        current = service["taskDefinition"]
        running = taskdefs.summary(self.ecs, current, container)
        change: dict[str, Any] = {}
        if running["version"] != release.version or running["image"] != image:
            change["taskDefinition"] = taskdefs.derive(
                self.ecs, current, image=image, version=release.version, container=container
            )
        if int(service.get("desiredCount", 0)) != replicas:
            change["desiredCount"] = replicas
        if not change:
            return
        name = self._slot(slot)["service"]
        self._claim(service)
        with calling("ecs", "UpdateService", self._service_text(name)):
            self.ecs.update_service(cluster=self.cluster, service=name, **change)
        if "desiredCount" in change and self.forward.is_even():
            self._write_even()

    def set_weights(self, weights: dict[str, int] | None) -> None:
        if weights is None:
            self._write_even()
            self.forward.mark(even=True)
            return
        self._write(self.forward, weights)
        self.forward.mark(even=False)

    def set_routing(self, routing: Routing) -> None:
        if routing.sticky_key:
            raise IntegrationError(
                "the aws-ecs provider cannot route by sticky_key", permanent=True
            )
        groups = {name: s["target_group_arn"] for name, s in self.slots.items()}
        rules = wanted_rules(routing, groups)  # refused (permanent) before anything is written
        self.set_weights(routing.weights)  # production traffic first: the timed path
        if self.test is not None:
            if routing.preview_slot:
                self._write(self.test, {routing.preview_slot: 100})
            elif routing.weights is not None:
                self._write(self.test, routing.weights)
        elif routing.preview_slot and not self.config.get("preview_endpoint"):
            raise IntegrationError(
                "a preview needs a test listener: set the target's test_listener_arn",
                permanent=True,
            )
        # header and cookie rules after the weights (an abort's 100% stable lands first)
        HeaderRules(
            self.elb,
            self._listener_arn(),
            base_rule_arn=self.config.get("rule_arn"),
            priority=int(self.config.get("header_rule_priority") or DEFAULT_PRIORITY),
        ).apply(rules)

    def status(self) -> TargetStatus:
        names = list(self.slots)
        services = self._services(names)
        weights = self._slot_weights(self.forward.read())
        even = self.forward.is_even()
        slots = {name: self._slot_status(name, services[name]) for name in names}
        preview_slot = None
        if self.test is not None:
            test = self._slot_weights(self.test.read())
            if test != weights:
                preview_slot = next((s for s, w in test.items() if w == 100), None)
        preview_endpoint = None
        if preview_slot or (self.test is None and self.config.get("preview_endpoint")):
            preview_endpoint = self.config.get("preview_endpoint") or self._endpoint_of(
                self.test.listener_arn
            )
        shown = None if even else weights
        return TargetStatus(
            endpoint=self.config.get("endpoint") or self._endpoint_of(self._listener_arn()),
            slots=slots,
            weights=shown,
            preview_endpoint=preview_endpoint,
            routing=Routing(weights=shown, preview_slot=preview_slot),
        )

    def remove_slot(self, slot: str) -> None:
        name = self._slot(slot)["service"]
        service = self._services([slot])[slot]
        if int(service.get("desiredCount", 0)) == 0:
            return
        self._claim(service)
        with calling("ecs", "UpdateService", self._service_text(name)):
            self.ecs.update_service(cluster=self.cluster, service=name, desiredCount=0)

    # -- reading ------------------------------------------------------------------------------

    def _slot(self, slot: str) -> dict[str, str]:
        if slot not in self.slots:
            known = ", ".join(sorted(self.slots)) or "none"
            raise IntegrationError(
                f"slot {slot!r} is not in the target's config (its slots: {known})",
                permanent=True,
            )
        return self.slots[slot]

    def _service_text(self, name: str) -> str:
        return f"service {name} in cluster {self.cluster}"

    def _services(self, slots: list[str]) -> dict[str, dict[str, Any]]:
        by_name = {self._slot(s)["service"]: s for s in slots}
        what = f"services {', '.join(by_name)} in cluster {self.cluster}"
        with calling("ecs", "DescribeServices", what):
            answer = self.ecs.describe_services(cluster=self.cluster, services=list(by_name))
        found = {}
        for service in answer.get("services", []):
            if service.get("status") == "ACTIVE":
                found[by_name.get(service["serviceName"], service["serviceName"])] = service
        missing = [name for name, slot in by_name.items() if slot not in found]
        if missing:
            raise IntegrationError(
                f"AWS ecs:DescribeServices on {what}: no active service {', '.join(missing)}; "
                "create it (with its target group) or fix the target's slots",
                permanent=True,
            )
        return found

    def _slot_status(self, slot: str, service: dict[str, Any]) -> SlotStatus:
        current = service["taskDefinition"]
        version = taskdefs.summary(self.ecs, current, self.container)["version"]
        desired = int(service.get("desiredCount", 0))
        deployments = service.get("deployments") or []
        mine = [d for d in deployments if d.get("taskDefinition") == current]
        others = sum(int(d.get("runningCount", 0)) for d in deployments if d not in mine)
        if mine:
            running = int(mine[0].get("runningCount", 0))
            failed = int(mine[0].get("failedTasks", 0))
            if mine[0].get("rolloutState") == "FAILED":  # ECS' circuit breaker gave up
                failed = max(failed, desired)
            since = mine[0].get("updatedAt") or mine[0].get("createdAt")
        else:  # no deployment recorded for this revision: what is not another revision's is
            running = max(0, int(service.get("runningCount", 0)) - others)
            failed = 0
            since = service.get("createdAt")
        ready_for = max(0.0, time.time() - since.timestamp()) if since is not None else 0.0
        ready, bad, instances = running, 0, []
        if desired or running:
            targets = self._target_health(self._slot(slot)["target_group_arn"])
            if targets:
                healthy = [t for t in targets if t["TargetHealth"]["State"] == "healthy"]
                bad = sum(1 for t in targets if t["TargetHealth"]["State"] in BAD_TARGET_STATES)
                ready = min(running, len(healthy))
        name = service["serviceName"]
        for i in range(max(desired, ready)):
            state = "ready" if i < ready else "starting"
            instances.append(
                InstanceStatus(
                    id=f"{name}/{i}",
                    slot=slot,
                    version=version or "",
                    state=state,
                    ready_for=ready_for if state == "ready" else 0.0,
                )
            )
        for i in range(min(bad + failed, max(desired, 1))):  # failedTasks is cumulative
            instances.append(
                InstanceStatus(
                    id=f"{name}/failed-{i}", slot=slot, version=version or "", state="unhealthy"
                )
            )
        return SlotStatus(name=slot, version=version, desired=desired, instances=tuple(instances))

    def _target_health(self, arn: str) -> list[dict[str, Any]]:
        with calling("elasticloadbalancing", "DescribeTargetHealth", f"target group {arn}"):
            return self.elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]

    def _slot_weights(self, by_group: dict[str, int]) -> dict[str, int]:
        slot_of = {s["target_group_arn"]: name for name, s in self.slots.items()}
        shares = percentages({slot_of.get(arn, arn): w for arn, w in by_group.items()})
        return {slot: shares.get(slot, 0) for slot in self.slots}

    def _listener_arn(self) -> str:
        if self.forward.listener_arn:
            return self.forward.listener_arn
        # a rule's ARN is its listener's with "-rule" and the rule's id added
        return self.forward.rule_arn.replace(":listener-rule/", ":listener/").rsplit("/", 1)[0]

    def _endpoint_of(self, listener_arn: str) -> str:
        with _endpoints_lock:
            known = _endpoints.get(listener_arn)
        if known:
            return known
        with calling("elasticloadbalancing", "DescribeListeners", f"listener {listener_arn}"):
            listener = self.elb.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]
        lb_arn = listener["LoadBalancerArn"]
        with calling("elasticloadbalancing", "DescribeLoadBalancers", f"load balancer {lb_arn}"):
            lb = self.elb.describe_load_balancers(LoadBalancerArns=[lb_arn])["LoadBalancers"][0]
        scheme = "https" if listener.get("Protocol") == "HTTPS" else "http"
        url = f"{scheme}://{lb['DNSName']}:{listener['Port']}"
        with _endpoints_lock:
            _endpoints[listener_arn] = url
        return url

    # -- writing ------------------------------------------------------------------------------

    def _write(self, forward: Forward, weights: dict[str, int]) -> None:
        unknown = sorted(set(weights) - set(self.slots))
        if unknown:
            self._slot(unknown[0])
        forward.write(
            {s["target_group_arn"]: int(weights.get(n, 0)) for n, s in self.slots.items()},
            fence=self.fence,
        )

    def _claim(self, service: dict[str, Any]) -> None:
        """Refuse a scale or revision change fenced older than the service's tag records;
        record a newer fence before the change (``integrations.aws.fencing``)."""
        if self.fence is None:
            return
        arn, what = service["serviceArn"], self._service_text(service["serviceName"])
        with calling("ecs", "ListTagsForResource", what):
            tags = self.ecs.list_tags_for_resource(resourceArn=arn).get("tags") or []
        recorded = next((t["value"] for t in tags if t.get("key") == fencing.FENCE_TAG), None)
        if fencing.check(self.fence, recorded, what):
            with calling("ecs", "TagResource", what):
                self.ecs.tag_resource(
                    resourceArn=arn,
                    tags=[{"key": fencing.FENCE_TAG, "value": fencing.text(self.fence)}],
                )

    def _write_even(self) -> None:
        services = self._services(list(self.slots))
        desired = {name: int(s.get("desiredCount", 0)) for name, s in services.items()}
        if not any(desired.values()):
            desired = dict.fromkeys(desired, 1)
        self._write(self.forward, percentages(desired))
