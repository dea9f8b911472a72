"""A tick's lease on its deployment: short, renewed by a heartbeat, fenced.

``actions.claim`` takes the lease for ``LEASE_SECONDS`` (2 s) and bumps the row's
``lease_generation``. While the tick runs, a heartbeat thread renews it every quarter lease, so a
tick that spends longer than the lease in slow provider calls keeps it -- and a worker killed
mid-tick stops renewing, so its claim lapses in a second or two and the sweep hands the
deployment to another worker.

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
import threading

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
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Lease:
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-{self.deployment_id}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def check(self) -> None:
        """Raise ``LeaseLost`` unless the lease is still this tick's (and renew it)."""
        if not actions.renew_claim(self.deployment_id, self.owner, self.generation):
            raise LeaseLost(
                f"deployment {self.deployment_id}: lease {self.generation} of {self.owner} "
                "lapsed and was taken by another worker"
            )

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    actions.renew_claim(self.deployment_id, self.owner, self.generation)
                except Exception:  # noqa: BLE001 -- a database blip: the next beat tries again
                    logger.warning(
                        "lease heartbeat of %s failed", self.deployment_id, exc_info=True
                    )
        finally:
            connection.close()  # this thread's own connection


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
