"""The sample application's instances, forked from a process that has already imported it.

Starting ``python -m integrations.local.sample_app`` costs ~0.3 s of CPU, most of it importing
aiohttp; a canary of 100 targets starts 100 of them at once, and on two cores that burst held
every other process of the control plane off the CPU for seconds (docs/serving.md). The fleet
agent therefore runs one *zygote* (``python -m integrations.local.zygote``) per fleet: it imports
the sample app and uvloop once, then forks a child for each instance asked of it, which costs a
few milliseconds. Commands of the team's own (``artifact.command``) are exec'd as before
(:mod:`integrations.local.children`). ``SWITCHYARD_FLEET_ZYGOTE=0`` execs the sample app too.

The agent and its zygote speak newline-delimited JSON over a socket pair:

- agent -> zygote: ``{"id": n, "argv": [...], "env": {...}, "cwd": ..., "log": path | null}``;
- zygote -> agent: ``{"id": n, "pid": p}`` (or ``{"id": n, "error": "..."}``) once forked, and
  ``{"exit": p, "code": c}`` when child ``p`` has exited (``c`` negative: the signal that ended
  it), always after its ``pid`` line.

Lifetimes: the zygote dies with the agent (``PR_SET_PDEATHSIG`` and EOF on its socket), and each
child with the zygote (``PR_SET_PDEATHSIG``), so a SIGKILLed agent leaves no orphan behind. Each
child leads a session of its own, as an exec'd instance does. The zygote is single-threaded, so
forking it is safe; ``random`` reseeds itself in every child.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence

from integrations.local import children

log = logging.getLogger("switchyard.fleet")

SAMPLE_MODULE = "integrations.local.sample_app"
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def enabled() -> bool:
    return os.environ.get("SWITCHYARD_FLEET_ZYGOTE", "1") not in ("0", "false", "no", "off")


def forkable(argv: list[str]) -> bool:
    """Whether ``argv`` runs the sample app with this interpreter (what a zygote can fork)."""
    return len(argv) >= 3 and argv[0] == sys.executable and argv[1:3] == ["-m", SAMPLE_MODULE]


# --- the agent's side -------------------------------------------------------------------------


class ZygoteGone(OSError):
    """The zygote could not be started, or is gone: exec the instance instead."""


class Forked:
    """A child forked by the zygote, shaped as :class:`children.Child` is: ``pid``,
    ``returncode``, ``await wait()``, ``send_signal``."""

    def __init__(self, pid: int, loop: asyncio.AbstractEventLoop):
        self.pid = pid
        self.returncode: int | None = None
        self._exited: asyncio.Future[int] = loop.create_future()

    def _exit(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
        if not self._exited.done():
            self._exited.set_result(self.returncode)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)


class Zygote:
    """One fleet's zygote, started at its first :meth:`fork`, restarted if it died."""

    def __init__(self, log_dir: str | None = None):
        self._log_dir = log_dir
        self._proc: subprocess.Popen | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._starting: asyncio.Future[None] | None = None
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._children: dict[int, Forked] = {}
        self._seq = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._writer is not None else None

    async def fork(
        self, argv: Sequence[str], *, env: dict[str, str], cwd: str | None, log: str | None
    ) -> Forked:
        """Fork a child that runs the sample app with ``argv`` (see :func:`forkable`)."""
        await self._ensure()
        if self._writer is None:  # it died as soon as it had started
            raise ZygoteGone("the zygote is gone")
        loop = asyncio.get_running_loop()
        self._seq += 1
        ident = self._seq
        answer: asyncio.Future[int] = loop.create_future()
        self._pending[ident] = answer
        message = {"id": ident, "argv": list(argv), "env": env, "cwd": cwd, "log": log}
        self._writer.write(json.dumps(message).encode() + b"\n")
        pid = await answer  # ZygoteGone when it died meanwhile; OSError when the fork failed
        return self._children[pid]

    async def _ensure(self) -> None:
        if self._writer is not None:
            return
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        try:
            await asyncio.shield(self._starting)
        finally:
            if self._starting is not None and self._starting.done():
                self._starting = None

    async def _start(self) -> None:
        ours, theirs = socket.socketpair()
        log_fd = None
        if self._log_dir:
            path = os.path.join(self._log_dir, "zygote.log")
            log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [PROJECT_ROOT, env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        argv = [sys.executable, "-m", "integrations.local.zygote", "--fd", str(theirs.fileno())]
        loop = asyncio.get_running_loop()
        start = functools.partial(
            children._start, argv, env, None, log_fd, pass_fds=(theirs.fileno(),)
        )
        try:
            self._proc = await loop.run_in_executor(children._SPAWNER, start)
        except OSError as exc:
            ours.close()
            raise ZygoteGone(f"could not start the zygote: {exc}") from exc
        finally:
            theirs.close()
        try:
            reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        except OSError as exc:
            ours.close()
            self._proc.kill()
            children._SPAWNER.submit(self._proc.wait)
            raise ZygoteGone(f"could not reach the zygote: {exc}") from exc
        self._reader_task = asyncio.create_task(self._read(reader), name="zygote reader")
        log.info("zygote pid %s started", self._proc.pid)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        try:
            while line := await reader.readline():
                message = json.loads(line)
                if "exit" in message:
                    child = self._children.pop(message["exit"], None)
                    if child is not None:
                        child._exit(message["code"])
                    continue
                answer = self._pending.pop(message["id"], None)
                if "pid" in message:
                    self._children[message["pid"]] = Forked(message["pid"], loop)
                    if answer is not None and not answer.done():
                        answer.set_result(message["pid"])
                elif answer is not None and not answer.done():
                    answer.set_exception(OSError(message.get("error", "fork failed")))
        except (OSError, ValueError) as exc:  # a torn line: the zygote died mid-write
            log.warning("zygote connection lost: %s", exc)
        finally:
            self._gone()

    def _gone(self) -> None:
        """The zygote is gone, and its children with it (they die with it): tell everyone."""
        proc, writer = self._proc, self._writer
        self._writer = None
        self._reader_task = None
        if writer is not None:
            writer.close()
        if proc is not None:
            children._SPAWNER.submit(proc.wait)  # reaped off the loop
            log.info("zygote pid %s gone", proc.pid)
        for answer in self._pending.values():
            if not answer.done():
                answer.set_exception(ZygoteGone("the zygote is gone"))
        self._pending.clear()
        for child in self._children.values():
            child._exit(-signal.SIGKILL)
        self._children.clear()

    async def close(self) -> None:
        """Stop the zygote (its remaining children die with it)."""
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting
        if self._writer is not None:
            self._writer.close()  # EOF: the zygote exits
        task = self._reader_task
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(task), 5.0)
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()


