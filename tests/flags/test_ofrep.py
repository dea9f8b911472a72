"""The OpenFeature Remote Evaluation Protocol served by a live Django server, called by the real
OpenFeature SDK (``openfeature-sdk``) through its OFREP provider
(``openfeature-provider-ofrep``), and by plain HTTP for the bulk endpoint and its ETag."""

from __future__ import annotations

import httpx
import pytest
from openfeature import api as openfeature
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

from flags import actions, state
from flags.engine import evaluate
from tests.flags import generated
from tests.flags.conftest import load_generated, make_flag, url_of

pytestmark = pytest.mark.django_db(transaction=True)

COLOURS = [
    {"name": "blue", "weightType": "variable", "payload": {"type": "string", "value": "#00f"}},
    {"name": "red", "weightType": "variable", "payload": {"type": "string", "value": "#f00"}},
]


@pytest.fixture
def client(live_server, sdk_token, request):
    domain = request.node.name  # a provider per test: the SDK's registry is process-wide
    provider = OFREPProvider(
        url_of(live_server),
        headers_factory=lambda: {"Authorization": f"Bearer {sdk_token}"},
        timeout=5,
    )
    openfeature.set_provider(provider, domain)
    yield openfeature.get_client(domain)
    openfeature.clear_providers()


def ofrep_context(context: dict) -> EvaluationContext:
    attributes = {k: v for k, v in context.items() if k not in ("userId", "properties")}
    attributes.update(context.get("properties", {}))
    return EvaluationContext(targeting_key=context.get("userId"), attributes=attributes)


def test_a_boolean_flag_follows_its_rollout_for_each_user(client, actor, prod):
    make_flag(
        actor, prod, strategies=[{"name": "flexibleRollout", "parameters": {"rollout": "25"}}]
    )
    snapshot = state.current(prod.pk)
    on = 0
    for i in range(200):
        details = client.get_boolean_details("checkout", False, EvaluationContext(f"user-{i}"))
        expected = evaluate(snapshot.compiled, "checkout", {"userId": f"user-{i}"}).enabled
        assert details.value is expected
        assert details.reason == "TARGETING_MATCH" if expected else "DEFAULT"
        on += details.value
    assert 25 < on < 80


def test_a_string_flag_serves_its_variant_payload_or_its_default(client, actor, prod):
    flag = make_flag(actor, prod, "colour", kind="string", default_value="#000", variants=COLOURS)
    details = client.get_string_details("colour", "?", EvaluationContext("ann"))
    assert details.value in ("#00f", "#f00") and details.variant in ("blue", "red")
    assert details.reason == "SPLIT"
    actions.kill(actor, flag, prod, "bad colours")
    killed = client.get_string_details("colour", "?", EvaluationContext("ann"))
    assert (killed.value, killed.reason, killed.variant) == ("#000", "DISABLED", "default")


def test_number_and_json_flags_are_typed(client, actor, prod):
    make_flag(
        actor,
        prod,
        "limit",
        kind="number",
        default_value=10,
        variants=[{"name": "high", "payload": {"type": "number", "value": "50"}}],
    )
    make_flag(
        actor,
        prod,
        "layout",
        kind="json",
        default_value={"cols": 1},
        variants=[{"name": "wide", "payload": {"type": "json", "value": '{"cols": 3}'}}],
    )
    assert client.get_integer_value("limit", 0, EvaluationContext("ann")) == 50
    assert client.get_object_value("layout", {}, EvaluationContext("ann")) == {"cols": 3}


def test_an_unknown_flag_gives_the_code_default_with_flag_not_found(client, actor, prod):
    details = client.get_boolean_details("nope", True, EvaluationContext("ann"))
    assert details.value is True and details.error_code == "FLAG_NOT_FOUND"


def test_the_openfeature_sdk_agrees_with_switchyard_on_generated_contexts(client, actor, prod):
    """8 generated flags x 100 contexts through the SDK (one HTTP call each)."""
    load_generated(actor, prod, seed=7, features=8)
    snapshot = state.current(prod.pk)
    for context in list(generated.contexts(seed=3, count=100)):
        ofc = ofrep_context(context)
        for name in snapshot.compiled.names():
            ours = evaluate(snapshot.compiled, name, context)
            theirs = client.get_boolean_details(name, False, ofc)
            assert theirs.value is ours.enabled, (name, context)
            if ours.variant_name != "disabled":
                assert theirs.variant == ours.variant_name


def test_bulk_evaluation_agrees_with_the_engine_on_generated_contexts(
    live_server, actor, prod, sdk_token
):
    """40 generated flags x 500 contexts = 20,000 evaluations, one bulk call per context."""
    load_generated(actor, prod)
    snapshot = state.current(prod.pk)
    url = f"{url_of(live_server)}/ofrep/v1/evaluate/flags"
    with httpx.Client(headers={"Authorization": f"Bearer {sdk_token}"}, timeout=5) as http:
        for context in generated.contexts(seed=5, count=500):
            ofc = ofrep_context(context)
            body = {"context": {"targetingKey": ofc.targeting_key, **ofc.attributes}}
            if ofc.targeting_key is None:
                del body["context"]["targetingKey"]
            answer = {f["key"]: f for f in http.post(url, json=body).json()["flags"]}
            for name in snapshot.compiled.names():
                ours = evaluate(snapshot.compiled, name, context)
                assert answer[name]["value"] is ours.enabled, (name, context)


def test_bulk_evaluation_answers_304_until_the_answer_changes(live_server, actor, prod, sdk_token):
    flag = make_flag(actor, prod)
    make_flag(actor, prod, "colour", kind="string", default_value="#000", variants=COLOURS)
    url = f"{url_of(live_server)}/ofrep/v1/evaluate/flags"
    headers = {"Authorization": f"Bearer {sdk_token}"}
    body = {"context": {"targetingKey": "ann"}}
    first = httpx.post(url, json=body, headers=headers, timeout=5)
    assert first.status_code == 200
    assert {f["key"]: f["value"] for f in first.json()["flags"]}["checkout"] is True
    etag = first.headers["ETag"]
    same = httpx.post(url, json=body, headers={**headers, "If-None-Match": etag}, timeout=5)
    assert same.status_code == 304
    actions.kill(actor, flag, prod)
    after = httpx.post(url, json=body, headers={**headers, "If-None-Match": etag}, timeout=5)
    assert after.status_code == 200
    assert {f["key"]: f["value"] for f in after.json()["flags"]}["checkout"] is False


def test_bad_requests_are_ofrep_errors_not_500s(live_server, sdk_token, actor, prod):
    make_flag(actor, prod)
    url = f"{url_of(live_server)}/ofrep/v1/evaluate/flags/checkout"
    headers = {"X-API-Key": sdk_token, "Content-Type": "application/json"}
    parse = httpx.post(url, content=b"{nope", headers=headers, timeout=5)
    assert parse.status_code == 400 and parse.json()["errorCode"] == "PARSE_ERROR"
    context = httpx.post(url, json={"context": [1]}, headers=headers, timeout=5)
    assert context.status_code == 400 and context.json()["errorCode"] == "INVALID_CONTEXT"
    assert httpx.post(url, json={}, timeout=5).status_code == 401
    config = httpx.get(f"{url_of(live_server)}/ofrep/v1/configuration", headers=headers, timeout=5)
    assert "boolean" in config.json()["capabilities"]["flagEvaluation"]["supportedTypes"]
