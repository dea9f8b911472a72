"""Fixtures for the kubernetes provider's tests: loopback fake API servers (``fake_api``) and a
kubeconfig naming them, as the provider's settings would on a real control plane."""

from __future__ import annotations

import pytest

from integrations.kubernetes.target import KubernetesTarget
from tests.integrations.kubernetes.fake_api import FakeCluster, kubeconfig

POD_TEMPLATE = {
    "metadata": {"labels": {"team": "shop"}},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "registry.example.com/api:base",
                "ports": [{"containerPort": 8080}],
                "env": [{"name": "LOG_LEVEL", "value": "info"}],
            }
        ]
    },
}


def target_config(router=None, **extra):
    return {
        "cluster": {"context": "dev"},
        "namespace": "shop",
        "name": "api",
        "template": {"manifest": POD_TEMPLATE},
        "router": router or {"kind": "gateway-api", "route": "api"},
        **extra,
    }


def http_route(name="api"):
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"parentRefs": [{"name": "public"}], "hostnames": ["api.example.com"]},
    }


def ingress(name="api", service="api"):
    backend = {"service": {"name": service, "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "api.example.com",
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ],
        },
    }


def virtual_service(name="api"):
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"hosts": ["api.example.com"], "gateways": ["public"]},
    }


@pytest.fixture
def cluster():
    fake = FakeCluster(ready_after=0.05).start()
    fake.put(http_route())
    fake.put(ingress())
    fake.put(virtual_service())
    yield fake
    fake.stop()


@pytest.fixture
def kubeconfig_path(cluster, tmp_path):
    return kubeconfig(tmp_path / "kubeconfig", {"dev": cluster})


@pytest.fixture
def make_target(kubeconfig_path):
    def make(router=None, key="api.dev", **extra):
        return KubernetesTarget(key, target_config(router, **extra), kubeconfig=kubeconfig_path)

    return make
