"""Safe defaults when exposed: once ALLOWED_HOSTS goes beyond loopback, a placeholder or short
secret and an open ``/metrics`` are system check errors (``manage.py check`` fails, so the
processes refuse to start); on loopback (the one-machine demo) they are not. The compose file
carries no placeholder secrets: it refuses to start without real ones.

``manage.py check`` runs in a fresh process each time: settings are read from the environment at
start, as in production."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STRONG = "Zk3v9QeR7tY1uI0oP5aS8dF2gH6jK4lX"  # 32 characters, no placeholder words
EXPOSED = {"ALLOWED_HOSTS": "switchyard.example.com", "SECRET_KEY": STRONG + STRONG}


def check(extra: dict) -> subprocess.CompletedProcess:
    drop = ("SECRET_KEY", "DEBUG", "SWITCHYARD_METRICS_TOKEN", "FLEET_TOKEN", "ALLOWED_HOSTS",
            "SWITCHYARD_AUDIT_KEY", "SWITCHYARD_AUDIT_CHECKPOINTS")  # fmt: skip
    environ = {k: v for k, v in os.environ.items() if k not in drop}
    environ.update(extra)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        cwd=ROOT,
    )


def test_a_placeholder_secret_key_is_an_error_when_exposed():
    result = check({**EXPOSED, "SECRET_KEY": "change-me-to-a-long-random-value",
                    "SWITCHYARD_METRICS_TOKEN": STRONG})  # fmt: skip

    assert result.returncode != 0
    assert "switchyard.E011" in result.stderr and "SECRET_KEY" in result.stderr


def test_a_short_secret_key_is_an_error_when_exposed():
    result = check({**EXPOSED, "SECRET_KEY": "abc123", "SWITCHYARD_METRICS_TOKEN": STRONG})

    assert result.returncode != 0
    assert "switchyard.E011" in result.stderr and "at least 32" in result.stderr


def test_a_placeholder_fleet_token_is_an_error_when_exposed():
    result = check({**EXPOSED, "FLEET_TOKEN": "change-me-fleet-token",
                    "SWITCHYARD_METRICS_TOKEN": STRONG})  # fmt: skip

    assert result.returncode != 0
    assert "switchyard.E011" in result.stderr and "FLEET_TOKEN" in result.stderr


def test_open_metrics_are_an_error_when_exposed():
    result = check(EXPOSED)

    assert result.returncode != 0
    assert "switchyard.E012" in result.stderr and "SWITCHYARD_METRICS_TOKEN" in result.stderr


def test_a_weak_metrics_token_is_an_error_when_exposed():
    result = check({**EXPOSED, "SWITCHYARD_METRICS_TOKEN": "s3cret"})

    assert result.returncode != 0 and "SWITCHYARD_METRICS_TOKEN" in result.stderr


def test_checkpoints_without_a_key_are_an_error():
    result = check({"SWITCHYARD_AUDIT_CHECKPOINTS": "/tmp/nowhere.jsonl"})

    assert result.returncode != 0 and "SWITCHYARD_AUDIT_KEY" in result.stderr


def test_strong_secrets_and_a_metrics_token_pass_when_exposed():
    result = check({**EXPOSED, "SWITCHYARD_METRICS_TOKEN": STRONG, "FLEET_TOKEN": STRONG[::-1]})

    assert result.returncode == 0, result.stderr


def test_on_loopback_placeholders_are_no_error():
    result = check({"SECRET_KEY": "change-me-to-a-long-random-value"})

    assert result.returncode == 0, result.stderr


def test_the_compose_file_has_no_placeholder_secrets():
    text = (ROOT / "docker-compose.yml").read_text()

    assert "change-me" not in text
    for name in ("SECRET_KEY", "FLEET_TOKEN", "SWITCHYARD_METRICS_TOKEN", "POSTGRES_PASSWORD"):
        assert f"${{{name}:?" in text, name


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_refuses_to_start_without_real_secrets():
    compose = ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"]
    base = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    given = {**base, "FLEET_TOKEN": STRONG, "SWITCHYARD_METRICS_TOKEN": STRONG,
             "POSTGRES_PASSWORD": STRONG}  # fmt: skip
    missing = subprocess.run(compose, capture_output=True, text=True, env=given, timeout=60)
    given["SECRET_KEY"] = STRONG * 2
    ok = subprocess.run(compose, capture_output=True, text=True, env=given, timeout=60)

    assert missing.returncode != 0 and "SECRET_KEY" in missing.stderr
    assert ok.returncode == 0, ok.stderr
