"""The ``aws-ecs`` provider in task-set mode: one ECS service with the ``EXTERNAL`` deployment
controller, a slot as a task set of it, each task set in its own target group.

    target = ecs_target("api.prod", {"mode": "task_sets", "cluster": "prod", "service": "api",
                                      "listener_arn": "arn:...:listener/...",
                                      "slots": {"blue": {"target_group_arn": "arn:..."},
                                                "green": {"target_group_arn": "arn:..."}}})

This is how CodeDeploy runs an ECS blue-green deployment (it owns the task sets of a
``CODE_DEPLOY`` service; an ``EXTERNAL`` one leaves them to us). A slot's task set is the one
whose ``externalId`` is ``switchyard-<slot>``; routing is the same ALB weighted forward as the
service mode (``integrations.aws.ecs``), one target group per slot.

- ``ensure_slot``: a task set's task definition cannot change, so a slot running another release
  gets a new task set (``CreateTaskSet``, on a revision derived from the service's primary task
  set's, as ``taskdefs``) in the slot's target group, and the old one is deleted after it
  (``DeleteTaskSet``); the same release only changes the scale (``UpdateTaskSet``).
- A task set's size is a percentage of the service's ``desiredCount`` (ECS rounds the product
  up: ``computedDesiredCount``). A slot's replicas are written as that percentage; when a slot
  needs more than the service's count, the count is raised first (the other task sets grow with
  it for an instant) and their percentages lowered to keep their sizes.
- ``set_weights``: the listener's weights (the timed path: an abort's 100% stable is the first
  write), then the slot given 100% becomes the service's primary task set
  (``UpdateServicePrimaryTaskSet``), as CodeDeploy does once traffic has moved.
- ``remove_slot``: ``DeleteTaskSet``; the primary task set cannot be deleted, so it is scaled to
  0% instead.
- ``status``: one ``DescribeServices`` (it carries the task sets); a slot's ready count is its
  task set's ``runningCount`` (when the answer has none, as moto's has not: its
  ``computedDesiredCount`` once ``STEADY_STATE``, which ECS defines as running = desired),
  capped by healthy targets as in service mode.

Fencing: the service carries the ``switchyard:fence`` tag, checked before every task-set change.
"""

from __future__ import annotations

import math
from typing import Any

from integrations.aws import taskdefs
from integrations.aws.ecs import EcsTarget, image_of
from integrations.aws.errors import calling
from integrations.base import IntegrationError, ReleaseRef, SlotStatus

EXTERNAL_ID = "switchyard-{slot}"


def ecs_target(key: str, config: dict[str, Any] | None, **settings: Any) -> EcsTarget:
    """The ``aws-ecs`` provider's target: task-set mode when the config says
    ``"mode": "task_sets"``, else a service per slot."""
    if (config or {}).get("mode") == "task_sets":
        return EcsTaskSetTarget(key, config, **settings)
    return EcsTarget(key, config, **settings)


def scale_for(count: int, service_desired: int) -> float:
    """The task set percentage ECS turns back into ``count`` tasks (it rounds up)."""
    if service_desired <= 0 or count <= 0:
        return 0.0
    return min(100.0, math.floor(100_000 * count / service_desired) / 1000)


def _scale_of(task_set: dict[str, Any]) -> float:
    return float((task_set.get("scale") or {}).get("value", 100.0))


def computed(task_set: dict[str, Any], service_desired: int) -> int:
    given = task_set.get("computedDesiredCount")
    if given is not None:
        return int(given)
    scale = float((task_set.get("scale") or {}).get("value", 100.0))
    return max(0, math.ceil(service_desired * scale / 100 - 1e-6))


