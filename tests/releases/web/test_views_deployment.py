"""One deployment's page, its buttons and their confirmations, through Django's test client."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.urls import reverse

from releases import actions
from releases.live import charts
from releases.models import Deployment, DeploymentEvent, State
from tests import factories
from tests.releases.web.test_views_common import ship, tick, ui_actor

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_in(admin, client):
    client.force_login(admin)
    return client


@pytest.fixture
def live(target):
    """api in dev: 1.0.0 is stable, 1.1.0 is rolling out (progressing, canary 25%)."""
    ship(target, "1.0.0")
    d = factories.make_deployment(target, "1.1.0")
    tick(d)
    return d


def page(client, d) -> str:
    response = client.get(reverse("deployment", args=[d.pk]))
    assert response.status_code == 200
    return response.content.decode()


def post(client, d, action, **extra):
    return client.post(reverse("deployment-action", args=[d.pk, action]), **extra)


def confirmed(data=None):
    return {"confirmed": "1", **(data or {})}


# --- who may look ---------------------------------------------------------------------------------


def test_it_sends_anonymous_visitors_of_a_deployment_to_the_login_page(client, live):
    response = client.get(reverse("deployment", args=[live.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_it_refuses_anonymous_actions(client, live):
    response = post(client, live, "pause", data=confirmed())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    live.refresh_from_db()
    assert live.state == State.PROGRESSING


def test_the_deployment_page_is_a_404_for_an_unknown_deployment(client_in, db):
    assert client_in.get(reverse("deployment", args=[999999])).status_code == 404


# --- what the page shows --------------------------------------------------------------------------


def test_the_deployment_page_shows_state_split_steps_and_instances(client_in, live):
    html = page(client_in, live)
    assert "data-d-state>progressing<" in html
    assert "rolling" in html
    assert ">1/2</span> batch 1 of 2" in html  # step index (1-based) of 2, and description
    assert '<div class="seg seg-stable" data-seg="stable" style="width: 75%">' in html
    assert '<div class="seg seg-canary" data-seg="canary" style="width: 25%">' in html
    assert 'data-w="stable">75%' in html and 'data-w="canary">25%' in html
    stable, canary = live.stable_slot, live.canary_slot
    assert f'aria-label="stable {stable} 75%, canary {canary} 25%"' in html
    assert '<li class="current" aria-current="step">batch 1 of 2' in html
    for instance in ("blue-1", "blue-2", "green-1"):
        assert instance in html
    assert "starting" in html and "2/2" in html and "0/1" in html and "↻2" in html
    assert "waiting for green-1 to be ready" in html
    assert "batch 1 of 2: start 1 instance of 1.1.0" in html  # an event
    assert f'data-ws="/ws/deployments/{live.pk}/"' in html
    last = DeploymentEvent.objects.filter(deployment=live).latest("id")
    assert f'data-last-event="{last.pk}"' in html


def test_the_deployment_page_shows_an_empty_analysis_area_and_empty_charts(client_in, live):
    html = page(client_in, live)
    assert "No analysis has run for this deployment." in html
    for chart in ("rps", "error_rate", "p95_ms", "p99_ms"):
        assert f'data-chart="{chart}"' in html
    slots = f'data-stable-slot="{live.stable_slot}" data-canary-slot="{live.canary_slot}"'
    assert slots in html
    assert "No requests sampled in the last 15 minutes." in html


def test_the_deployment_page_shows_the_latest_request_sample(client_in, live, monkeypatch):
    sample = {
        "t": time.time(),
        "slots": {
            live.stable_slot: {"rps": 40.0, "error_rate": 0.0, "p95_ms": 12.0, "p99_ms": 20.0},
            live.canary_slot: {"rps": 12.5, "error_rate": 0.125, "p95_ms": 180.4, "p99_ms": None},
        },
    }
    monkeypatch.setattr(charts, "latest", lambda target_id: sample)
    html = page(client_in, live)
    assert 'data-latest="stable">40.0/s<' in html and 'data-latest="canary">12.5/s<' in html
    assert 'data-latest="canary">12.50%<' in html
    assert 'data-latest="canary">180 ms<' in html
    assert 'data-latest="canary">—<' in html  # no p99 in that sample
    assert "No requests sampled" in html and "data-metrics-empty hidden" in html


def test_the_deployment_page_counts_down_a_timed_pause(client_in, live):
    live.strategy = {
        "kind": "canary",
        "steps": [{"set_weight": 10}, {"pause": {"duration": 300.0}}, {"set_weight": 50}],
    }
    live.save(update_fields=["strategy"])
    tick(live, progress={"index": 1, "pause_started_at": time.time()})
    html = page(client_in, live)
    assert 'data-pause-kind="timed"' in html
    assert "Pausing until" in html and "Promote skips the wait" in html


def test_the_deployment_page_says_when_it_waits_for_a_person(client_in, live, admin):
    actions.pause(ui_actor(admin), live.pk)
    html = page(client_in, live)
    assert 'data-pause-kind="operator"' in html
    assert "Paused by an operator" in html


def test_the_deployment_page_shows_a_failure_reason(client_in, live):
    actions.record_integration_error(live, "fleet agent refused: disk full", permanent=True)
    html = page(client_in, live)
    assert "rolling back" in html
    assert "fleet agent refused: disk full" in html


def test_the_deployment_page_shows_analysis_runs(client_in, live, monkeypatch):
    from releases.web import deployment

    run = {
        "id": 1,
        "name": "error-rate",
        "step_index": 2,
        "phase": "failed",
        "decision": "fail",
        "why": "the canary's error rate is 4x the baseline's",
        "metrics": [
            {
                "name": "error rate",
                "unit": "ratio",
                "baseline": {"count": 400, "total": 400, "errors": 2, "rate": 0.005},
                "canary": {"count": 95, "total": 95, "errors": 2, "rate": 0.021},
                "threshold": "≤ 1.0",
                "verdict": "failed",
                "why": "above the threshold",
                "measurements": 3,
                "count": 10,
                # what releases.live.runs.run_dict adds: the text, never the dicts above
                "shown": {
                    "baseline": "400 requests · 2 errors (0.5%)",
                    "canary": "95 requests · 2 errors (2.1%)",
                    "shift": "",
                    "evidence": "evidence 240 >= 200",
                    "statistic": "",
                },
            }
        ],
    }
    real = deployment.deployment_dict
    monkeypatch.setattr(deployment, "deployment_dict", lambda d: {**real(d), "analysis": [run]})
    html = page(client_in, live)
    assert "error-rate" in html and "the canary&#x27;s error rate is 4x" in html
    assert 'data-side="baseline">400 requests · 2 errors (0.5%)</td>' in html
    assert "<span data-evidence>evidence 240 &gt;= 200</span>" in html
    assert "{" not in html.split("data-analysis", 1)[1].split("</section>", 1)[0]
    assert "No analysis has run" not in html


# --- the buttons ----------------------------------------------------------------------------------


def test_the_buttons_say_why_they_are_off_and_what_they_will_do(client_in, live):
    html = page(client_in, live)
    assert (
        '<button type="submit" class="btn btn-resume" disabled '
        'title="Resume needs the deployment to be paused; it is progressing."'
    ) in html
    assert (
        '<li id="why-resume" data-reason="resume"><b>Resume</b> is off: '
        "Resume needs the deployment to be paused; it is progressing.</li>"
    ) in html
    assert 'class="btn btn-pause" title="Pause the rollout of api 1.1.0 in dev?' in html
    assert 'data-confirm="Send 100% of api in dev to 1.1.0 now, skipping the remaining steps?"' in (
        html
    )
    assert "Move api 1.1.0 in dev on to the next step: batch 2 of 2" in html
    assert "Roll back: send 100% of api in dev back to 1.0.0 and stop 1.1.0?" in html
    assert "Abort: send 100% of api in dev back to 1.0.0 and stop 1.1.0?" in html


def test_a_succeeded_deployment_offers_only_a_rollback_to_the_previous_release(client_in, target):
    ship(target, "1.0.0")
    second = ship(target, "1.1.0")
    html = page(client_in, second)
    assert (
        "Roll back api in dev: deploy 1.0.0 again (every instance at once) and retire 1.1.0?"
        in (html)
    )
    assert '<button type="submit" class="btn btn-rollback" title=' in html
    for name in ("promote", "promote_full", "pause", "resume", "abort"):
        assert f'class="btn btn-{name}" disabled' in html


def test_rollback_is_off_for_a_deployment_a_later_one_replaced(client_in, target):
    ship(target, "1.0.0")
    older = ship(target, "1.1.0")
    ship(target, "1.2.0")
    html = page(client_in, older)
    assert 'class="btn btn-rollback" disabled' in html
    assert "A later deployment replaced this one" in html


def test_the_buttons_partial_is_what_the_page_shows(client_in, live):
    response = client_in.get(reverse("deployment-actions", args=[live.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div class="buttons">')
    assert "<html" not in html
    assert 'data-action="promote_full"' in html and "csrfmiddlewaretoken" in html


def test_without_javascript_a_button_asks_for_confirmation_first(client_in, live):
    response = post(client_in, live, "abort", data={"reason": "too slow"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Abort: send 100% of api in dev back to 1.0.0 and stop 1.1.0?" in html
    assert 'name="confirmed" value="1"' in html and 'value="too slow"' in html
    live.refresh_from_db()
    assert live.state == State.PROGRESSING  # nothing happened yet


def test_pause_then_resume_then_abort(client_in, live):
    response = post(client_in, live, "pause", data=confirmed())
    assert response.status_code == 302
    assert response["Location"] == reverse("deployment", args=[live.pk])
    live.refresh_from_db()
    assert live.state == State.PAUSED

    post(client_in, live, "resume", data=confirmed())
    live.refresh_from_db()
    assert live.state == State.PROGRESSING

    post(client_in, live, "abort", data=confirmed({"reason": "error rate"}))
    live.refresh_from_db()
    assert live.state == State.ROLLING_BACK
    assert live.rollback_outcome == State.ABORTED
    event = DeploymentEvent.objects.filter(deployment=live).latest("id")
    assert event.actor == "admin" and "(error rate)" in event.message


def test_promote_and_promote_full_record_the_intent(client_in, live):
    post(client_in, live, "promote", data=confirmed())
    live.refresh_from_db()
    assert live.intent == "promote"
    post(client_in, live, "promote_full", data=confirmed())
    live.refresh_from_db()
    assert live.intent == "promote_full"


def test_rollback_of_a_succeeded_deployment_opens_the_new_one(client_in, target):
    ship(target, "1.0.0")
    second = ship(target, "1.1.0")
    response = post(client_in, second, "rollback", data=confirmed())
    rollback = Deployment.objects.get(rollback_of=second)
    assert response["Location"] == reverse("deployment", args=[rollback.pk])
    assert rollback.release.version == "1.0.0"


def test_a_disallowed_command_shows_why_and_changes_nothing(client_in, live):
    before = live.version
    response = post(client_in, live, "resume", follow=True)
    assert response.status_code == 200
    assert b"Cannot resume deployment" in response.content
    assert b'class="flash-error"' in response.content
    live.refresh_from_db()
    assert live.state == State.PROGRESSING
    assert live.version == before


def test_the_json_variant_returns_409_with_code_and_message(client_in, live):
    response = post(client_in, live, "resume", headers={"accept": "application/json"})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "conflict"
    assert body["message"].startswith(f"Cannot resume deployment {live.pk}: it is progressing")


def test_the_json_variant_returns_the_deployment_at_once(client_in, live):
    response = post(client_in, live, "pause", headers={"accept": "application/json"})
    assert response.status_code == 200
    body = response.json()
    assert body["deployment"]["state"] == "paused"
    assert body["deployment"]["pause"] == {"kind": "operator", "until": None, "why": ""}
    assert body["redirect"] is None


def test_the_json_variant_says_401_when_signed_out(client, live):
    response = post(client, live, "pause", headers={"accept": "application/json"})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_the_json_variant_says_404_for_an_unknown_deployment(client_in, db):
    response = client_in.post(
        reverse("deployment-action", args=[999999, "pause"]),
        headers={"accept": "application/json"},
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_an_unknown_action_is_a_404(client_in, live):
    assert post(client_in, live, "explode").status_code == 404


def test_actions_need_a_post(client_in, live):
    response = client_in.get(reverse("deployment-action", args=[live.pk, "pause"]))
    assert response.status_code == 405


def test_actions_need_the_csrf_token(admin, live):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    assert post(client, live, "pause", data=confirmed()).status_code == 403
    live.refresh_from_db()
    assert live.state == State.PROGRESSING

    response = client.get(reverse("deployment", args=[live.pk]))
    token = str(response.context["csrf_token"])
    response = post(client, live, "pause", data=confirmed({"csrfmiddlewaretoken": token}))
    assert response.status_code == 302
    live.refresh_from_db()
    assert live.state == State.PAUSED


# --- roles (releases.governance.policy): the same answers as the API ------------------------------


def test_a_viewer_sees_every_button_off_with_the_role_it_needs(client, live, dev):
    client.force_login(factories.make_persona("viewer", dev))
    html = page(client, live)
    assert 'class="btn btn-pause" disabled' in html
    assert (
        "<b>Pause</b> is off: You may not pause the deployment here: it needs the deployer role "
        "on api in dev; you are a viewer there."
    ) in html
    # the state's reason comes first when both apply
    assert "<b>Resume</b> is off: Resume needs the deployment to be paused" in html


def test_a_viewer_cannot_act_even_by_posting(client, live, dev):
    client.force_login(factories.make_persona("viewer", dev))
    response = post(client, live, "pause", headers={"accept": "application/json"})
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    response = post(client, live, "pause", data=confirmed(), follow=True)
    assert b"needs the deployer role" in response.content
    live.refresh_from_db()
    assert live.state == State.PROGRESSING


def test_a_deployer_may_act(client, live, dev):
    client.force_login(factories.make_persona("deployer", dev))
    assert 'class="btn btn-pause" title=' in page(client, live)
    assert post(client, live, "pause", data=confirmed()).status_code == 302
    live.refresh_from_db()
    assert live.state == State.PAUSED


def test_an_outsider_learns_nothing(client, live, prod):
    client.force_login(factories.make_persona("viewer", prod))  # a viewer elsewhere
    assert client.get(reverse("deployment", args=[live.pk])).status_code == 404
    assert client.get(reverse("deployment-actions", args=[live.pk])).status_code == 404
    response = post(client, live, "pause", headers={"accept": "application/json"})
    assert response.status_code == 404
    assert (
        f'data-deployment-row="{live.pk}"'
        not in client.get(reverse("deployments")).content.decode()
    )


# --- where it runs --------------------------------------------------------------------------------


def test_the_page_of_a_kubernetes_deployment_shows_cluster_namespace_and_router(client_in):
    from tests.integrations.kubernetes.conftest import target_config

    config = target_config({"kind": "istio", "virtual_service": "api"})
    target = factories.make_target(provider="kubernetes", config=config)
    d = factories.make_deployment(target, "1.0.0")
    html = page(client_in, d)
    assert "Runs on" in html
    assert "dev · shop/api · istio" in html


def test_a_local_deployment_page_has_no_runs_on_line(client_in, live):
    assert "Runs on" not in page(client_in, live)
