"""Unleash's client API served by a live Django server, read by the real Unleash Python SDK
(``UnleashClient``, whose evaluation is Unleash's own Rust engine): its answers must agree with
Switchyard's own evaluation of the same flags for thousands of generated contexts."""

from __future__ import annotations

import httpx
import pytest
from UnleashClient import UnleashClient

from flags import actions, sdk, state
from flags.engine import evaluate
from flags.models import EvaluationCount, SdkInstance
from tests.flags import generated
from tests.flags.conftest import load_generated, make_flag, url_of

pytestmark = pytest.mark.django_db(transaction=True)


def unleash(live_server, token, tmp_path, **options):
    client = UnleashClient(
        url=f"{url_of(live_server)}/api",
        app_name="agreement",
        custom_headers={"Authorization": token},
        cache_directory=str(tmp_path),
        request_timeout=5,
        request_retries=0,
        **{"refresh_interval": 1, "metrics_interval": 1, **options},
    )
    client.initialize_client()
    return client


def test_it_refuses_a_missing_or_wrong_sdk_token(live_server, sdk_token):
    url = f"{url_of(live_server)}/api/client/features"
    assert httpx.get(url, timeout=5).status_code == 401
    bad = httpx.get(url, headers={"Authorization": "swyf_nope_nope"}, timeout=5)
    assert bad.status_code == 401 and bad.json()["code"] == "not_authenticated"


def test_features_answer_304_while_nothing_changed(live_server, actor, prod, sdk_token):
    make_flag(actor, prod)
    url = f"{url_of(live_server)}/api/client/features"
    first = httpx.get(url, headers={"Authorization": sdk_token}, timeout=5)
    assert first.status_code == 200
    assert first.json()["features"][0]["name"] == "checkout"
    etag = first.headers["ETag"]
    again = httpx.get(url, headers={"Authorization": sdk_token, "If-None-Match": etag}, timeout=5)
    assert again.status_code == 304
    actions.kill(actor, actions.flag_by_key("checkout"), prod, "error spike")
    changed = httpx.get(url, headers={"Authorization": sdk_token, "If-None-Match": etag}, timeout=5)
    assert changed.status_code == 200 and changed.json()["features"][0]["enabled"] is False


def test_a_token_serves_its_own_environment_only(live_server, actor, prod, dev):
    make_flag(actor, prod, enabled=True)
    dev_token = sdk.create_token(actor, dev, "dev")[1]
    body = httpx.get(
        f"{url_of(live_server)}/api/client/features",
        headers={"Authorization": dev_token},
        timeout=5,
    ).json()
    assert [(f["name"], f["enabled"]) for f in body["features"]] == [("checkout", False)]


def test_the_unleash_sdk_agrees_with_switchyard_on_thousands_of_contexts(
    live_server, actor, prod, sdk_token, tmp_path
):
    """40 generated flags x 2,000 generated contexts = 80,000 evaluations by the SDK."""
    load_generated(actor, prod)
    snapshot = state.current(prod.pk)
    client = unleash(live_server, sdk_token, tmp_path, disable_metrics=True)
    try:
        assert client.is_initialized
        disagreements = []
        for context in generated.contexts():
            for name in snapshot.compiled.names():
                ours = evaluate(snapshot.compiled, name, context)
                theirs = client.get_variant(name, context)
                pair = (client.is_enabled(name, context), theirs["name"])
                if (ours.enabled, ours.variant_name) != pair:
                    disagreements.append((name, context, ours, pair))
        assert disagreements == []
    finally:
        client.destroy()


def test_sdks_register_and_send_their_evaluation_counts(
    live_server, actor, prod, sdk_token, tmp_path
):
    make_flag(actor, prod)
    client = unleash(live_server, sdk_token, tmp_path)
    try:
        for i in range(30):
            client.is_enabled("checkout", {"userId": f"u{i}"})
        generated.wait_for(lambda: EvaluationCount.objects.filter(flag__key="checkout").exists())
    finally:
        client.destroy()
    assert SdkInstance.objects.filter(app_name="agreement", environment=prod).exists()
    row = EvaluationCount.objects.get(flag__key="checkout", environment=prod)
    assert (row.yes, row.no) == (30, 0)


def test_the_kill_switch_reaches_a_polling_sdk_at_its_next_poll(
    live_server, actor, prod, sdk_token, tmp_path
):
    flag = make_flag(actor, prod)
    client = unleash(live_server, sdk_token, tmp_path, disable_metrics=True)
    try:
        assert client.is_enabled("checkout", {"userId": "u1"})
        actions.kill(actor, flag, prod, "checkout errors")
        generated.wait_for(lambda: not client.is_enabled("checkout", {"userId": "u1"}))
    finally:
        client.destroy()
