"""The API's contract, checked by schemathesis over the live OpenAPI documents.

A real uvicorn serves the ASGI app (as in production) on a free loopback port, on this test
session's Postgres database; schemathesis loads ``/api/v1/openapi.json`` (the releases and
notifications API) and ``/api/v1/flags/openapi.json`` (the flags API) from it and sends every
operation its examples, its coverage cases (each boundary, each missing or wrong-typed field) and
``MAX_EXAMPLES`` fuzzed cases, authenticated with a real API token of an admin. A live server
rather than schemathesis' WSGI/ASGI integration: the requests then cross the real ASGI stack on
connections of their own, with committed rows (several 500s only showed on Postgres that way),
and not inside this test's transaction.

Checks: no 5xx; every status code documented; content types, headers and bodies as the schema
says; schema-invalid requests rejected (strict validation, docs/api-errors.md); auth enforced.
Left out: ``positive_data_acceptance`` (a schema-valid request may be refused for a rule the
schema cannot express: a strategy's ``kind``, a freeze ending after it starts, a known provider
-- docs/api-errors.md lists them).

Random path parameters mostly name nothing (404), so each positive case whose operation has
path parameters is sent a second time naming the objects seeded here, which checks the 2xx
bodies too. Bounded: ``SWITCHYARD_CONTRACT_EXAMPLES`` (default 5) fuzzed cases per operation;
the module's one server and its seeded rows are committed, and the database is flushed after.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field

import httpx
import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from hypothesis import HealthCheck, settings
from schemathesis import checks as st_checks
from schemathesis.core.parameters import ParameterLocation

from flags.api import api as flags_api_app
from integrations.local.ports import free_port
from releases.api import api as releases_api_app
from releases.governance import tokens
from releases.models import ApiToken, RoleBinding
from switchyard import processes
from tests import factories
from tests.stack import child_database_url

# each test's own transaction is empty (the server writes, on its own connections); the mark is
# what makes pytest-django set up the test database for the module's fixture
pytestmark = pytest.mark.django_db

MAX_EXAMPLES = int(os.environ.get("SWITCHYARD_CONTRACT_EXAMPLES", "5"))
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_headers_conformance,
    st_checks.response_schema_conformance,
    st_checks.negative_data_rejection,
    st_checks.ignored_auth,
    st_checks.missing_required_header,
    st_checks.unsupported_method,
]
HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,  # each run generates afresh; a failure prints its case as a curl command
)


# The admin's API token, made up now so that schemathesis knows the Authorization header at
# collection (a header it is given is one it never mutates: a mutated one we then replaced would
# read as "an invalid request accepted"); the fixture stores it as a real token row.
PREFIX = "".join(secrets.choice(tokens.PREFIX_ALPHABET) for _ in range(tokens.PREFIX_LENGTH))
TOKEN = f"{tokens.TOKEN_TAG}_{PREFIX}_{secrets.token_urlsafe(tokens.SECRET_BYTES)}"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class LiveAPI:
    url: str
    known: dict[str, dict[str, str]] = field(default_factory=dict)  # path prefix -> param -> value
    sent: int = 0

    def post(self, path: str, body: dict, method: str = "POST") -> dict:
        response = httpx.request(
            method, f"{self.url}/api/v1{path}", json=body, headers=HEADERS, timeout=10
        )
        assert response.status_code in (200, 201), (path, response.status_code, response.text)
        return response.json()

    def seeded(self, path: str) -> dict[str, str]:
        """Path parameters naming seeded objects for an operation's ``path`` (longest prefix)."""
        values: dict[str, str] = {}
        for prefix in sorted(self.known, key=len):
            if path.startswith(prefix):
                values.update(self.known[prefix])
        return values


