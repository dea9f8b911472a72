"""The kubernetes Target against a loopback fake of the Kubernetes API (fake_api.py here:
no kube-apiserver can run on these machines), driven by the official client over real HTTP:
slots as labelled Deployments, readiness from pods, conditional writes, errors a person can act
on."""

from __future__ import annotations

import time

import pytest

from integrations.base import IntegrationError, ReleaseRef
from tests.integrations.kubernetes.conftest import POD_TEMPLATE

V1 = ReleaseRef("1.0.0", {"image": "registry.example.com/api:1.0.0", "env": {"MODE": "fast"}})


def wait_ready(target, slot, count, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = target.status().slots.get(slot)
        if status is not None and status.ready == count:
            return status
        time.sleep(0.02)
    raise AssertionError(f"slot {slot} never had {count} ready pods: {status}")


def test_a_slot_is_a_labelled_deployment_running_the_release_image(cluster, make_target):
    make_target().ensure_slot("blue", V1, 2)
    dep = cluster.get("apps", "deployments", "api-blue")
    labels = dep["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "api"
    assert labels["app.kubernetes.io/instance"] == "api-blue"
    assert labels["app.kubernetes.io/version"] == "1.0.0"
    assert labels["app.kubernetes.io/managed-by"] == "switchyard"
    assert labels["switchyard.dev/slot"] == "blue"
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["selector"] == {
        "matchLabels": {"app.kubernetes.io/name": "api", "switchyard.dev/slot": "blue"}
    }
    template = dep["spec"]["template"]
    assert template["metadata"]["annotations"]["switchyard.dev/version"] == "1.0.0"
    assert template["metadata"]["labels"]["team"] == "shop"  # the template's own labels stay
    (container,) = template["spec"]["containers"]
    assert container["image"] == "registry.example.com/api:1.0.0"
    assert container["env"] == [
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "MODE", "value": "fast"},
    ]


def test_readiness_comes_from_the_pods(cluster, make_target):
    cluster.ready_after = 0.5
    target = make_target()
    target.ensure_slot("blue", V1, 2)
    first = target.status().slots["blue"]
    assert (first.version, first.desired, first.ready) == ("1.0.0", 2, 0)
    assert {i.state for i in first.instances} == {"starting"}
    ready = wait_ready(target, "blue", 2)
    assert all(i.address == "127.0.0.1:8080" for i in ready.instances)


def test_ensuring_the_same_slot_again_writes_nothing(cluster, make_target):
    target = make_target()
    target.ensure_slot("blue", V1, 2)
    before = len(cluster.requests)
    target.ensure_slot("blue", V1, 2)
    assert [m for m, _, _ in cluster.calls(before)] == ["GET"]  # one read, no write


def test_scaling_a_slot_replaces_it_with_the_read_resource_version(cluster, make_target):
    target = make_target()
    target.ensure_slot("blue", V1, 2)
    target.ensure_slot("blue", V1, 3)
    assert cluster.get("apps", "deployments", "api-blue")["spec"]["replicas"] == 3
    assert cluster.calls()[-1][0] == "PUT"


def test_a_conflicting_write_is_transient(cluster, make_target):
    target = make_target()
    target.ensure_slot("blue", V1, 2)
    cluster.conflict_next("update", "deployments")
    with pytest.raises(IntegrationError) as failed:
        target.ensure_slot("blue", V1, 4)
    assert not failed.value.permanent
    assert "conflict (409)" in failed.value.message
    target.ensure_slot("blue", V1, 4)  # the next tick reads again and succeeds
    assert cluster.get("apps", "deployments", "api-blue")["spec"]["replicas"] == 4


def test_a_missing_permission_is_permanent_and_names_the_verb_and_resource(cluster, make_target):
    target = make_target()
    target.ensure_slot("blue", V1, 2)
    cluster.forbid("update", "deployments")
    with pytest.raises(IntegrationError) as failed:
        target.ensure_slot("blue", V1, 3)
    assert failed.value.permanent
    assert "forbidden (403)" in failed.value.message
    assert 'cannot update resource "deployments" in API group "apps"' in failed.value.message


def test_a_missing_namespace_is_permanent(make_target):
    target = make_target(namespace="nowhere")
    with pytest.raises(IntegrationError) as failed:
        target.status()
    assert failed.value.permanent
    assert 'namespaces "nowhere" not found' in failed.value.message


def test_an_invalid_deployment_names_the_field(make_target):
    template = {"spec": {"containers": [POD_TEMPLATE["spec"]["containers"][0], {"name": "side"}]}}
    target = make_target(template={"manifest": template})
    with pytest.raises(IntegrationError) as failed:
        target.ensure_slot("blue", V1, 1)
    assert failed.value.permanent
    assert "spec.template.spec.containers[1].image" in failed.value.message


def test_an_artifact_without_an_image_is_refused_before_any_call(cluster, make_target):
    before = len(cluster.requests)
    with pytest.raises(IntegrationError) as failed:
        make_target().ensure_slot("blue", ReleaseRef("1.0.0", {"sample": {}}), 1)
    assert failed.value.permanent and '"image"' in failed.value.message
    assert cluster.calls(before) == []


def test_a_refused_token_is_permanent(cluster, make_target):
    cluster.token = "rotated"
    with pytest.raises(IntegrationError) as failed:
        make_target().status()
    assert failed.value.permanent and "refused the credentials (401)" in failed.value.message


def test_an_api_server_that_does_not_answer_is_transient(cluster, make_target):
    target = make_target()
    cluster.stop()
    with pytest.raises(IntegrationError) as failed:
        target.status()
    assert not failed.value.permanent
    assert "did not answer" in failed.value.message


def test_a_crash_looping_image_shows_crashed_pods_with_restarts(make_target):
    target = make_target()
    target.ensure_slot("green", ReleaseRef("2.0.0", {"image": "reg/api:crashloop"}), 2)
    time.sleep(0.15)
    slot = target.status().slots["green"]
    assert slot.failed == 2 and slot.ready == 0
    assert {i.state for i in slot.instances} == {"crashed"}
    assert all(i.restarts > 0 for i in slot.instances)
    assert {i.reason for i in slot.instances} == {"CrashLoopBackOff"}


def test_pods_that_miss_the_progress_deadline_count_as_crashed(cluster, make_target):
    cluster.ready_after = 3600  # never ready
    target = make_target(progress_deadline_seconds=1)
    target.ensure_slot("green", ReleaseRef("2.0.0", {"image": "reg/api:2"}), 1)
    assert target.status().slots["green"].instances[0].state == "starting"
    time.sleep(1.1)
    (pod,) = target.status().slots["green"].instances
    assert (pod.state, pod.reason) == ("crashed", "ProgressDeadlineExceeded")


def test_a_new_release_replaces_the_pods_of_the_old_template(make_target):
    target = make_target()
    target.ensure_slot("blue", V1, 1)
    wait_ready(target, "blue", 1)
    target.ensure_slot("blue", ReleaseRef("1.1.0", {"image": "reg/api:1.1.0"}), 1)
    slot = wait_ready(target, "blue", 1)
    assert slot.version == "1.1.0" and slot.instances[0].version == "1.1.0"


def test_it_adopts_the_pod_template_of_an_existing_deployment(cluster, make_target):
    cluster.put(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "api-legacy", "namespace": "shop"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "api"}},
                "template": {
                    "metadata": {"labels": {"app": "api"}},
                    "spec": {"containers": [{"name": "web", "image": "legacy:9"}]},
                },
            },
        }
    )
    target = make_target(template={"deployment": "api-legacy"}, container="web")
    target.ensure_slot("blue", V1, 1)
    template = cluster.get("apps", "deployments", "api-blue")["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == "registry.example.com/api:1.0.0"
    assert template["metadata"]["labels"]["app"] == "api"


def test_removing_a_slot_scales_its_deployment_to_zero(cluster, make_target):
    target = make_target()
    target.ensure_slot("blue", V1, 2)
    target.remove_slot("blue")
    assert cluster.get("apps", "deployments", "api-blue")["spec"]["replicas"] == 0
    assert target.status().slots["blue"].instances == ()


def test_status_uses_label_selected_calls_only(cluster, make_target):
    target = make_target()
    target.ensure_slot("blue", V1, 2)
    before = len(cluster.requests)
    target.status()
    calls = cluster.calls(before)
    lists = [c for c in calls if c[1].endswith(("/deployments", "/pods"))]
    assert len(calls) == 3 and len(lists) == 2
    assert all("labelSelector=app.kubernetes.io/managed-by" in q for _, _, q in lists)
