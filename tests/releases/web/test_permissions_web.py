"""Web security: sign-in throttling, CSRF on session calls, security headers with a CSP that
allows no inline script, and secure cookies when Switchyard is exposed and not in DEBUG."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from releases.models import AuditEvent, LoginFailure
from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"


@pytest.fixture
def alice(db):
    return factories.make_user("alice", superuser=False, password=PASSWORD)


def sign_in(password, *, username="alice", address="10.0.0.1"):
    return Client(REMOTE_ADDR=address).post("/login/", {"username": username, "password": password})


# --- throttling -------------------------------------------------------------------------------


def test_sign_in_is_throttled_after_repeated_failures(alice):
    for _ in range(settings.LOGIN_MAX_FAILURES):
        assert sign_in("wrong").status_code == 200  # the form again, with an error

    refused = sign_in(PASSWORD)  # even the right password, for a while

    assert refused.status_code == 200
    assert b"Too many failed sign-ins" in refused.content
    assert LoginFailure.objects.count() == settings.LOGIN_MAX_FAILURES  # not counted again
    assert AuditEvent.objects.filter(action="session.throttled").count() == 1
    # another address is not held back by someone else's failures
    assert sign_in(PASSWORD, address="10.0.0.2").status_code == 302


def test_a_success_clears_the_failures(alice):
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        sign_in("wrong")

    assert sign_in(PASSWORD).status_code == 302
    assert not LoginFailure.objects.filter(username="alice", address="10.0.0.1").exists()
    assert AuditEvent.objects.filter(action="session.login", actor=alice).exists()


def test_the_admin_sign_in_is_throttled_too(alice):
    alice.is_staff = True
    alice.save()
    client = Client(REMOTE_ADDR="10.0.0.9")
    for _ in range(settings.LOGIN_MAX_FAILURES):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"})

    client.post("/admin/login/", {"username": "alice", "password": PASSWORD})

    assert "_auth_user_id" not in client.session


# --- CSRF -------------------------------------------------------------------------------------


def test_session_calls_to_the_api_need_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(factories.make_user("root"))

    response = client.post("/api/v1/services", {"slug": "x"}, content_type="application/json")

    assert response.status_code == 403 and response.json()["details"]["reason"] == "csrf"


def test_dashboard_forms_need_the_csrf_token(admin, target):
    d = factories.make_deployment(target)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)

    assert client.post(f"/deployments/{d.pk}/pause/").status_code == 403
    assert client.post("/tokens/", {"name": "x"}).status_code == 403


# --- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login/", "/api/v1/openapi.json", "/api/v1/docs"])
def test_every_response_carries_the_security_headers(path):
    response = Client().get(path)

    csp = response["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", csp).group(1)
    assert script_src.strip() == "'self'"
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "ws://testserver" in csp  # the live pages' WebSocket
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


def test_no_template_has_an_inline_script():
    """The CSP allows scripts from /static/ only: an inline one would silently not run."""
    root = Path(settings.BASE_DIR) / "templates"
    offenders = []
    for template in root.rglob("*.html"):
        for tag in re.findall(r"<script\b[^>]*>", template.read_text()):
            if "src=" not in tag and "application/json" not in tag:
                offenders.append(f"{template.relative_to(root)}: {tag}")
        if re.search(r"\son[a-z]+=\"", template.read_text()):
            offenders.append(f"{template.relative_to(root)}: an on* event handler attribute")
    assert offenders == []


# --- cookies ----------------------------------------------------------------------------------


def cookie_settings(extra_env) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECURE_COOKIES")}
    environ.update({"SECRET_KEY": "x" * 50, **extra_env})
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'switchyard.settings');"
        "from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY,"
        " s.SECURE_HSTS_SECONDS > 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        cwd=settings.BASE_DIR,
    )
    return result.stdout.strip()


def test_cookies_are_secure_when_exposed_and_not_in_debug():
    assert cookie_settings({"ALLOWED_HOSTS": "deploy.example.com"}) == "True True True True"
    assert cookie_settings({"ALLOWED_HOSTS": "deploy.example.com", "DEBUG": "true"}) == (
        "False False True False"
    )
    # the one-machine demo over plain HTTP on loopback, unless told otherwise
    assert cookie_settings({}) == "False False True False"
    assert cookie_settings({"SECURE_COOKIES": "true"}) == "True True True True"