def seed(live: LiveAPI, admin) -> None:
    """One of each object the API names in a path, through the product's own commands."""
    target = factories.make_target(factories.make_service("api"), factories.make_environment("dev"))
    deployment = factories.make_deployment(target, "1.0.0")
    freeze = factories.make_freeze(target.environment, kind="one_off")
    role = RoleBinding.objects.create(user=admin, role="viewer", environment=target.environment)
    live.post(
        "/analysis-templates",
        {
            "name": "error-rate",
            "metrics": [{"name": "errors", "query": "error_rate", "interval": "1s", "count": 3}],
        },
    )
    channel = live.post(
        "/notifications/channels",
        {
            "name": "deploys",
            "kind": "slack",
            "config": {"channel": "C123"},
            "secrets": {"bot_token": "xoxb-contract"},
        },
    )
    rule = live.post("/notifications/rules", {"channel": channel["id"], "events": []})
    link = live.post(
        "/notifications/slack-links",
        {"team_id": "T1", "slack_user_id": "U1", "username": admin.username},
    )
    live.post("/flags", {"key": "checkout"})
    live.post("/segments/beta", {"constraints": []}, method="PUT")
    base = "/api/v1"
    live.known = {
        f"{base}/services/": {"slug": "api", "env": "dev", "version": "1.0.0"},
        f"{base}/environments/": {"slug": "dev"},
        f"{base}/deployments/": {"id": str(deployment.pk)},
        f"{base}/analysis-runs/": {"id": "1"},
        f"{base}/freezes/": {"freeze_id": str(freeze.pk)},
        f"{base}/roles/": {"role_id": str(role.pk)},
        f"{base}/analysis-templates/": {"name": "error-rate"},
        f"{base}/notifications/channels/": {"channel_id": str(channel["id"])},
        f"{base}/notifications/rules/": {"rule_id": str(rule["id"])},
        f"{base}/notifications/slack-links/": {"link_id": str(link["id"])},
        f"{base}/flags/": {"key": "checkout", "env": "dev", "move": "promote"},
        f"{base}/segments/": {"name": "beta"},
    }


@pytest.fixture(scope="module")
def live_api(django_db_setup, django_db_blocker):
    """The server and its rows for the whole module (one start, one seeding), committed so the
    server sees them; the database is emptied afterwards, as a transactional test's is."""
    with django_db_blocker.unblock():
        admin = factories.make_user("admin", superuser=True)
        port = free_port()
        env = dict(os.environ)
        env.update(
            DATABASE_URL=child_database_url(),
            REDIS_URL=django_settings.REDIS_URL,
            SECRET_KEY=django_settings.SECRET_KEY,
            ALLOWED_HOSTS="127.0.0.1,localhost",
        )
        log_dir = django_settings.BASE_DIR / "test-output" / "contract"
        log_dir.mkdir(parents=True, exist_ok=True)
        supervisor = processes.Supervisor(env=env, log_dir=log_dir)
        supervisor.start("web", processes.web_command(port))
        try:
            ApiToken.objects.create(
                user=admin, name="contract", prefix=PREFIX, hashed=tokens.hash_token(TOKEN)
            )
            live = LiveAPI(f"http://127.0.0.1:{port}")
            processes.wait_http(f"{live.url}/login/", timeout=90)
            for path, document in DOCUMENTS.items():  # what the server serves is what we test
                assert httpx.get(f"{live.url}{path}", timeout=60).json() == document, path
            seed(live, admin)
            yield live
            print(f"\ncontract: {live.sent} requests checked")
            assert not supervisor.check(), f"the web server exited: see {log_dir}"
        finally:
            supervisor.stop()
            database = connection.settings_dict["NAME"]
            assert database.startswith("test_"), database  # never anything but the test's
            call_command("flush", interactive=False, verbosity=0)


def document(app) -> dict:
    """The OpenAPI document ``app`` serves at /api/v1/..., as JSON (loaded at collection: the
    server's own copy is compared with it before any case is sent)."""
    return json.loads(json.dumps(app.get_openapi_schema(path_prefix="/api/v1/"), default=str))


DOCUMENTS = {
    "/api/v1/openapi.json": document(releases_api_app),
    "/api/v1/flags/openapi.json": document(flags_api_app),
}
releases_api = schemathesis.openapi.from_dict(DOCUMENTS["/api/v1/openapi.json"])
flags_api = schemathesis.openapi.from_dict(DOCUMENTS["/api/v1/flags/openapi.json"])
for _schema in (releases_api, flags_api):
    _schema.config.update(headers=HEADERS)


def exercise(case, live: LiveAPI) -> None:
    case.call_and_validate(base_url=live.url, headers=HEADERS, checks=CHECKS)
    live.sent += 1
    if not case.path_parameters or case.meta is None:
        return
    if case.meta.is_negative_at(ParameterLocation.PATH):
        return  # a wrong path parameter is this case's point
    known = live.seeded(case.operation.path)
    names = {k: v for k, v in known.items() if k in case.path_parameters}
    if names:
        case.path_parameters = {**case.path_parameters, **names}
        case.call_and_validate(base_url=live.url, headers=HEADERS, checks=CHECKS)
        live.sent += 1


@releases_api.parametrize()
@HYPOTHESIS
def test_the_releases_api_keeps_its_contract(case, live_api):
    exercise(case, live_api)


@flags_api.parametrize()
@HYPOTHESIS
def test_the_flags_api_keeps_its_contract(case, live_api):
    exercise(case, live_api)
