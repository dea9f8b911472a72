"""A Lambda function packaged as a container image (``PackageType: Image``), against a real
moto_server process: a release whose artifact is ``{"image_uri"}`` is published as a version of
that image, and the alias shifts to it. (moto does not pull or run the image: it records the URI.
Its published versions share the function's code record, so a version's ``ImageUri`` reads back
as the latest; what is checked per version is its ``CodeSha256``, pinned when it was published.)"""

from __future__ import annotations

import pytest

from integrations.aws import session
from integrations.aws.config import settings_options
from integrations.aws.lambdas import LambdaTarget
from integrations.base import ReleaseRef, Routing

REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/thumbs"


@pytest.fixture
def function(moto):
    iam, lam = moto.client("iam"), moto.client("lambda")
    role = iam.create_role(
        RoleName="thumbs-exec",
        AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}',
    )["Role"]["Arn"]
    lam.create_function(
        FunctionName="thumbs",
        PackageType="Image",
        Role=role,
        Code={"ImageUri": f"{REPO}:0"},
    )
    return lam


def sha_of(lam, version: str) -> str:
    return lam.get_function_configuration(FunctionName="thumbs", Qualifier=version)["CodeSha256"]


def test_a_release_from_an_image_uri_is_published_and_the_alias_shifts_to_it(moto, function):
    config = {"region": "us-east-1", "function_name": "thumbs", "alias": "live"}
    target = LambdaTarget("thumbs.prod", config, **settings_options())
    with session.journal() as calls:
        target.ensure_slot("blue", ReleaseRef("1.0.0", {"image_uri": f"{REPO}:1.0.0"}), 1)
        target.set_weights({"blue": 100})
        target.ensure_slot("green", ReleaseRef("2.0.0", {"image_uri": f"{REPO}:2.0.0"}), 1)
    updates = [p for name, p in calls if name == "lambda:UpdateFunctionCode"]
    assert [p["ImageUri"] for p in updates] == [f"{REPO}:1.0.0", f"{REPO}:2.0.0"]
    assert all("S3Bucket" not in p and "ZipFile" not in p for p in updates)
    published = [p for name, p in calls if name == "lambda:PublishVersion"]
    assert len(published) == 2
    target.set_routing(Routing({"blue": 90, "green": 10}, stable_slot="blue", canary_slot="green"))

    blue = function.get_alias(FunctionName="thumbs", Name="switchyard-blue")["FunctionVersion"]
    green = function.get_alias(FunctionName="thumbs", Name="switchyard-green")["FunctionVersion"]
    assert blue != green
    assert [sha_of(function, blue), sha_of(function, green)] == [p["CodeSha256"] for p in published]
    assert sha_of(function, blue) != sha_of(function, green)
    assert function.get_function(FunctionName="thumbs")["Configuration"]["PackageType"] == "Image"
    live = function.get_alias(FunctionName="thumbs", Name="live")
    assert live["FunctionVersion"] == blue
    assert live["RoutingConfig"]["AdditionalVersionWeights"] == {green: 0.1}
    status = target.status()
    assert status.weights == {"blue": 90, "green": 10}
    assert status.slots["green"].version == "2.0.0"

    # the same release again reuses its version: nothing is published twice
    target.ensure_slot("green", ReleaseRef("2.0.0", {"image_uri": f"{REPO}:2.0.0"}), 1)
    versions = function.list_versions_by_function(FunctionName="thumbs")["Versions"]
    assert sorted(v["Version"] for v in versions) == sorted(["$LATEST", blue, green])
