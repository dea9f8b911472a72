"""The fleet agent's children start off its event loop and their exits are heard through a pidfd.

A child's start blocks its caller until the child has exec'd; on a loaded machine that took
up to 1.4 s per instance, and in the agent's loop it stalled every router and control call
(docs/serving.md). Here a slow start is stood in for by a Popen that takes 0.5 s."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from integrations.local import children

SLOW_START = 0.5


async def _worst_gap(until: asyncio.Future) -> float:
    """The longest the loop went without running this task, while ``until`` is pending."""
    worst, last = 0.0, time.perf_counter()
    while not until.done():
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        worst, last = max(worst, now - last - 0.01), now
    return worst


def test_a_slow_start_does_not_stall_the_event_loop(monkeypatch):
    real = subprocess.Popen

    def slow_popen(*args, **kwargs):
        time.sleep(SLOW_START)  # the new process waiting for a core before it execs
        return real(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", slow_popen)

    async def main():
        started = asyncio.ensure_future(
            children.spawn(
                [sys.executable, "-c", "pass"], env=dict(os.environ), cwd=None, log_fd=None
            )
        )
        gap = await _worst_gap(started)
        child = await started
        return gap, await child.wait()

    gap, status = asyncio.run(main())
    assert status == 0
    assert gap < SLOW_START / 2, f"the loop stalled {gap:.3f}s while a child started"


def test_exit_status_and_signals_are_heard(tmp_path):
    log = tmp_path / "child.log"

    async def main():
        fd = os.open(log, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            exits = await children.spawn(
                [sys.executable, "-c", "print('hello'); raise SystemExit(3)"],
                env=dict(os.environ),
                cwd=None,
                log_fd=fd,
            )
        finally:
            os.close(fd)  # the caller's descriptor is its own to close at once
        sleeper = await children.spawn(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            env=dict(os.environ),
            cwd=None,
            log_fd=None,
        )
        assert sleeper.returncode is None
        code = await asyncio.wait_for(exits.wait(), 10)
        stopped = await children.terminate(sleeper, grace=5)
        return code, exits.returncode, stopped

    code, returncode, stopped = asyncio.run(main())
    assert (code, returncode) == (3, 3)
    assert stopped == -signal.SIGTERM
    assert log.read_text().strip() == "hello"


def test_a_child_started_for_a_cancelled_spawn_is_killed(monkeypatch, tmp_path):
    pid_file = tmp_path / "pid"
    real = subprocess.Popen

    def slow_popen(*args, **kwargs):
        time.sleep(SLOW_START)
        popen = real(*args, **kwargs)
        pid_file.write_text(str(popen.pid))
        return popen

    monkeypatch.setattr(subprocess, "Popen", slow_popen)

    async def main():
        task = asyncio.ensure_future(
            children.spawn(
                [sys.executable, "-c", "import time; time.sleep(60)"],
                env=dict(os.environ),
                cwd=None,
                log_fd=None,
            )
        )
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            if pid_file.exists() and not _alive(int(pid_file.read_text())):
                return True
        return False

    assert asyncio.run(main()), "the late child was left running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is not alive
        return fh.read().split(") ")[-1][0] != "Z"
