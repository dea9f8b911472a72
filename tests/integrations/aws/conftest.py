from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings as django_settings

from integrations.aws import ecs, lambdas, session, taskdefs
from tests.integrations.aws.moto import MotoServer

LOG = Path(django_settings.BASE_DIR) / "test-output" / "moto-server.log"


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer(LOG).start()
    yield server
    server.stop()


@pytest.fixture
def moto(moto_server, monkeypatch, settings):
    """A fresh moto (its state reset) that the AWS providers talk to, with test credentials."""
    moto_server.reset()
    forget()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_CONFIG_FILE": "/nonexistent",
    }.items():
        monkeypatch.setenv(key, value)
    settings.AWS_ENDPOINT_URL = moto_server.url
    settings.AWS_REGION = "us-east-1"
    yield moto_server
    forget()


def forget():
    session.forget()
    taskdefs.forget()
    ecs._endpoints.clear()
    lambdas._active_versions.clear()