class EcsTaskSetTarget(EcsTarget):
    def __init__(self, key: str, config: dict[str, Any] | None, **settings: Any) -> None:
        super().__init__(key, config, **settings)
        self.service_name = self.config.get("service") or ""
        self.container_port = self.config.get("container_port")
        self._primary: str | None = None  # the primary slot, as the last read saw it

    # -- the Target protocol ------------------------------------------------------------------

    def ensure_slot(self, slot: str, release: ReleaseRef, replicas: int) -> None:
        image = image_of(release)
        container = (release.artifact or {}).get("container") or self.container
        group = self._slot(slot)["target_group_arn"]
        service, sets = self._read()
        desired = int(service.get("desiredCount", 0))
        mine = sets.get(slot, [])
        current = mine[0] if mine else None
        if current is not None:
            running = taskdefs.summary(self.ecs, current["taskDefinition"], container)
            if running["version"] != release.version or running["image"] != image:
                current = None
        scale = scale_for(replicas, max(desired, replicas))
        grow = replicas > desired
        rescale = current is not None and _scale_of(current) != scale
        if not (grow or rescale or current is None):
            self._drop_leftovers(slot, mine, current)
            return
        self._claim(service)  # one fence check for every change below
        if grow:  # the service's count first: no task set shrinks meanwhile
            self._update_service(desiredCount=replicas)
            for other, others in sets.items():
                if other != slot and others:
                    self._scale(others[0], scale_for(computed(others[0], desired), replicas))
        if current is None:
            definition = taskdefs.derive(
                self.ecs,
                self._base_definition(service, sets),
                image=image,
                version=release.version,
                container=container,
            )
            current = self._create(service, slot, definition, group, container, scale)
        elif rescale:
            self._scale(current, scale)
        self._drop_leftovers(slot, mine, current)
        if self.forward.is_even():
            self._write_even()

    def _drop_leftovers(self, slot: str, mine: list[dict], current: dict[str, Any]) -> None:
        """Delete the slot's earlier task sets, once its current one exists."""
        for old in mine:
            if old["taskSetArn"] == current["taskSetArn"]:
                continue
            if old.get("status") == "PRIMARY":  # ECS deletes no primary task set
                self._set_primary(slot, current)
            self._delete(old)

    def set_weights(self, weights: dict[str, int] | None) -> None:
        super().set_weights(weights)
        full = [slot for slot, w in (weights or {}).items() if w == 100]
        if full and full[0] != self._primary:
            self._make_primary(full[0])

    def remove_slot(self, slot: str) -> None:
        service, sets = self._read()
        mine = sets.get(slot, [])
        if not mine:
            return
        self._claim(service)
        for task_set in mine:
            if task_set.get("status") == "PRIMARY":  # ECS refuses to delete the primary one
                if _scale_of(task_set) != 0.0:
                    self._scale(task_set, 0.0)
            else:
                self._delete(task_set)

    # -- reading ------------------------------------------------------------------------------

    def _service_text(self, name: str) -> str:
        return f"service {self.service_name} in cluster {self.cluster}"

    def _read(self) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
        """The service and, per slot, its task sets (newest first)."""
        what = self._service_text(self.service_name)
        with calling("ecs", "DescribeServices", what):
            answer = self.ecs.describe_services(cluster=self.cluster, services=[self.service_name])
        service = next((s for s in answer.get("services", []) if s.get("status") == "ACTIVE"), None)
        if service is None:
            raise IntegrationError(
                f"AWS ecs:DescribeServices on {what}: no active service {self.service_name}; "
                "create it with the EXTERNAL deployment controller or fix the target's service",
                permanent=True,
            )
        kind = (service.get("deploymentController") or {}).get("type", "ECS")
        if kind != "EXTERNAL":
            raise IntegrationError(
                f"{what} has the {kind} deployment controller: task-set mode needs a service "
                "created with deploymentController EXTERNAL",
                permanent=True,
            )
        by_id = {EXTERNAL_ID.format(slot=slot): slot for slot in self.slots}
        sets: dict[str, list[dict[str, Any]]] = {}
        for task_set in service.get("taskSets") or []:
            slot = by_id.get(task_set.get("externalId") or "")
            if slot is not None and task_set.get("status") in ("PRIMARY", "ACTIVE"):
                sets.setdefault(slot, []).append(task_set)
                if task_set.get("status") == "PRIMARY":
                    self._primary = slot
        for found in sets.values():
            found.sort(key=lambda t: t.get("createdAt") or 0, reverse=True)
        return service, sets

    def _services(self, slots: list[str]) -> dict[str, dict[str, Any]]:
        """Per slot, its task set seen as a service of its own (what ``EcsTarget`` reads)."""
        service, sets = self._read()
        desired = int(service.get("desiredCount", 0))
        out = {}
        for slot in slots:
            self._slot(slot)
            mine = (sets.get(slot) or [None])[0]
            seen: dict[str, Any] = {
                "serviceName": f"{self.service_name}/{slot}",
                "serviceArn": service["serviceArn"],
                "taskDefinition": None,
                "desiredCount": 0,
                "deployments": [],
            }
            if mine is not None:
                count = computed(mine, desired)
                running = mine.get("runningCount")
                if running is None:  # moto: STEADY_STATE means running == computed desired
                    running = count if mine.get("stabilityStatus") == "STEADY_STATE" else 0
                seen.update(
                    taskDefinition=mine["taskDefinition"],
                    desiredCount=count,
                    deployments=[
                        {
                            "taskDefinition": mine["taskDefinition"],
                            "runningCount": int(running),
                            "failedTasks": 0,
                            "updatedAt": mine.get("stabilityStatusAt") or mine.get("updatedAt"),
                        }
                    ],
                )
            out[slot] = seen
        return out

    def _slot_status(self, slot: str, service: dict[str, Any]) -> SlotStatus:
        if service["taskDefinition"] is None:
            return SlotStatus(name=slot, version=None, desired=0)
        return super()._slot_status(slot, service)

    def _base_definition(self, service: dict[str, Any], sets: dict[str, list]) -> str:
        everything = [t for found in sets.values() for t in found]
        primary = [t for t in everything if t.get("status") == "PRIMARY"]
        for task_set in primary + everything:
            return task_set["taskDefinition"]
        base = service.get("taskDefinition") or self.config.get("task_definition")
        if not base:
            raise IntegrationError(
                f"{self._service_text(self.service_name)} has no task set yet: name the task "
                "definition a first release derives from as the target's task_definition",
                permanent=True,
            )
        return base

    # -- writing ------------------------------------------------------------------------------

    def _claim(self, service: dict[str, Any]) -> None:
        super()._claim({**service, "serviceName": self.service_name})

    def _update_service(self, **change: Any) -> None:
        with calling("ecs", "UpdateService", self._service_text(self.service_name)):
            self.ecs.update_service(cluster=self.cluster, service=self.service_name, **change)

    def _create(
        self,
        service: dict[str, Any],
        slot: str,
        definition: str,
        group: str,
        container: str | None,
        scale: float,
    ) -> dict[str, Any]:
        described = taskdefs.describe(self.ecs, definition)["taskDefinition"]
        chosen = taskdefs.pick_container(described, container, definition)
        port = self.container_port or next(
            (m.get("containerPort") for m in chosen.get("portMappings") or []), None
        )
        if port is None:
            raise IntegrationError(
                f"container {chosen.get('name')} of {definition} maps no port: set the target's "
                "container_port (the port its target group sends to)",
                permanent=True,
            )
        request: dict[str, Any] = {
            "cluster": self.cluster,
            "service": self.service_name,
            "taskDefinition": definition,
            "externalId": EXTERNAL_ID.format(slot=slot),
            "loadBalancers": [
                {"targetGroupArn": group, "containerName": chosen["name"], "containerPort": port}
            ],
            "scale": {"value": scale, "unit": "PERCENT"},
        }
        for key in ("launchType", "networkConfiguration", "platformVersion"):
            if service.get(key):
                request[key] = service[key]
        if service.get("capacityProviderStrategy"):
            request["capacityProviderStrategy"] = service["capacityProviderStrategy"]
            request.pop("launchType", None)
        with calling("ecs", "CreateTaskSet", self._service_text(self.service_name)):
            return self.ecs.create_task_set(**request)["taskSet"]

    def _scale(self, task_set: dict[str, Any], scale: float) -> None:
        with calling("ecs", "UpdateTaskSet", f"task set {task_set['taskSetArn']}"):
            self.ecs.update_task_set(
                cluster=self.cluster,
                service=self.service_name,
                taskSet=task_set["taskSetArn"],
                scale={"value": scale, "unit": "PERCENT"},
            )

    def _delete(self, task_set: dict[str, Any]) -> None:
        with calling("ecs", "DeleteTaskSet", f"task set {task_set['taskSetArn']}"):
            self.ecs.delete_task_set(
                cluster=self.cluster, service=self.service_name, taskSet=task_set["taskSetArn"]
            )

    def _make_primary(self, slot: str) -> None:
        service, sets = self._read()
        mine = sets.get(slot)
        if not mine or mine[0].get("status") == "PRIMARY":
            return
        self._claim(service)
        self._set_primary(slot, mine[0])

    def _set_primary(self, slot: str, task_set: dict[str, Any]) -> None:
        with calling("ecs", "UpdateServicePrimaryTaskSet", self._service_text(self.service_name)):
            self.ecs.update_service_primary_task_set(
                cluster=self.cluster,
                service=self.service_name,
                primaryTaskSet=task_set["taskSetArn"],
            )
        self._primary = slot
