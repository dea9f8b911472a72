"""Real-browser tests: Debian's Chromium driven by Playwright's Python API, against a real stack
(fleet agent, Celery worker and beat, uvicorn serving the ASGI app) on this test session's
database and Redis.

Run them in a pytest invocation of their own (``pytest tests/browser``): Playwright runs an event
loop in the test's thread, after which ``async_to_sync`` there fails, and the other tests use it.
A run that collects anything else leaves these out (and says so). Chromium comes from apt
(``apt-get install -y chromium``); without it these tests are skipped, unless
``SWITCHYARD_BROWSER_REQUIRED=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connections

from integrations.local.ports import free_port
from integrations.local.process import start_agent
from switchyard import processes
from tests.stack import child_database_url, wait_for

# ORM calls from the test thread while Playwright's loop runs in it (see the module docstring)
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

HERE = Path(__file__).resolve().parent
OUTPUT = Path(django_settings.BASE_DIR) / "test-output" / "browser"
CHROMIUM = os.environ.get("SWITCHYARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "pw-for-browser-tests"


def pytest_collection_modifyitems(config, items):
    """Leave the browser tests out of a run that also collected other tests."""
    mine = [i for i in items if Path(str(i.path)).is_relative_to(HERE)]
    if len(mine) == len(items):
        return
    for item in mine:
        items.remove(item)
    config.hook.pytest_deselected(items=mine)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and mine:
        reporter.write_line(
            f"tests/browser: {len(mine)} browser test(s) left out; run `pytest tests/browser` "
            "on its own (Playwright and async_to_sync cannot share a thread)"
        )


class Stack:
    """The processes of one installation; the web server can be stopped and started again."""

    def __init__(self, agent, env: dict, log_dir: Path, tmp: Path):
        self.agent = agent
        self.env = env
        self.log_dir = log_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = processes.Supervisor(env=env, log_dir=log_dir)
        self.workers.start("worker", processes.worker_command(concurrency=2))
        self.workers.start("beat", processes.beat_command(tmp / "beat-schedule"))
        self.web: processes.Supervisor | None = None
        self.start_web()

    def start_web(self) -> None:
        self.web = processes.Supervisor(env=self.env, log_dir=self.log_dir)
        self.web.start("web", processes.web_command(self.port))
        processes.wait_http(f"{self.url}/login/", timeout=30)

    def stop_web(self) -> None:
        if self.web is not None:
            self.web.stop()
            self.web = None

    def wait_for(self, predicate, timeout=60.0, interval=0.2, what="condition"):
        return wait_for(
            predicate, self.workers, self.log_dir, timeout=timeout, interval=interval, what=what
        )

    def stop(self) -> None:
        self.stop_web()
        self.workers.stop()
        self.agent.stop()


@pytest.fixture(scope="session")
def chromium_path():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} not found: apt-get install -y chromium"
        if os.environ.get("SWITCHYARD_BROWSER_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("playwright", reason="pip install -e '.[dev]' installs playwright")
    return CHROMIUM


@pytest.fixture
def stack(transactional_db, settings, tmp_path):
    log_dir = OUTPUT / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    token = settings.FLEET_TOKEN
    agent = start_agent(token=token, log_path=log_dir / "fleet.log")
    settings.FLEET_URL = agent.url
    env = dict(os.environ)
    env.update(
        DATABASE_URL=child_database_url(),
        REDIS_URL=settings.REDIS_URL,
        FLEET_URL=agent.url,
        FLEET_TOKEN=token,
        SECRET_KEY=settings.SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    running = Stack(agent, env, log_dir, tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, stack):
    """``new_page(width=1280, height=900)``: a fresh browser context (its own cookies)."""
    contexts = []

    def make(width=1280, height=900, **options):
        context = browser.new_context(
            base_url=stack.url, viewport={"width": width, "height": height}, **options
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sign_in(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def shot(page, name: str, full_page: bool = True) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def off_loop(fn, *args, **kwargs):
    """Call ``fn`` in a thread of its own and return its result: a command publishes its change
    with ``async_to_sync``, which cannot run in the thread where Playwright's loop runs."""
    result, error = [], []

    def run():
        try:
            result.append(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller's thread
            error.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
