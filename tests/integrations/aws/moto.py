"""A real ``moto_server`` process on 127.0.0.1 for the AWS provider tests, and the AWS world
(VPC, ALB, target groups, listeners, ECS cluster and services; Lambda functions) they deploy to.

moto speaks AWS' real wire protocols, so boto3 and the providers run unchanged against it. Its
limits (see shared NOTES): it runs no tasks or functions, so no real traffic flows; target
health reports only targets someone registered; ECS counts a service's tasks as running once it
is updated.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx

ACCOUNT = "123456789012"
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    def __init__(self, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> MotoServer:
        exe = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or "moto_server"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process keeps it
        self.process = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(self.port)], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/moto-api/", timeout=1.0)
                return self
            except httpx.HTTPError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"moto_server exited; see {self.log_path}") from None
                time.sleep(0.1)
        raise RuntimeError("moto_server did not start within 30s")

    def reset(self) -> None:
        httpx.post(f"{self.url}/moto-api/reset", timeout=5.0).raise_for_status()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # a loaded machine: stop it for sure
                self.process.kill()
                self.process.wait(timeout=10)

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, **CREDENTIALS)


@dataclass
class EcsWorld:
    cluster: str
    listener_arn: str
    test_listener_arn: str
    target_groups: dict[str, str]  # slot -> target group ARN
    services: dict[str, str]  # slot -> service name
    task_definition: str = ""  # the family's first revision

    def config(self, **extra) -> dict:
        return {
            "region": REGION,
            "cluster": self.cluster,
            "listener_arn": self.listener_arn,
            "slots": {
                slot: {"service": self.services[slot], "target_group_arn": arn}
                for slot, arn in self.target_groups.items()
            },
            **extra,
        }


def make_ecs_world(
    moto: MotoServer, name: str = "api", with_services: bool = True, cluster: str = "prod"
) -> EcsWorld:
    """An ALB with a production listener (100% to blue) and a test listener, a target group per
    slot, and an ECS service per slot on the family's first revision, scaled to 0 (none with
    ``with_services=False``)."""
    ec2, elb, ecs = moto.client("ec2"), moto.client("elbv2"), moto.client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    lb = elb.create_load_balancer(Name=name, Subnets=subnets)["LoadBalancers"][0]
    groups = {
        slot: elb.create_target_group(
            Name=f"{name}-{slot}", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        for slot in ("blue", "green")
    }

    def listener(port: int) -> str:
        forward = {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [
                    {"TargetGroupArn": groups["blue"], "Weight": 100},
                    {"TargetGroupArn": groups["green"], "Weight": 0},
                ]
            },
        }
        return elb.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol="HTTP",
            Port=port,
            DefaultActions=[forward],
        )["Listeners"][0]["ListenerArn"]

    ecs.create_cluster(clusterName=cluster)
    first = ecs.register_task_definition(
        family=name,
        containerDefinitions=[
            {
                "name": "app",
                "image": f"example/{name}:0",
                "memory": 256,
                "cpu": 128,
                "portMappings": [{"containerPort": 80}],
            },
            {"name": "log-router", "image": "fluent-bit:2", "memory": 64, "cpu": 32},
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    services = {}
    for slot, arn in groups.items() if with_services else ():
        services[slot] = f"{name}-{slot}"
        ecs.create_service(
            cluster=cluster,
            serviceName=services[slot],
            taskDefinition=first,
            desiredCount=0,
            loadBalancers=[{"targetGroupArn": arn, "containerName": "app", "containerPort": 80}],
        )
    return EcsWorld(cluster, listener(80), listener(8080), groups, services, first)


@dataclass
class TaskSetWorld:
    ecs: EcsWorld
    service: str  # the one service, deploymentController EXTERNAL

    def config(self, **extra) -> dict:
        return {
            "region": REGION,
            "mode": "task_sets",
            "cluster": self.ecs.cluster,
            "service": self.service,
            "listener_arn": self.ecs.listener_arn,
            "task_definition": self.ecs.task_definition,
            "slots": {
                slot: {"target_group_arn": arn} for slot, arn in self.ecs.target_groups.items()
            },
            **extra,
        }


def make_taskset_world(
    moto: MotoServer, name: str = "api", desired: int = 2, cluster: str = "prod"
) -> TaskSetWorld:
    """The ALB world of ``make_ecs_world`` without a service per slot: one service with the
    EXTERNAL deployment controller (no task set yet) and one EC2 container instance in the
    cluster (moto places a new task set's tasks with RunTask, which needs an instance)."""
    world = make_ecs_world(moto, name, with_services=False, cluster=cluster)
    ec2, ecs = moto.client("ec2"), moto.client("ecs")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    document = {
        "instanceId": instance["InstanceId"],
        "region": REGION,
        "availabilityZone": instance["Placement"]["AvailabilityZone"],
        "instanceType": instance["InstanceType"],
        "imageId": instance["ImageId"],
        "privateIp": instance.get("PrivateIpAddress"),
        "accountId": ACCOUNT,
        "version": "2010-8-31",
    }
    ecs.register_container_instance(
        cluster=world.cluster, instanceIdentityDocument=json.dumps(document)
    )
    ecs.create_service(
        cluster=world.cluster,
        serviceName=name,
        desiredCount=desired,
        deploymentController={"type": "EXTERNAL"},
    )
    return TaskSetWorld(world, name)


def lambda_zip(body: str = "def handler(event, context):\n    return 'ok'\n") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("app.py", body)
    return buffer.getvalue()


@dataclass
class LambdaWorld:
    function: str
    bucket: str

    def config(self, **extra) -> dict:
        return {"region": REGION, "function_name": self.function, "alias": "live", **extra}

    def upload(self, moto: MotoServer, version: str) -> dict:
        """A build of the function's code in S3, as CI would leave it; its release artifact."""
        key = f"builds/{self.function}-{version}.zip"
        body = lambda_zip(f"def handler(event, context):\n    return {version!r}\n")
        moto.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body)
        return {"s3_bucket": self.bucket, "s3_key": key}


def make_lambda_world(moto: MotoServer, name: str = "thumbs") -> LambdaWorld:
    iam, s3, lam = moto.client("iam"), moto.client("s3"), moto.client("lambda")
    role = iam.create_role(
        RoleName=f"{name}-exec",
        AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}',
    )["Role"]["Arn"]
    bucket = f"{name}-builds"
    s3.create_bucket(Bucket=bucket)
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": lambda_zip()},
    )
    return LambdaWorld(name, bucket)
