"""Signing in, the board and the deployment list, through Django's test client."""

from __future__ import annotations

import pytest
from django.urls import reverse

from releases import actions
from releases.models import State
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


# --- signing in ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["board", "deployments", "history", "audit"])
def test_it_sends_anonymous_visitors_to_the_login_page(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


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
    assert '<span style="width: 25%"></span>' in html  # the canary's share, as a small bar
    assert 'data-cell="api/dev"' in html
    assert 'data-cell="web/prod"' in html  # no target: a dash
    assert 'data-ws="/ws/board/"' in html
    assert "by admin" in html  # who shipped the stable 1.0.0
    assert "cell cell-alert" not in html


def test_the_board_orders_environments_by_their_promotion_order(client_in, service):
    for slug in ("prod", "dev", "staging"):
        factories.make_target(service, factories.make_environment(slug))
    html = client_in.get(reverse("board")).content.decode()
    assert html.index(">Dev<") < html.index(">Staging<") < html.index(">Prod<")


def test_the_board_paints_a_paused_deployment_red_and_says_why(client_in, live, admin):
    actions.pause(ui_actor(admin), live.pk)
    html = client_in.get(reverse("board")).content.decode()
    assert "cell-active state-paused" in html
    assert '<td class="cell cell-alert"' in html
    assert "paused: waiting for someone to resume" in html


def test_the_board_paints_a_canary_waiting_for_promotion_red(client_in, live):
    live.strategy = {"kind": "canary", "steps": [{"set_weight": 10}, {"pause": {}}]}
    live.save(update_fields=["strategy"])
    tick(live, progress={"index": 1})
    html = client_in.get(reverse("board")).content.decode()
    assert "waiting for someone to promote" in html
    assert "cell cell-alert" in html


def test_the_board_shows_a_failed_last_deployment_in_red(client_in, live):
    tick(live, state=State.ROLLING_BACK, failure="error rate 12% > 5%")
    tick(live, state=State.FAILED)
    html = client_in.get(reverse("board")).content.decode()
    assert f'<a class="cell-failed" href="/deployments/{live.pk}/">' in html
    assert "last deployment (1.1.0) failed" in html
    assert "cell cell-alert" in html


def test_the_board_lists_recent_deployments(client_in, live):
    html = client_in.get(reverse("board")).content.decode()
    assert f'data-deployment-row="{live.pk}"' in html


def test_the_board_filters_by_team_service_and_environment(client_in, live, prod):
    web = factories.make_service("web", team="storefront")
    factories.make_target(web, prod)
    api = live.target.service
    api.team = "payments"
    api.save()

    def shown(query):
        html = client_in.get(reverse("board"), query).content.decode()
        cells = {"api/dev", "api/prod", "web/dev", "web/prod"}
        return {c for c in cells if f'data-cell="{c}"' in html}

    assert shown({}) == {"api/dev", "api/prod", "web/dev", "web/prod"}
    assert shown({"team": "storefront"}) == {"web/dev", "web/prod"}
    assert shown({"service": "api"}) == {"api/dev", "api/prod"}
    assert shown({"environment": "prod"}) == {"api/prod", "web/prod"}
    assert shown({"team": "payments", "environment": "dev"}) == {"api/dev"}
    html = client_in.get(reverse("board"), {"environment": "prod"}).content.decode()
    assert f'data-deployment-row="{live.pk}"' not in html  # recent deployments are filtered too
    assert (
        '<option value="storefront" selected>'
        in client_in.get(reverse("board"), {"team": "storefront"}).content.decode()
    )


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


# --- the list of deployments --------------------------------------------------------------------


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


def test_the_board_shows_only_what_the_user_may_see(client, live, prod, service):
    factories.make_target(service, prod)
    factories.make_target(factories.make_service("web"), prod)
    client.force_login(factories.make_persona("viewer", prod))
    html = client.get(reverse("board")).content.decode()
    assert 'data-cell="api/prod"' in html and 'data-cell="web/prod"' in html
    assert 'data-cell="api/dev"' not in html and ">Dev<" not in html
    assert f'data-deployment-row="{live.pk}"' not in html


def test_an_outsider_sees_an_empty_board(client, live):
    client.force_login(factories.make_persona("outsider"))
    html = client.get(reverse("board")).content.decode()
    assert "data-cell=" not in html
