"""The one-machine supervisor (``manage.py demo``) brings back a child that dies, with a backoff
that doubles while it keeps crashing, and says so in its log. Real child processes."""

from __future__ import annotations

import copy
import logging
import os
import sys
import time

from switchyard import processes

CRASH = [sys.executable, "-c", "import sys; sys.exit(3)"]
LONG = [sys.executable, "-c", "import time; time.sleep(60)"]


def exited(supervisor, name, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = dict(supervisor.children)[name]
        if proc.poll() is not None:
            return proc.returncode
        time.sleep(0.02)
    raise AssertionError(f"{name} did not exit")


def test_a_killed_child_is_restarted_and_logged(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="switchyard.processes")
    with processes.Supervisor(log_dir=tmp_path) as supervisor:
        first = supervisor.start("worker", LONG, restart=True)
        supervisor.kill("worker")  # SIGKILL, as a crash or the OOM killer would
        now = time.monotonic()
        assert supervisor.restart_dead(now) == []  # noticed; the backoff starts
        assert supervisor.check() == []  # a restartable child is not reported dead
        assert supervisor.restart_dead(now + processes.RESTART_BACKOFF_FIRST) == ["worker"]
        second = dict(supervisor.children)["worker"]
        assert second.pid != first.pid and second.poll() is None
        assert supervisor.restarts == {"worker": 1}
    messages = [r.getMessage() for r in caplog.records]
    assert any("worker exited with code -9" in m for m in messages), messages
    assert any("worker restarted (restart 1)" in m for m in messages), messages


def test_a_child_that_keeps_crashing_waits_longer_each_time(tmp_path):
    with processes.Supervisor(log_dir=tmp_path) as supervisor:
        supervisor.start("flaky", CRASH, restart=True)
        delays = []
        now = time.monotonic()
        for _ in range(7):
            assert exited(supervisor, "flaky") == 3
            supervisor.restart_dead(now)
            not_before = supervisor.restartable["flaky"][3]
            delays.append(round(not_before - now, 3))
            assert supervisor.restart_dead(not_before - 0.01) == []
            now = not_before
            assert supervisor.restart_dead(now) == ["flaky"]
    first = processes.RESTART_BACKOFF_FIRST
    assert delays == [min(processes.RESTART_BACKOFF_MAX, first * 2**n) for n in range(7)]


def test_a_child_that_ran_a_long_while_before_dying_starts_the_backoff_again(tmp_path):
    with processes.Supervisor(log_dir=tmp_path) as supervisor:
        supervisor.start("worker", CRASH, restart=True)
        supervisor.restartable["worker"][2] = 4  # crashed 4 times in a row before
        exited(supervisor, "worker")
        later = supervisor.restartable["worker"][1] + processes.RESTART_STABLE_AFTER
        supervisor.restart_dead(later)
        assert supervisor.restartable["worker"][3] - later == processes.RESTART_BACKOFF_FIRST


def test_a_child_started_without_restart_is_reported_dead(tmp_path):
    with processes.Supervisor(log_dir=tmp_path) as supervisor:
        supervisor.start("once", CRASH)
        exited(supervisor, "once")
        assert supervisor.restart_dead() == []
        assert supervisor.check() == ["once"]


def test_the_worker_pool_is_chosen_by_the_environment(monkeypatch):
    """Unnamed, the pool is SWITCHYARD_WORKER_POOL (threads by default); a threads pool runs
    SWITCHYARD_WORKER_THREADS threads per process asked for, and a pool named by the caller keeps
    its size as given."""

    def pool_and_size(command):
        return command[command.index("--pool") + 1], int(command[command.index("-c") + 1])

    monkeypatch.delenv("SWITCHYARD_WORKER_POOL", raising=False)
    monkeypatch.delenv("SWITCHYARD_WORKER_THREADS", raising=False)
    assert pool_and_size(processes.worker_command(concurrency=2)) == ("threads", 16)
    monkeypatch.setenv("SWITCHYARD_WORKER_POOL", "prefork")
    assert pool_and_size(processes.worker_command(concurrency=2)) == ("prefork", 2)
    monkeypatch.setenv("SWITCHYARD_WORKER_POOL", "threads")
    monkeypatch.setenv("SWITCHYARD_WORKER_THREADS", "4")
    assert pool_and_size(processes.worker_command(concurrency=1)) == ("threads", 4)
    assert pool_and_size(processes.worker_command(concurrency=3, pool="threads")) == ("threads", 3)
    assert pool_and_size(processes.worker_command(pool="prefork")) == ("prefork", 2)


def test_a_threads_worker_pools_its_database_connections(monkeypatch):
    """Celery's Django fix-up closes every connection after every task (celery 5.7, whatever
    CONN_MAX_AGE says): a Postgres backend per tick, ~20 new a second at 100 canaries. A threads
    worker pools them (one per thread, two spare, health-checked), so closing gives one back; not
    a prefork worker, nor connections already pooled or given an age."""
    from types import SimpleNamespace

    from django.db import connections

    from switchyard import celery

    db = connections.settings["default"]
    for key in ("ENGINE", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS", "OPTIONS"):
        monkeypatch.setitem(db, key, copy.deepcopy(db.get(key)))
    db["ENGINE"] = "django.db.backends.postgresql"

    def fresh(**fields):
        db.update({"CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False, "OPTIONS": {}, **fields})

    fresh()
    celery._pooled_connections(SimpleNamespace(pool_cls="threads", concurrency=8))
    assert db["OPTIONS"]["pool"]["max_size"] == 10 and db["CONN_HEALTH_CHECKS"] is True
    fresh()
    celery._pooled_connections(SimpleNamespace(pool_cls="prefork", concurrency=2))
    assert "pool" not in db["OPTIONS"]
    fresh(OPTIONS={"pool": {"max_size": 3}})
    celery._pooled_connections(SimpleNamespace(pool_cls="threads", concurrency=8))
    assert db["OPTIONS"]["pool"] == {"max_size": 3}
    fresh(CONN_MAX_AGE=60)
    celery._pooled_connections(SimpleNamespace(pool_cls="threads", concurrency=8))
    assert "pool" not in db["OPTIONS"]


def test_every_way_of_serving_runs_uvicorn_with_the_same_websocket_settings():
    """``manage.py demo`` and the benches (``web_command``), the compose file and the image all
    serve WebSockets uncompressed (docs/serving.md: per-message deflate compressed every frame of
    a publish once per connection)."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    flag = ["--ws-per-message-deflate", "false"]
    command = processes.web_command(8000)
    assert command[command.index(flag[0]) : command.index(flag[0]) + 2] == flag
    assert " ".join(flag) in (root / "docker-compose.yml").read_text()
    assert '"--ws-per-message-deflate", "false"' in (root / "Dockerfile").read_text()


def test_a_worker_builds_the_url_resolver_before_its_first_task():
    """The first ``reverse`` in a process imports every view and schema (~2 s): a worker does it at
    start, not in the first tick's live publish."""
    import subprocess

    probe = (
        "import sys\n"
        "from celery.signals import worker_init\n"
        "import django; django.setup()\n"
        "import switchyard.celery\n"
        "before = 'switchyard.urls' in sys.modules\n"
        "worker_init.send(sender=None)\n"
        "print(before, 'switchyard.urls' in sys.modules, 'releases.api' in sys.modules)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "switchyard.settings"}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.stdout.split() == ["False", "True", "True"], out.stderr[-2000:]
