"""Child processes that never outlive the fleet agent.

Each child gets its own session (so a Ctrl-C in the agent's terminal reaches the agent alone, which
then stops its children in order) and ``PR_SET_PDEATHSIG`` = SIGKILL on Linux, so a SIGKILLed
agent does not leave orphans behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
from collections.abc import Callable, Sequence

PR_SET_PDEATHSIG = 1


def _die_with(parent_pid: int) -> Callable[[], None]:
    def preexec() -> None:  # runs in the child between fork and exec
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            except OSError:
                pass
        if os.getppid() != parent_pid:  # the agent died before prctl took effect
            os._exit(1)

    return preexec


async def spawn(
    argv: Sequence[str], *, env: dict[str, str], cwd: str | None, log_fd: int | None
) -> asyncio.subprocess.Process:
    """Start ``argv`` as a child of this process (stdout and stderr to ``log_fd`` when given)."""
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log_fd,
        stderr=asyncio.subprocess.STDOUT if log_fd is not None else None,
        env=env,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=_die_with(os.getpid()),
    )


def _signal_group(proc: asyncio.subprocess.Process, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)  # the child leads its own process group
    except (ProcessLookupError, PermissionError):
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass


async def terminate(proc: asyncio.subprocess.Process, grace: float = 5.0) -> int:
    """SIGTERM the child (and its group), SIGKILL after ``grace`` seconds; its exit status."""
    if proc.returncode is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            return await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            _signal_group(proc, signal.SIGKILL)
    return await proc.wait()
