"""The dashboard pages and the action buttons, through Django's test client."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from releases import commands
from releases.actors import Actor
from releases.models import Deployment, DeploymentEvent, State
from tests import factories

pytestmark = pytest.mark.django_db

OBSERVED = {
    "blue": {
        "role": "stable",
        "version": "1.0.0",
        "desired": 2,
        "ready": 2,
        "weight": 75,
        "instances": [
            {"id": "blue-1", "version": "1.0.0", "state": "ready"},
            {"id": "blue-2", "version": "1.0.0", "state": "ready"},
        ],
    },
    "green": {
        "role": "canary",
        "version": "1.1.0",
        "desired": 1,
        "ready": 0,
        "weight": 25,
        "instances": [{"id": "green-1", "version": "1.1.0", "state": "starting"}],
    },
}


def tick(d: Deployment, *, state: str | None = None, weights=None, step="batch 1 of 2") -> None:
    """What a reconcile tick records, through the same command the worker uses."""
    d.refresh_from_db()
    if d.state == State.PENDING:
        assert commands.mark_started(d)
    assert commands.record_tick(
        d,
        observed=OBSERVED,
        endpoint="http://127.0.0.1:9101",
        progress={},
        step_index=0,
        step=step,
        weights=weights if weights is not None else {"stable": 75, "canary": 25},
        message="waiting for green-1 to be ready",
        new_events=[{"kind": "step", "message": "batch 1 of 2: start 1 instance of 1.1.0"}],
        new_state=state,
    )
    d.refresh_from_db()


def ship(target, version: str) -> Deployment:
    """A deployment of ``version`` that ran to the end."""
    d = factories.make_deployment(target, version)
    tick(d, state=State.SUCCEEDED, weights={"stable": 0, "canary": 100})
    return d


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


def ui_actor(user):
    return Actor(user=user, channel="ui")


# --- signing in ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["board", "deployments"])
def test_it_sends_anonymous_visitors_to_the_login_page(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_sends_anonymous_visitors_of_a_deployment_to_the_login_page(client, live):
    response = client.get(reverse("deployment", args=[live.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_it_refuses_anonymous_actions(client, live):
    response = client.post(reverse("deployment-action", args=[live.pk, "pause"]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    live.refresh_from_db()
    assert live.state == State.PROGRESSING


def test_it_signs_in_and_lands_on_the_board(client, admin):
    page = client.get(reverse("login"))
    assert b'name="password"' in page.content
    response = client.post(reverse("login"), {"username": "admin", "password": "pw-for-tests"})
    assert response.status_code == 302
    assert response["Location"] == reverse("board")


def test_it_rejects_a_wrong_password(client, admin):
    response = client.post(reverse("login"), {"username": "admin", "password": "nope"})
    assert response.status_code == 200
    assert b"didn't match" in response.content


def test_it_signs_out_with_a_post(client_in):
    response = client_in.post(reverse("logout"))
    assert response.status_code == 302
    assert client_in.get(reverse("board")).status_code == 302


# --- the board ----------------------------------------------------------------------------------


def test_the_board_shows_services_environments_versions_and_active_deployments(client_in, live):
    factories.make_environment("prod")
    factories.make_service("web")
    response = client_in.get(reverse("board"))
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("Api", "Web", "Dev", "Prod", "1.0.0", "1.1.0", "progressing", "canary 25%"):
        assert text in html
    assert "batch 1 of 2" in html
    assert 'data-cell="api/dev"' in html
    assert 'data-cell="web/prod"' in html  # no target: a dash
    assert 'data-ws="/ws/board/"' in html
    assert "by admin" in html  # who shipped the stable 1.0.0


def test_the_board_orders_environments_by_their_promotion_order(client_in, service):
    for slug in ("prod", "dev", "staging"):
        factories.make_target(service, factories.make_environment(slug))
    html = client_in.get(reverse("board")).content.decode()
    assert html.index(">Dev<") < html.index(">Staging<") < html.index(">Prod<")


def test_the_board_marks_a_paused_deployment(client_in, live, admin):
    commands.pause(ui_actor(admin), live.pk)
    html = client_in.get(reverse("board")).content.decode()
    assert "cell-active state-paused" in html


def test_the_board_lists_recent_deployments(client_in, live):
    html = client_in.get(reverse("board")).content.decode()
    assert f'data-deployment-row="{live.pk}"' in html


def test_the_board_runs_a_fixed_number_of_queries(
    client_in, django_assert_max_num_queries, django_assert_num_queries
):
    def build(services, envs):
        for s in services:
            for e in envs:
                target = factories.make_target(
                    factories.make_service(s), factories.make_environment(e)
                )
                if not target.deployments.exists():
                    ship(target, f"{s}-1")
                    tick(factories.make_deployment(target, f"{s}-2"))

    build(["s1"], ["dev"])
    with django_assert_max_num_queries(12) as small:
        client_in.get(reverse("board"))
    build(["s1", "s2", "s3", "s4", "s5"], ["dev", "staging", "prod"])  # 1 cell -> 15 cells
    with django_assert_num_queries(len(small.captured_queries)):
        html = client_in.get(reverse("board")).content.decode()
    assert html.count("cell-active state-progressing") == 15


# --- the deployment page ------------------------------------------------------------------------


def test_the_deployment_page_shows_state_weights_and_instances(client_in, live):
    response = client_in.get(reverse("deployment", args=[live.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "data-d-state>progressing<" in html
    assert "rolling" in html
    assert ">1/2</span> batch 1 of 2" in html  # step index (1-based) of 2, and description
    assert "data-w-stable>75%" in html and "data-w-canary>25%" in html
    assert '<progress class="split" max="100" value="25"' in html
    for instance in ("blue-1", "blue-2", "green-1"):
        assert instance in html
    assert "starting" in html and "2/2" in html and "0/1" in html
    assert "waiting for green-1 to be ready" in html
    assert "batch 1 of 2: start 1 instance of 1.1.0" in html  # an event
    assert f'data-ws="/ws/deployments/{live.pk}/"' in html
    last = DeploymentEvent.objects.filter(deployment=live).latest("id")
    assert f'data-last-event="{last.pk}"' in html


def test_the_deployment_page_disables_what_the_state_does_not_allow(client_in, live):
    html = client_in.get(reverse("deployment", args=[live.pk])).content.decode()
    assert (
        '<button type="submit" class="btn btn-resume" disabled '
        'title="Resume needs the deployment to be paused; it is progressing.">'
    ) in html
    assert '<button type="submit" class="btn btn-pause">' in html
    assert "Roll back api in dev to 1.0.0?" in html


def test_the_deployment_page_is_a_404_for_an_unknown_deployment(client_in, db):
    assert client_in.get(reverse("deployment", args=[999999])).status_code == 404


def test_the_deployment_page_shows_a_failure_reason(client_in, live):
    commands.record_integration_error(live, "fleet agent refused: disk full", permanent=True)
    html = client_in.get(reverse("deployment", args=[live.pk])).content.decode()
    assert "rolling back" in html
    assert "fleet agent refused: disk full" in html


# --- the buttons ----------------------------------------------------------------------------------


def post(client, d, action, **extra):
    return client.post(reverse("deployment-action", args=[d.pk, action]), **extra)


def test_pause_then_resume_then_abort(client_in, live):
    response = post(client_in, live, "pause")
    assert response.status_code == 302
    assert response["Location"] == reverse("deployment", args=[live.pk])
    live.refresh_from_db()
    assert live.state == State.PAUSED

    post(client_in, live, "resume")
    live.refresh_from_db()
    assert live.state == State.PROGRESSING

    post(client_in, live, "abort", data={"reason": "error rate"})
    live.refresh_from_db()
    assert live.state == State.ROLLING_BACK
    assert live.rollback_outcome == State.ABORTED
    event = DeploymentEvent.objects.filter(deployment=live).latest("id")
    assert event.actor == "admin" and "(error rate)" in event.message


def test_promote_records_the_intent(client_in, live):
    post(client_in, live, "promote")
    live.refresh_from_db()
    assert live.intent == "promote"


def test_rollback_of_a_succeeded_deployment_opens_the_new_one(client_in, target):
    ship(target, "1.0.0")
    second = ship(target, "1.1.0")
    response = post(client_in, second, "rollback")
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


def test_the_json_variant_returns_the_deployment(client_in, live):
    response = post(client_in, live, "pause", headers={"accept": "application/json"})
    assert response.status_code == 200
    body = response.json()
    assert body["deployment"]["state"] == "paused"
    assert body["redirect"] is None


def test_the_json_variant_says_401_when_signed_out(client, live):
    response = post(client, live, "pause", headers={"accept": "application/json"})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_an_unknown_action_is_a_404(client_in, live):
    assert post(client_in, live, "explode").status_code == 404


def test_actions_need_a_post(client_in, live):
    response = client_in.get(reverse("deployment-action", args=[live.pk, "pause"]))
    assert response.status_code == 405


def test_actions_need_the_csrf_token(admin, live):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    assert post(client, live, "pause").status_code == 403
    live.refresh_from_db()
    assert live.state == State.PROGRESSING

    page = client.get(reverse("deployment", args=[live.pk]))
    token = page.context["csrf_token"]
    assert post(client, live, "pause", data={"csrfmiddlewaretoken": str(token)}).status_code == 302
    live.refresh_from_db()
    assert live.state == State.PAUSED


# --- lists ----------------------------------------------------------------------------------------


def test_the_deployment_list_filters_by_service_environment_and_state(client_in, live):
    other = factories.make_target(factories.make_service("web"), factories.make_environment("prod"))
    web = factories.make_deployment(other, "7.0.0")
    url = reverse("deployments")

    def rows(query):
        html = client_in.get(url, query).content.decode()
        return {d.pk for d in (live, web) if f'data-deployment-row="{d.pk}"' in html}

    assert rows({}) == {live.pk, web.pk}
    assert rows({"service": "web"}) == {web.pk}
    assert rows({"environment": "dev"}) == {live.pk}
    assert rows({"state": "pending"}) == {web.pk}
    assert rows({"state": "active"}) == {live.pk, web.pk}
    assert rows({"state": "succeeded"}) == set()


def test_the_release_page_shows_where_it_is_live(client_in, live):
    response = client_in.get(reverse("release", args=["api", "1.0.0"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "1.0.0" in html and "dev" in html and "&quot;sample&quot;" in html
    assert client_in.get(reverse("release", args=["api", "9.9.9"])).status_code == 404
