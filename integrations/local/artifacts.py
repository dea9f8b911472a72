"""What an instance runs and how it is health-checked, from a release's artifact and health.

An artifact is the built-in sample app (``{"sample": {...faults}}``, also ``{}``) or a command
(``{"command": ["python", "-m", "myapp", "--port", "{port}"], "health_path": "/health",
"env": {...}, "cwd": "..."}``). ``{port}`` is replaced in the command and env values; a leading
``python``/``python3`` runs under the agent's own interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from integrations.local.faults import parse_faults
from strategies.durations import parse_duration

PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
Errors = list[tuple[str, str]]


@dataclass(frozen=True)
class HealthSettings:
    path: str = "/health"
    interval: float = 0.5
    healthy_threshold: int = 2
    unhealthy_threshold: int = 3
    timeout: float = 2.0


@dataclass(frozen=True)
class LaunchSpec:
    argv: tuple[str, ...]  # may hold {port}
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    health_path: str = "/health"
    is_sample: bool = False
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def command(self, port: int) -> list[str]:
        return [part.replace("{port}", str(port)) for part in self.argv]

    def environment(self, port: int, extra: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        if self.is_sample:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [PROJECT_ROOT, env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env["PORT"] = str(port)
        env.update(extra)
        env.update({name: value.replace("{port}", str(port)) for name, value in self.env})
        return env


def _sample_spec(version: str, faults: dict[str, Any]) -> LaunchSpec:
    argv = (sys.executable, "-m", "integrations.local.sample_app", "--port", "{port}")
    argv += ("--version", version, "--config", json.dumps(faults))
    return LaunchSpec(argv=argv, is_sample=True)


def parse_artifact(artifact: Any, version: str) -> tuple[LaunchSpec | None, Errors]:
    """The launch spec of ``artifact`` for ``version``, or the errors as ``(path, message)``."""
    if artifact is None or artifact == {}:
        return _sample_spec(version, {}), []
    if not isinstance(artifact, dict):
        return None, [("artifact", "must be an object")]
    if "sample" in artifact:
        extra = sorted(set(artifact) - {"sample"})
        if extra:
            return None, [(f"artifact.{key}", "is not allowed beside 'sample'") for key in extra]
        faults = artifact["sample"] if artifact["sample"] is not None else {}
        _, errors = parse_faults(faults)
        if errors:
            return None, [(f"artifact.sample.{key}".rstrip("."), msg) for key, msg in errors]
        return _sample_spec(version, faults), []
    if "command" not in artifact:
        return None, [("artifact", "needs 'sample' (the built-in app) or 'command' (argv list)")]
    return _command_spec(artifact)


def _command_spec(artifact: dict[str, Any]) -> tuple[LaunchSpec | None, Errors]:
    errors: Errors = []
    command = artifact["command"]
    if (
        not isinstance(command, list)
        or not command
        or not all(isinstance(part, str) and part for part in command)
    ):
        errors.append(("artifact.command", "must be a non-empty list of non-empty strings"))
    health_path = artifact.get("health_path", "/health")
    if not isinstance(health_path, str) or not health_path.startswith("/"):
        errors.append(("artifact.health_path", "must be a path starting with '/'"))
    env = artifact.get("env") or {}
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        errors.append(("artifact.env", "must be an object of string values"))
    cwd = artifact.get("cwd")
    if cwd is not None and (not isinstance(cwd, str) or not os.path.isdir(cwd)):
        errors.append(("artifact.cwd", f"must be an existing directory, got {cwd!r}"))
    for key in sorted(set(artifact) - {"command", "health_path", "env", "cwd"}):
        errors.append((f"artifact.{key}", "is not a command artifact setting"))
    if errors:
        return None, errors
    argv = list(command)
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    elif not _executable(argv[0], cwd, env.get("PATH", os.environ.get("PATH", ""))):
        return None, [("artifact.command", f"{argv[0]!r} is not an executable the agent can run")]
    spec = LaunchSpec(
        argv=tuple(argv),
        env=tuple(sorted(env.items())),
        cwd=cwd,
        health_path=health_path,
        raw=artifact,
    )
    return spec, []


def _executable(program: str, cwd: str | None, path: str) -> bool:
    if os.sep in program:
        return os.access(os.path.join(cwd or os.getcwd(), program), os.X_OK)
    return shutil.which(program, path=path) is not None


def _positive_int(value: Any, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ValueError(f"must be an integer between 1 and {high}, got {value!r}")
    return value


def parse_health(health: Any, default_path: str) -> tuple[HealthSettings, Errors]:
    """Health-check settings (every key optional) and the errors as ``(path, message)``."""
    if health is None:
        health = {}
    if not isinstance(health, dict):
        return HealthSettings(path=default_path), [("health", "must be an object")]
    values: dict[str, Any] = {"path": default_path}
    errors: Errors = []
    for key, value in health.items():
        try:
            if key == "path":
                if not isinstance(value, str) or not value.startswith("/"):
                    raise ValueError("must be a path starting with '/'")
                values["path"] = value
            elif key in ("interval", "timeout"):
                seconds = parse_duration(value)
                if not 0.01 <= seconds <= 3600:
                    raise ValueError(f"must be between 10ms and 1h, got {value!r}")
                values[key] = seconds
            elif key in ("healthy_threshold", "unhealthy_threshold"):
                values[key] = _positive_int(value, 100)
            else:
                raise ValueError(
                    "is not a health setting (known: path, interval, timeout, "
                    "healthy_threshold, unhealthy_threshold)"
                )
        except ValueError as exc:
            errors.append((f"health.{key}", str(exc)))
    return HealthSettings(**values), errors
