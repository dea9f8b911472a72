"""The Redis broker transport, with one fix: a worker survives a Redis restart while it holds
unacknowledged messages.

The cause (celery 5.7.0, kombu 5.7.0, redis-py 8.1; seen 3 times out of 3 and reproduced by
``tests/e2e/test_broker_restart.py``): when the broker connection drops, celery 5.7's
``Consumer.on_connection_error_after_connected`` first calls ``connection.collect()`` -- which
tries to close the channel, fails reading the dead socket *before* the channel is marked closed,
and then detaches the transport from its ``Connection`` (``transport.client = None``) -- and then,
new in 5.7, ``connection.close()``. That second close runs ``Channel.close`` again, which now
restores the unacknowledged messages (``QoS.restore_unacked_once``) and builds a new Redis pool
from ``transport.client``: ``AttributeError: 'NoneType' object has no attribute 'hostname'``. It
is not a connection error, so ``ignore_errors`` lets it through and the worker stops with
"Unrecoverable error". An idle worker survives (nothing to restore); ours is rarely idle, because
every delayed tick (``countdown``) is an ETA message the worker holds unacknowledged until it is
due, and every running tick (``acks_late``) holds its own.

The same happens when a tick that ran through the loss finishes after the reconnect and acks its
message through the old channel (``QoS.ack`` builds a pool from the collected connection).

The fix: a channel whose connection has been collected raises a ``redis.ConnectionError`` when
it would build a pool -- the error kombu and celery already handle (the close is ignored, the
ack is logged as failed) -- instead of the ``AttributeError`` they do not. There is no Redis to
restore to or ack on through that channel; the messages stay in Redis's unacked set, which kombu
restores after ``visibility_timeout`` if the server kept them. Nothing is lost for Switchyard
either way: the next tick is due in ``Deployment.next_tick_at`` and the sweep re-enqueues it.

Installed by ``switchyard.celery`` as the transport of ``redis://``, ``rediss://`` and
``redis+socket://`` URLs (kombu's ``TRANSPORT_ALIASES``). Remove when celery no longer closes a
collected connection (check with the test above).
"""

from __future__ import annotations

from kombu import transport as kombu_transports
from kombu.transport import redis
from redis import exceptions as redis_errors


class Channel(redis.Channel):
    def _connparams(self, asynchronous=False):
        if self.connection.client is None:
            # the channel outlived its connection (collected after a broker loss): whatever it
            # was about to send -- a restore of unacked messages, the late ack of a tick that ran
            # through the loss -- fails as the connection error it is, which kombu and celery
            # handle (logged; the message stays in Redis's unacked set)
            raise redis_errors.ConnectionError(
                "broker connection already collected: unacked messages left to the visibility "
                "timeout and the sweep"
            )
        return super()._connparams(asynchronous=asynchronous)


class Transport(redis.Transport):
    Channel = Channel


def install() -> None:
    """Make ``redis://``, ``rediss://`` and ``redis+socket://`` use this transport."""
    for alias in ("redis", "rediss"):
        kombu_transports.TRANSPORT_ALIASES[alias] = f"{__name__}:Transport"
