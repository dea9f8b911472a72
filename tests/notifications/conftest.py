import pytest

from tests.notifications.fakes import FakeSlack, Receiver


@pytest.fixture
def fake_slack(settings):
    """A loopback stand-in for Slack's Web API (the real one cannot be reached from here)."""
    slack = FakeSlack()
    settings.SLACK_API_URL = slack.api_url
    yield slack
    slack.stop()


@pytest.fixture
def receiver():
    """A loopback stand-in for a Teams Workflows webhook or a webhook consumer."""
    r = Receiver()
    yield r
    r.stop()
