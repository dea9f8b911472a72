"""The audit trail's rows: append-only ``AuditEvent`` (a trigger refuses UPDATE and DELETE on
Postgres) and the one ``AuditChainHead`` row that serialises inserts (``releases.audit``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from releases.models.catalog import Channel, ImmutableError


class AuditEvent(models.Model):
    """Append-only record of every action, from every channel."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_name = models.CharField(max_length=150)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    # for changes: the values before (``data`` holds the values after)
    before = models.JSONField(null=True, blank=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    # set by releases.audit.record before the insert: it is part of the hashed content
    created_at = models.DateTimeField(default=timezone.now)
    # the hash chain (releases.audit): prev_hash is the previous row's hash, hash covers this
    # row's content and prev_hash. ``manage.py audit verify`` walks it.
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object")]

    def __str__(self):
        return f"{self.actor_name} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args, **kwargs):
        # append-only: on Postgres a trigger also refuses UPDATE and DELETE (migration 0003)
        if not self._state.adding:
            raise ImmutableError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("audit events are append-only")


class AuditChainHead(models.Model):
    """The one row that orders audit inserts: ``releases.audit.record`` locks it, links the new
    row to ``last_hash`` and moves it on. It also lets ``audit verify`` notice removed tail rows.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_id = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="")
    length = models.BigIntegerField(default=0)

    def __str__(self):
        return f"audit chain: {self.length} rows, last #{self.last_id}"
