"""The live tests' own channel layer prefix, so that concurrent runs sharing one Redis database
never hear each other's groups."""

import uuid

import pytest
from django.conf import settings as django_settings


@pytest.fixture(autouse=True)
def own_channel_layer(settings):
    layer = dict(django_settings.CHANNEL_LAYERS["default"])
    layer["CONFIG"] = {**layer["CONFIG"], "prefix": f"test-{uuid.uuid4().hex[:10]}"}
    settings.CHANNEL_LAYERS = {"default": layer}
