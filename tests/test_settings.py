"""Settings helpers, the embedded Redis and the configuration system checks."""

import os
import subprocess
import sys

import pytest

from switchyard import env
from switchyard.embedded_redis import EmbeddedRedis, socket_answers


def test_envbool_accepts_true_and_false_words(monkeypatch):
    monkeypatch.setenv("FLAG", "yes")
    assert env.envbool("FLAG", False) is True
    monkeypatch.setenv("FLAG", "0")
    assert env.envbool("FLAG", True) is False
    monkeypatch.delenv("FLAG")
    assert env.envbool("FLAG", True) is True


def test_envbool_rejects_anything_else(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ValueError, match="FLAG must be true or false"):
        env.envbool("FLAG", False)


def test_envint_names_the_variable(monkeypatch):
    monkeypatch.setenv("N", "ten")
    with pytest.raises(ValueError, match="N must be a whole number"):
        env.envint("N", 1)
    monkeypatch.setenv("N", "10")
    assert env.envint("N", 1) == 10


def test_envlist_splits_on_commas(monkeypatch):
    monkeypatch.setenv("HOSTS", "a.example, b.example,,")
    assert env.envlist("HOSTS", []) == ["a.example", "b.example"]


def test_envsecret_reads_a_file(monkeypatch, tmp_path):
    secret = tmp_path / "key"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(secret))
    assert env.envsecret("SECRET_KEY") == "s3cret"


def test_it_parses_postgres_urls():
    db = env.parse_database_url("postgres://u:p%40ss@db.example:6543/sw?sslmode=require")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("sw", "u", "p@ss")
    assert (db["HOST"], db["PORT"]) == ("db.example", "6543")
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_it_parses_sqlite_urls_relative_and_absolute():
    assert env.parse_database_url("sqlite:///var/x.db", base_dir="/srv")["NAME"] == "/srv/var/x.db"
    assert env.parse_database_url("sqlite:////tmp/x.db")["NAME"] == "/tmp/x.db"
    assert env.parse_database_url("sqlite://:memory:")["NAME"] == ":memory:"


def test_it_rejects_unknown_database_schemes():
    with pytest.raises(ValueError, match="not supported"):
        env.parse_database_url("mysql://x/y")
    with pytest.raises(ValueError, match="no database name"):
        env.parse_database_url("postgres://localhost/")


def run_check(extra_env):
    environ = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    environ.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


def test_a_bad_setting_is_a_system_check_error_with_an_id():
    result = run_check({"DEBUG": "perhaps"})
    assert result.returncode != 0
    assert "switchyard.E002" in result.stderr
    assert "DEBUG must be true or false" in result.stderr


def test_a_bad_database_url_is_a_system_check_error():
    result = run_check({"DATABASE_URL": "mysql://nope/x", "SECRET_KEY": "x" * 50})
    assert result.returncode != 0
    assert "switchyard.E003" in result.stderr


def test_a_missing_secret_key_is_an_error_only_when_exposed():
    local = run_check({})
    assert local.returncode == 0
    assert "switchyard.W001" in local.stderr
    exposed = run_check({"ALLOWED_HOSTS": "switchyard.example.com"})
    assert exposed.returncode != 0
    assert "switchyard.E010" in exposed.stderr


def test_embedded_redis_starts_answers_and_stops(tmp_path):
    sock = tmp_path / "r.sock"
    server = EmbeddedRedis(sock).start()
    try:
        assert socket_answers(sock)
        import redis

        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        server.stop()
    assert not socket_answers(sock)
    assert server.process is None


def test_embedded_redis_dies_with_the_process_that_started_it(tmp_path):
    sock = tmp_path / "r.sock"
    code = (
        "import sys, time; from switchyard.embedded_redis import EmbeddedRedis;"
        f"EmbeddedRedis({str(sock)!r}).start(); print('up', flush=True); time.sleep(60)"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "up"
        assert socket_answers(sock)
        owner.kill()  # no atexit: only the kernel's parent-death signal can stop the server
        owner.wait()
        import time

        for _ in range(50):
            if not socket_answers(sock):
                break
            time.sleep(0.1)
        assert not socket_answers(sock)
    finally:
        if owner.poll() is None:
            owner.kill()


def _settings_in_subprocess(extra_env: dict, expression: str) -> str:
    env = {**os.environ, **extra_env, "DJANGO_SETTINGS_MODULE": "switchyard.settings"}
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_database_pool_max_gives_postgres_a_connection_pool_per_process():
    url = "postgres://u:p@127.0.0.1:5432/pooled"
    options = "settings.DATABASES['default'].get('OPTIONS', {}).get('pool')"
    pooled = _settings_in_subprocess({"DATABASE_URL": url, "DATABASE_POOL_MAX": "8"}, options)
    assert pooled == str({"min_size": 1, "max_size": 8, "timeout": 10})
    assert (
        _settings_in_subprocess({"DATABASE_URL": url, "DATABASE_POOL_MAX": "0"}, options) == "None"
    )
    bad = _settings_in_subprocess(
        {"DATABASE_URL": url, "DATABASE_POOL_MAX": "many"}, "settings.SETTINGS_ERRORS"
    )
    assert "switchyard.E014" in bad and "DATABASE_POOL_MAX" in bad


def test_database_conn_max_age_keeps_connections_but_not_beside_the_pool():
    url = "postgres://u:p@127.0.0.1:5432/persistent"
    db = "settings.DATABASES['default']"
    kept = _settings_in_subprocess(
        {"DATABASE_URL": url, "DATABASE_CONN_MAX_AGE": "600"},
        f"({db}['CONN_MAX_AGE'], {db}['CONN_HEALTH_CHECKS'])",
    )
    assert kept == "(600, True)"
    both = _settings_in_subprocess(
        {"DATABASE_URL": url, "DATABASE_CONN_MAX_AGE": "600", "DATABASE_POOL_MAX": "8"},
        "settings.SETTINGS_ERRORS",
    )
    assert "switchyard.E014" in both and "cannot both be set" in both
