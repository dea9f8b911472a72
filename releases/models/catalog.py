"""The catalog: services, environments (with their order and protection), targets (a service
placed in an environment, run by a provider of ``integrations.registry``) and releases."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from integrations import registry


class Channel(models.TextChoices):
    UI = "ui", "dashboard"
    API = "api", "API"
    CHAT = "chat", "chat"
    SYSTEM = "system", "system"


class Service(models.Model):
    slug = models.SlugField(unique=True, max_length=63)
    name = models.CharField(max_length=200)
    repository = models.CharField(max_length=500, blank=True)
    team = models.CharField(max_length=100, blank=True)
    default_strategy = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug


class Environment(models.Model):
    slug = models.SlugField(unique=True, max_length=63)
    name = models.CharField(max_length=200)
    order = models.PositiveIntegerField(default=0, help_text="Position on the promotion path.")
    default_strategy = models.JSONField(default=dict, blank=True)
    # the rollback window (docs/loop.md): seconds the previous release's slot stays warm at 0%
    # traffic after a rolling, canary or blue-green deployment succeeds, so that rolling it
    # back is a switch back; 0 turns it off
    rollback_window = models.PositiveIntegerField(
        default=300,
        help_text="Seconds the previous release stays warm at 0% traffic after a deployment "
        "succeeds (a rollback within them is a switch back); 0: off.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["order", "slug"]

    def __str__(self):
        return self.slug


class Target(models.Model):
    """A service placed in an environment, run by one integration."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="targets")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="targets")
    # providers are listed once, in integrations.registry (a callable: no migration per provider)
    provider = models.CharField(
        max_length=32, choices=registry.provider_choices, default=registry.DEFAULT_PROVIDER
    )
    config = models.JSONField(default=dict, blank=True)
    strategy = models.JSONField(default=dict, blank=True)
    stable_release = models.ForeignKey(
        "Release", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    stable_slot = models.CharField(max_length=32, default="blue")
    endpoint = models.CharField(max_length=200, blank=True)
    # the last slot status a tick observed: {"blue": {"version", "desired", "ready", "weight",
    # "instances": [...]}} -- web processes render this instead of calling the integration
    observed = models.JSONField(default=dict, blank=True)
    observed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["service", "environment"], name="one_target_per_env")
        ]
        ordering = ["service__slug", "environment__order"]

    def __str__(self):
        return f"{self.service.slug} in {self.environment.slug}"

    @property
    def key(self) -> str:
        return f"{self.service.slug}.{self.environment.slug}"


class ImmutableError(Exception):
    pass


class Release(models.Model):
    """An immutable version of a service."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="releases")
    version = models.CharField(max_length=128)
    artifact = models.JSONField(default=dict, blank=True)
    commit = models.CharField(max_length=64, blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_via = models.CharField(max_length=16, choices=Channel.choices, default=Channel.API)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["service", "version"], name="unique_release_version")
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.service.slug} {self.version}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableError("a release is immutable: create a new version instead")
        super().save(*args, **kwargs)
