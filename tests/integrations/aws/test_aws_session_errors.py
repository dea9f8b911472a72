"""AWS clients and errors: the explicit botocore config, credentials from a role assumed through
STS (against a real moto_server process), ClientError codes as permanent or transient
IntegrationErrors naming the action and the resource -- and a real AccessDenied from a second
moto_server that enforces IAM, shown on the deployment's page."""

from __future__ import annotations

import json
import os

import pytest
from botocore.exceptions import ClientError

from integrations.aws import session
from integrations.aws.config import settings_options
from integrations.aws.ecs import EcsTarget
from integrations.aws.errors import translate
from integrations.aws.session import AwsOptions, client
from integrations.base import IntegrationError
from releases.models import State
from tests import factories
from tests.integrations.aws.conftest import LOG
from tests.integrations.aws.moto import MotoServer, free_port, make_ecs_world


def error(code, status, message="went wrong"):
    body = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}
    body["ResponseMetadata"]["HTTPStatusCode"] = status
    return ClientError(body, "UpdateService")


def test_every_client_has_the_region_standard_retries_and_timeouts(moto):
    options = AwsOptions(region="eu-west-1", connect_timeout=1.5, read_timeout=7, max_attempts=4)
    config = client("ecs", options).meta.config
    assert config.region_name == "eu-west-1"
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert (config.connect_timeout, config.read_timeout) == (1.5, 7)
    assert client("ecs", options) is client("ecs", options)  # built once per process


def test_a_role_named_in_the_config_is_assumed_through_sts(moto):
    options = AwsOptions(role_arn="arn:aws:iam::123456789012:role/deployer", endpoint_url=moto.url)
    with session.journal() as calls:
        ecs = client("ecs", options)
        ecs.list_clusters()
        client("ecs", options).list_clusters()
    assert [name for name, _ in calls] == ["sts:AssumeRole", "ecs:ListClusters", "ecs:ListClusters"]
    assert calls[0][1]["RoleArn"] == "arn:aws:iam::123456789012:role/deployer"
    key = ecs._request_signer._credentials.access_key
    assert key != os.environ["AWS_ACCESS_KEY_ID"]  # the role's temporary credentials


def test_an_unknown_profile_is_a_permanent_error_naming_it(moto):
    with pytest.raises(IntegrationError, match="no-such-profile") as caught:
        client("ecs", AwsOptions(profile="no-such-profile"))
    assert caught.value.permanent


@pytest.mark.parametrize(
    ("code", "status", "permanent", "words"),
    [
        ("AccessDeniedException", 400, True, "grant ecs:UpdateService"),
        ("AccessDenied", 403, True, "grant ecs:UpdateService"),
        ("ValidationError", 400, True, "was rejected (ValidationError: went wrong)"),
        ("InvalidParameterException", 400, True, "was rejected"),
        ("ResourceNotFoundException", 404, True, "does not exist"),
        ("ServiceNotFoundException", 400, True, "does not exist"),
        ("ThrottlingException", 400, False, "throttled"),
        ("Throttling", 400, False, "throttled"),
        ("TooManyRequestsException", 429, False, "throttled"),
        ("InternalFailure", 500, False, "failed on AWS' side"),
        ("ServiceUnavailable", 503, False, "failed on AWS' side"),
        ("ResourceConflictException", 409, False, "failed on AWS' side"),
    ],
)
def test_client_errors_are_permanent_or_transient_by_code(code, status, permanent, words):
    mapped = translate(error(code, status), "ecs", "UpdateService", "service api in cluster prod")
    assert mapped.permanent is permanent
    assert words in mapped.message
    assert "ecs:UpdateService on service api in cluster prod" in mapped.message


def test_an_endpoint_that_does_not_answer_is_transient(moto):
    options = AwsOptions(
        endpoint_url=f"http://127.0.0.1:{free_port()}", connect_timeout=0.5, max_attempts=1
    )
    target = EcsTarget(
        "api.prod",
        {
            "cluster": "prod",
            "listener_arn": "arn:aws:elasticloadbalancing:us-east-1:"
            "123456789012:listener/app/api/1/2",
            "slots": {"blue": {"service": "api-blue", "target_group_arn": "x"}},
        },
        **{
            **settings_options(),
            "endpoint_url": options.endpoint_url,
            "max_attempts": 1,
            "connect_timeout": 0.5,
        },
    )
    with pytest.raises(IntegrationError, match="did not answer") as caught:
        target.status()
    assert not caught.value.permanent


# --- a moto that enforces IAM: the first requests build an admin, then every call is checked ---


@pytest.fixture(scope="module")
def iam_moto():
    server = MotoServer(LOG.with_name("moto-server-iam.log"))
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "4"
    try:
        server.start()
    finally:
        del os.environ["INITIAL_NO_AUTH_ACTION_COUNT"]
    iam = server.client("iam")
    iam.create_user(UserName="admin")
    key = iam.create_access_key(UserName="admin")["AccessKey"]
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    arn = iam.create_policy(PolicyName="all", PolicyDocument=json.dumps(everything))["Policy"]
    iam.attach_user_policy(UserName="admin", PolicyArn=arn["Arn"])
    server.admin = {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
    }
    yield server
    server.stop()


def test_a_permission_the_identity_lacks_fails_the_step_and_shows_on_the_page(
    iam_moto, monkeypatch, settings, service, dev, client
):
    """The worker's identity may read but not change the load balancer: the deployment fails
    with AWS' AccessDenied, naming the action and the listener, and its page says so."""
    import boto3

    admin = lambda name: boto3.client(  # noqa: E731
        name, endpoint_url=iam_moto.url, region_name="us-east-1", **iam_moto.admin
    )
    iam_moto.client = admin
    world = make_ecs_world(iam_moto, name="ro")
    iam = admin("iam")
    iam.create_user(UserName="deployer")
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    read_only = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "ecs:Describe*",
                    "ecs:RegisterTaskDefinition",
                    "ecs:UpdateService",
                    "elasticloadbalancing:Describe*",
                    "elasticloadbalancing:AddTags",  # the fence's tag, written before each change
                    "ecs:TagResource",
                    "ecs:ListTagsForResource",
                ],
                "Resource": "*",
            }
        ],
    }
    iam.put_user_policy(UserName="deployer", PolicyName="ro", PolicyDocument=json.dumps(read_only))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    session.forget()
    settings.AWS_ENDPOINT_URL = iam_moto.url
    target = factories.make_target(service, dev, provider="aws-ecs", config=world.config())
    from tests.integrations.aws.test_aws_ecs_reconcile import deploy, tick_until

    d = deploy(target, "1.0.0", {"kind": "recreate", "replicas": 1})
    d = tick_until(d, lambda d: "AccessDenied" in d.failure_reason, what="the refusal")
    assert d.state == State.ROLLING_BACK  # permanent: the step failed, no retrying
    assert "elasticloadbalancing:ModifyListener" in d.failure_reason
    assert world.listener_arn in d.failure_reason
    assert "grant elasticloadbalancing:ModifyListener" in d.failure_reason
    client.force_login(factories.make_user())
    page = client.get(f"/deployments/{d.pk}/").content.decode()
    assert "AccessDenied" in page and "ModifyListener" in page
    session.forget()