# --- the zygote's side ------------------------------------------------------------------------


def _send(sock: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):  # the agent is gone: EOF will end the loop
        sock.sendall(json.dumps(message).encode() + b"\n")


def _child(sock: socket.socket, wakeup: tuple[int, int], request: dict) -> None:
    """In the forked child: become the instance, run the sample app, and never return."""
    code = 1
    try:
        os.setsid()
        parent = os.getppid()
        if children._LIBC is not None:
            children._LIBC.prctl(children.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the zygote died before prctl took effect
            os._exit(1)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sock.close()
        for fd in wakeup:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        if request.get("log"):
            out = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.close(out)
        sys.stdout.reconfigure(line_buffering=True)
        os.environ.clear()
        os.environ.update(request["env"])
        if request.get("cwd"):
            os.chdir(request["cwd"])
        argv = request["argv"]
        sys.argv = [SAMPLE_MODULE, *argv[3:]]
        from integrations.local import sample_app

        code = sample_app.main(argv[3:])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 -- a crash is the instance's exit status, as with exec
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        # whatever happened above, the child ends here: it must never return to the zygote's loop
        os._exit(code if isinstance(code, int) else 1)


def serve(fd: int) -> int:
    """The zygote's loop: fork on request, report exits, end at EOF."""
    # imported before the first fork, so that no child pays for it
    import integrations.local.loops  # noqa: F401
    import integrations.local.sample_app  # noqa: F401

    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401

    sock = socket.socket(fileno=fd)  # blocking: the agent reads every line as it comes
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the agent's to handle
    signal.set_wakeup_fd(wake_w)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    buffered = b""
    while True:
        for key, _ in selector.select():
            if key.fileobj == wake_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
                while True:
                    try:
                        pid, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    _send(sock, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})
                continue
            data = sock.recv(65536)  # readable: does not block
            if not data:  # the agent is gone (or closed us): so are we, and our children
                return 0
            buffered += data
            while b"\n" in buffered:
                line, buffered = buffered.split(b"\n", 1)
                request = json.loads(line)
                try:
                    pid = os.fork()
                except OSError as exc:
                    _send(sock, {"id": request["id"], "error": str(exc)})
                    continue
                if pid == 0:
                    selector.close()
                    _child(sock, (wake_r, wake_w), request)
                _send(sock, {"id": request["id"], "pid": pid})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m integrations.local.zygote")
    parser.add_argument("--fd", type=int, required=True, help="the socket to the fleet agent")
    args = parser.parse_args(argv)
    return serve(args.fd)


if __name__ == "__main__":
    sys.exit(main())
