"""The ``switchyard`` CLI against a real server (Django's live_server) and the real database.

A deployment reaching ``succeeded`` needs a worker and the fleet agent (the e2e tests cover it);
here the reconcile loop's part is played by its own command, ``actions.record_tick``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from releases import actions
from releases.governance import tokens
from releases.models import Deployment, State
from switchyard import cli
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

ROLLING = '{"kind": "rolling", "replicas": 2}'


@pytest.fixture
def server(live_server, admin, target, monkeypatch):
    """The live server, with the environment a CI job would have."""
    _, token = tokens.create(admin, "ci")
    monkeypatch.setenv("SWITCHYARD_URL", live_server.url)
    monkeypatch.setenv("SWITCHYARD_TOKEN", token)
    return live_server


@pytest.fixture
def release(server, target):
    return factories.make_release(target.service, "1.0.0")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def deploy_args(*extra):
    return ("deploy", "--service", "api", "--env", "dev", "--version", "1.0.0", *extra)


def end(deployment_id: int, state: str) -> None:
    """What the reconcile loop records when a deployment finishes."""
    d = Deployment.objects.select_related("release", "target").get(pk=deployment_id)
    assert actions.record_tick(
        d,
        observed={},
        endpoint="",
        progress={},
        step_index=0,
        step="",
        weights={"stable": 100},
        message="",
        new_events=[],
        new_state=state,
    )


# --- release create ---------------------------------------------------------------------------


def test_release_create_is_created_then_idempotent_then_a_conflict(server, capsys):
    args = ("release", "create", "--service", "api", "--version", "1.4.2", "--commit", "abc")

    code, out, _ = run(capsys, *args, "--artifact", '{"sample": {}}')
    assert code == 0 and "created" in out

    code, out, _ = run(capsys, *args, "--artifact", '{"sample": {}}')
    assert code == 0 and "already exists" in out

    code, _, err = run(capsys, *args, "--artifact", '{"sample": {"error_rate": 0.5}}')
    assert code == 2 and "immutable" in err


def test_release_create_reads_the_artifact_from_a_file(server, capsys, tmp_path):
    artifact = tmp_path / "artifact.json"
    artifact.write_text(json.dumps({"command": ["python", "-m", "app", "--port", "{port}"]}))

    code, out, _ = run(
        capsys, "release", "create", "--service", "api", "--version", "2.0", "--artifact",
        f"@{artifact}", "--json",
    )  # fmt: skip

    assert code == 0
    assert json.loads(out)["artifact"]["command"][0] == "python"


@pytest.mark.parametrize("artifact", ["{not json", "[1, 2]", "@/nonexistent/file.json"])
def test_release_create_with_a_bad_artifact_is_a_usage_error(server, capsys, artifact):
    code, _, err = run(
        capsys, "release", "create", "--service", "api", "--version", "2.0", "--artifact", artifact
    )

    assert code == 2 and "artifact" in err


# --- deploy -----------------------------------------------------------------------------------


def test_deploy_starts_a_deployment_and_returns_at_once(server, release, capsys):
    code, out, _ = run(capsys, *deploy_args("--strategy", ROLLING, "--reason", "ship it"))

    assert code == 0
    d = Deployment.objects.get()
    assert f"#{d.pk}" in out and "pending" in out
    assert d.reason == "ship it" and d.created_by.username == "admin"
    assert d.idempotency_key.startswith("cli-")


def test_deploy_reads_the_strategy_from_a_file(server, release, capsys, tmp_path):
    spec = tmp_path / "strategy.json"
    spec.write_text('{"kind": "recreate", "replicas": 3}')

    code, _, _ = run(capsys, *deploy_args("--strategy", str(spec)))

    assert code == 0
    assert Deployment.objects.get().strategy["kind"] == "recreate"


def test_deploy_with_the_same_idempotency_key_twice_starts_one_deployment(server, release, capsys):
    assert run(capsys, *deploy_args("--idempotency-key", "build-9"))[0] == 0

    code, out, _ = run(capsys, *deploy_args("--idempotency-key", "build-9"))

    assert code == 0 and "already started" in out
    assert Deployment.objects.count() == 1


def test_deploy_with_an_invalid_strategy_prints_each_error_and_exits_2(server, release, capsys):
    code, _, err = run(capsys, *deploy_args("--strategy", '{"kind": "rolling", "replicas": 0}'))

    assert code == 2
    assert "strategy is invalid" in err and "replicas:" in err
    assert not Deployment.objects.exists()


def test_deploy_while_another_is_active_exits_2_naming_it(server, release, capsys):
    first = factories.make_deployment(release.service.targets.get(), "1.0.0")

    code, _, err = run(capsys, *deploy_args("--wait"))

    assert code == 2 and f"#{first.pk}" in err


@pytest.mark.parametrize(
    "argv",
    [
        ("deploy", "--service", "api", "--version", "1.0.0", "--wait"),  # no --env
        deploy_args("--wait", "--strategy", "{nope"),
        deploy_args("--wait", "--timeout", "-3"),
        ("status", "seven"),
        ("frobnicate", "7"),
    ],
)
def test_a_usage_error_exits_2_without_calling_the_api(server, capsys, argv):
    code, _, err = run(capsys, *argv)

    assert code == 2 and err
    assert not Deployment.objects.exists()


def test_deploy_wait_of_an_unknown_version_exits_2_with_the_api_message(server, target, capsys):
    code, _, err = run(capsys, *deploy_args("--wait"))

    assert code == 2
    assert "has no release 1.0.0" in err


def test_deploy_wait_exits_1_when_someone_aborts_the_deployment(server, release, capsys):
    result = {}
    waiter = threading.Thread(
        target=lambda: result.setdefault(
            "code", cli.main(list(deploy_args("--wait", "--interval", "0.1", "--timeout", "60")))
        )
    )
    waiter.start()
    try:
        deadline = time.monotonic() + 20
        while not Deployment.objects.exists():
            assert time.monotonic() < deadline, "the CLI never started the deployment"
            time.sleep(0.05)
        d = Deployment.objects.get()
        actions.abort(factories.api_actor(), d.pk, reason="wrong build")
        time.sleep(0.3)  # let the CLI see rolling_back
        end(d.pk, State.ABORTED)
    finally:
        waiter.join(30)

    assert not waiter.is_alive()
    out, _ = capsys.readouterr()
    assert result["code"] == 1
    assert "rolling_back" in out and "aborted" in out and "wrong build" in out
    lines = out.splitlines()
    assert lines.index(next(x for x in lines if "rolling_back" in x)) < len(lines) - 1


def test_deploy_wait_exits_0_when_the_deployment_succeeds(server, release, capsys):
    result = {}
    waiter = threading.Thread(
        target=lambda: result.setdefault(
            "code", cli.main(list(deploy_args("--wait", "--interval", "0.1", "--json")))
        )
    )
    waiter.start()
    try:
        deadline = time.monotonic() + 20
        while not Deployment.objects.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        end(Deployment.objects.get().pk, State.SUCCEEDED)
    finally:
        waiter.join(30)

    out, err = capsys.readouterr()
    assert result["code"] == 0
    assert json.loads(out.strip().splitlines()[-1])["state"] == "succeeded"  # JSON on stdout
    assert "started" in err  # progress on stderr


def test_deploy_wait_times_out_with_exit_1(server, release, capsys):
    code, _, err = run(capsys, *deploy_args("--wait", "--interval", "0.1", "--timeout", "0.5"))

    assert code == 1
    assert "timed out" in err and "still pending" in err


# --- status and operator commands -------------------------------------------------------------


@pytest.fixture
def deployment(release):
    return factories.make_deployment(release.service.targets.get(), "1.0.0")


def test_status_prints_the_deployment(server, deployment, capsys):
    code, out, _ = run(capsys, "status", str(deployment.pk))

    assert code == 0 and f"#{deployment.pk}" in out and "pending" in out
    code, out, _ = run(capsys, "status", "--json", str(deployment.pk))
    assert json.loads(out)["id"] == deployment.pk


def test_status_of_a_missing_deployment_exits_2(server, capsys):
    code, _, err = run(capsys, "status", "424242")

    assert code == 2 and "no deployment 424242" in err


def test_operator_commands_exit_0_when_allowed_and_2_when_not(server, deployment, capsys):
    pk = str(deployment.pk)

    assert run(capsys, "pause", pk)[0] == 0
    assert Deployment.objects.get().state == State.PAUSED
    code, _, err = run(capsys, "pause", pk)
    assert code == 2 and "Cannot pause" in err
    assert run(capsys, "resume", pk)[0] == 0
    code, out, _ = run(capsys, "promote", "--full", pk)
    assert code == 0 and "promote accepted" in out
    assert Deployment.objects.get().intent == "promote_full"
    assert run(capsys, "abort", "--reason", "bad", pk)[0] == 0
    assert Deployment.objects.get().state == State.ROLLING_BACK
    code, _, err = run(capsys, "rollback", pk)
    assert code == 2 and "Cannot rollback" in err


def test_rollback_of_a_succeeded_deployment_reports_the_new_one(server, target, capsys):
    factories.make_release(target.service, "1.0.0")
    end(factories.make_deployment(target, "1.0.0").pk, State.SUCCEEDED)
    second = factories.make_deployment(target, "1.1.0")
    end(second.pk, State.SUCCEEDED)

    code, out, _ = run(capsys, "rollback", str(second.pk))

    newest = Deployment.objects.order_by("-id").first()
    assert code == 0 and f"started deployment #{newest.pk}" in out
    assert newest.rollback_of_id == second.pk


# --- auth and reachability --------------------------------------------------------------------


def test_without_a_token_it_exits_2_with_the_apis_message(server, deployment, capsys, monkeypatch):
    monkeypatch.delenv("SWITCHYARD_TOKEN")

    code, _, err = run(capsys, "status", str(deployment.pk))

    assert code == 2 and "Authentication required" in err


def test_with_a_wrong_token_it_exits_2(server, deployment, capsys, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_TOKEN", "swy_abcdefgh_" + "A" * 43)

    code, _, err = run(capsys, "pause", str(deployment.pk))

    assert code == 2 and "not valid" in err
    assert Deployment.objects.get().state == State.PENDING


def test_with_a_revoked_token_it_exits_2_saying_so(server, deployment, capsys, monkeypatch):
    row, token = tokens.create(deployment.created_by, "old")
    tokens.revoke(row.prefix)
    monkeypatch.setenv("SWITCHYARD_TOKEN", token)

    code, _, err = run(capsys, "status", str(deployment.pk))

    assert code == 2 and "revoked" in err


def test_an_unreachable_server_exits_2(db, capsys, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SWITCHYARD_TOKEN", "swy_abcdefgh_" + "A" * 43)

    code, _, err = run(capsys, "status", "1")

    assert code == 2 and "cannot reach Switchyard" in err


def test_python_dash_m_switchyard_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "switchyard", "--help"], capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0
    assert "deploy" in done.stdout and "Exit status" in done.stdout
