"""The flag pages: the list and a flag's page, its kill switch and on/off buttons (through the
actions, with roles: deployer acts, viewer only sees, outsider gets 404)."""

from __future__ import annotations

import pytest
from django.test import Client

from flags import sdk
from flags.models import FlagSetting
from tests import factories
from tests.flags.conftest import make_flag

pytestmark = pytest.mark.django_db


def browser(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_list_shows_each_flag_state_per_environment(prod, dev, admin):
    make_flag(
        factories.api_actor(admin),
        prod,
        strategies=[{"name": "flexibleRollout", "parameters": {"rollout": "5"}}],
    )
    page = browser(factories.make_persona("viewer", prod)).get("/flags/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "checkout" in html and "1 strategy" in html


def test_a_deployer_pulls_the_kill_switch_from_the_flag_page(prod, admin):
    flag = make_flag(factories.api_actor(admin), prod)
    client = browser(factories.make_persona("deployer", prod))
    assert "Kill switch" in client.get("/flags/checkout/").content.decode()
    response = client.post("/flags/checkout/prod/kill/", {"reason": "errors"}, follow=True)
    assert "killed" in response.content.decode()
    setting = FlagSetting.objects.get(flag=flag, environment=prod)
    assert setting.killed and setting.kill_reason == "errors" and not setting.serving
    assert "flag.kill" in response.content.decode()  # the history names it


def test_a_viewer_has_no_buttons_and_cannot_post_them(prod, admin):
    flag = make_flag(factories.api_actor(admin), prod)
    client = browser(factories.make_persona("viewer", prod))
    assert "Kill switch" not in client.get("/flags/checkout/").content.decode()
    response = client.post("/flags/checkout/prod/kill/", follow=True)
    assert "needs the deployer role" in response.content.decode()
    assert not FlagSetting.objects.get(flag=flag, environment=prod).killed


def test_an_outsider_gets_404(prod, admin):
    make_flag(factories.api_actor(admin), prod)
    client = browser(factories.make_persona("outsider"))
    assert client.get("/flags/").status_code == 404
    assert client.get("/flags/checkout/").status_code == 404


def test_the_flag_page_shows_evaluation_counts(prod, admin):
    flag = make_flag(factories.api_actor(admin), prod)
    sdk.count(prod.pk, flag.key, True, None)
    sdk.count(prod.pk, flag.key, False, None)
    sdk.flush_if_due(force=True)
    html = browser(admin).get("/flags/checkout/").content.decode()
    assert "Not evaluated" not in html
    assert FlagSetting.objects.get(flag=flag).last_evaluated_at is not None
