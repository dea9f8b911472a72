"""API tokens: ``swy_<prefix>_<secret>``, only a hash stored; scopes and slug limits narrow
the user's roles (``releases.governance.tokens``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A bearer token: ``swy_<prefix>_<secret>``; only a hash of the whole token is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    hashed = models.CharField(max_length=64)
    scopes = models.JSONField(default=list, blank=True)
    # limits by slug (empty: no limit beyond the user's roles); see releases.governance.tokens
    environments = models.JSONField(default=list, blank=True)
    services = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_from = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} (swy_{self.prefix}_…)"
