"""A tick's lease on its deployment: short, renewed by a heartbeat, fenced.

``actions.claim`` takes the lease for ``LEASE_SECONDS`` (2 s) and bumps the row's
``lease_generation``. While the tick runs, the process' heartbeat thread renews it every quarter
lease, so a tick that spends longer than the lease in slow provider calls keeps it -- and a
worker killed mid-tick stops renewing, so its claim lapses in a second or two and the sweep hands
the deployment to another worker. One heartbeat thread serves every lease a process holds (a
worker of 8 threads holds up to 8) with one database connection, and lives while there are
leases: a thread per tick opened a Postgres connection per slow tick, and closed it.

Before every routing or scale call the tick checks, in its own thread and database connection,
that the lease is still its own (a conditional update that renews it too; the heartbeat's
renewals only keep it alive, the check decides). A tick that lost it raises ``LeaseLost`` and
abandons before acting. The call itself carries ``(deployment id, claim generation)`` as
``target.fence`` (``integrations.base.StaleFence``), so a call from a stale worker that was
already under way when its lease passed to another is refused by the target if the newer tick's
calls got there first.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.db import connection

from releases import actions

logger = logging.getLogger(__name__)

MUTATING = frozenset({"ensure_slot", "set_weights", "set_routing", "remove_slot"})


class LeaseLost(Exception):
    """The tick's claim lapsed and another worker took the deployment: act on nothing more."""


class Lease:
    def __init__(self, deployment_id: int, owner: str, generation: int) -> None:
        self.deployment_id = deployment_id
        self.owner = owner
        self.generation = generation
        self.interval = float(actions.LEASE_SECONDS) / 4

    def __enter__(self) -> Lease:
        _heartbeat.add(self)
        return self

    def __exit__(self, *exc) -> None:
        _heartbeat.remove(self)

    def check(self) -> None:
        """Raise ``LeaseLost`` unless the lease is still this tick's (and renew it)."""
        if not actions.renew_claim(self.deployment_id, self.owner, self.generation):
            raise LeaseLost(
                f"deployment {self.deployment_id}: lease {self.generation} of {self.owner} "
                "lapsed and was taken by another worker"
            )

    def renew(self) -> None:
        try:
            actions.renew_claim(self.deployment_id, self.owner, self.generation)
        except Exception:  # noqa: BLE001 -- a database blip: the next beat tries again
            logger.warning("lease heartbeat of %s failed", self.deployment_id, exc_info=True)


class Heartbeat:
    """Renews the leases held in this process, each every ``lease.interval`` from when it was
    taken, on one thread that starts with the first lease and ends (closing its connection) when
    none is left. A lease is renewed only while held: ``remove`` happens after the tick gave its
    claim back, and a renewal racing it changes nothing (``renew_claim`` matches the owner, which
    the release cleared)."""

    def __init__(self) -> None:
        self._due: dict[int, tuple[Lease, float]] = {}  # id(lease) -> (lease, next renewal at)
        self._lock = threading.Lock()
        self._thread: tuple[int, threading.Thread] | None = None  # (pid, thread)

    def add(self, lease: Lease) -> None:
        with self._lock:
            self._due[id(lease)] = (lease, time.monotonic() + lease.interval)
            if self._thread is None or self._thread[0] != os.getpid():  # none yet, or forked
                thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)
                self._thread = (os.getpid(), thread)
                thread.start()

    def remove(self, lease: Lease) -> None:
        with self._lock:
            self._due.pop(id(lease), None)

    def held(self) -> int:
        with self._lock:
            return len(self._due)

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    if not self._due:
                        self._thread = None  # the next add starts another
                        return
                    now = time.monotonic()
                    due = [lease for lease, at in self._due.values() if at <= now]
                    for lease in due:
                        self._due[id(lease)] = (lease, now + lease.interval)
                    wake = min(at for _, at in self._due.values())
                for lease in due:
                    with self._lock:
                        if id(lease) not in self._due:
                            continue  # given back meanwhile
                    lease.renew()
                time.sleep(max(0.01, wake - time.monotonic()))
        finally:
            connection.close()  # this thread's own connection


_heartbeat = Heartbeat()


class Fenced:
    """A target whose routing and scale calls check the lease first and carry its generation."""

    def __init__(self, inner, lease: Lease) -> None:
        self._inner = inner
        self._lease = lease
        try:
            inner.fence = (lease.deployment_id, lease.generation)
        except AttributeError:  # a provider object that takes no attributes cannot fence
            pass

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if name not in MUTATING:
            return attr

        def guarded(*args, **kwargs):
            self._lease.check()
            return attr(*args, **kwargs)

        return guarded
