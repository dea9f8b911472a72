"""Child processes that never outlive the fleet agent.

Each child gets its own session (so a Ctrl-C in the agent's terminal reaches the agent alone, which
then stops its children in order) and ``PR_SET_PDEATHSIG`` = SIGKILL on Linux, so a SIGKILLed
agent does not leave orphans behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

PR_SET_PDEATHSIG = 1
# libc is loaded here, before any fork: a child must not dlopen between fork and exec (another
# thread may have held the loader's lock at the fork)
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
# Starting a child blocks its caller until the child has exec'd (Popen waits on the exec pipe):
# on a loaded machine the new process may wait for a core for a second. In the agent's event loop
# that stalled every router and control call (100 canaries starting at once: each spawn held
# the loop p50 144 ms, p90 875 ms, max 1.4 s; docs/serving.md), so children start in threads.
_SPAWNER = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fleet-spawn")
POLL_SECONDS = 0.1  # where there is no pidfd (not Linux): how often an exit is looked for


def _die_with(parent_pid: int) -> Callable[[], None]:
    def preexec() -> None:  # runs in the child between fork and exec
        if _LIBC is not None:
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the agent died before prctl took effect
            os._exit(1)

    return preexec


class Child:
    """A child process started by :func:`spawn`, whose exit the event loop hears of through a
    pidfd (or, without one, by polling). ``pid``, ``returncode`` (negative: the signal that
    ended it), ``await wait()`` and ``send_signal`` as ``asyncio.subprocess.Process`` has them."""

    def __init__(self, popen: subprocess.Popen, loop: asyncio.AbstractEventLoop):
        self._popen = popen
        self.pid = popen.pid
        self._exited: asyncio.Future[int] = loop.create_future()
        self._poller: asyncio.Task | None = None
        try:
            fd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # not Linux, or a kernel before 5.3
            self._poller = loop.create_task(self._poll())
            return

        def readable() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            if not self._reaped():
                self._poller = loop.create_task(self._poll())

        loop.add_reader(fd, readable)

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def _reaped(self) -> bool:
        code = self._popen.poll()
        if code is None:
            return False
        if not self._exited.done():
            self._exited.set_result(code)
        return True

    async def _poll(self) -> None:
        while not self._reaped():
            await asyncio.sleep(POLL_SECONDS)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def send_signal(self, signum: int) -> None:
        self._popen.send_signal(signum)  # (nothing once it has been reaped)


def _start(
    argv: Sequence[str], env, cwd, log_fd: int | None, pass_fds: Sequence[int] = ()
) -> subprocess.Popen:
    try:
        return subprocess.Popen(
            list(argv),
            pass_fds=tuple(pass_fds),
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=subprocess.STDOUT if log_fd is not None else None,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with(os.getpid()),
        )
    finally:
        if log_fd is not None:
            os.close(log_fd)


def _kill_late(future) -> None:
    """A spawn whose caller was cancelled meanwhile: the child it started after all goes too."""
    if future.cancelled() or future.exception() is not None:
        return
    popen = future.result()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    _SPAWNER.submit(popen.wait)  # reaped off the loop


async def spawn(
    argv: Sequence[str], *, env: dict[str, str], cwd: str | None, log_fd: int | None
) -> Child:
    """Start ``argv`` as a child of this process (stdout and stderr to ``log_fd`` when given),
    off the event loop. ``log_fd`` stays the caller's (the child gets a copy)."""
    loop = asyncio.get_running_loop()
    own_fd = os.dup(log_fd) if log_fd is not None else None
    future = loop.run_in_executor(_SPAWNER, functools.partial(_start, argv, env, cwd, own_fd))
    try:
        popen = await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(_kill_late)
        raise
    return Child(popen, loop)


def _signal_group(proc: Child, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)  # the child leads its own process group
    except (ProcessLookupError, PermissionError):
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass


async def terminate(proc: Child, grace: float = 5.0) -> int:
    """SIGTERM the child (and its group), SIGKILL after ``grace`` seconds; its exit status."""
    if proc.returncode is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            return await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            _signal_group(proc, signal.SIGKILL)
    return await proc.wait()
