"""Every live test gets a channel layer prefix of its own (``tests/conftest.py``)."""

import pytest


@pytest.fixture(autouse=True)
def _own_channel_layer(own_channel_layer):
    """``own_channel_layer`` for every test here."""
