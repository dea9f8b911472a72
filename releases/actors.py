"""Who is acting, and through which channel: passed to every command."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from releases.models import Channel

NAME_MAX = 150


def client_address(request) -> str | None:
    """The caller's IP address, or None when it is not one (garbage never reaches an inet
    column). X-Forwarded-For's first hop counts only behind a trusted proxy
    (``TRUST_X_FORWARDED_FOR=true``): otherwise any client could write its own address."""
    candidates = [request.META.get("REMOTE_ADDR", "")]
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[0].strip()
        candidates.insert(0, forwarded)
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class Actor:
    user: Any = None  # a User, or None for the system
    channel: str = Channel.SYSTEM
    address: str | None = None
    via: str = ""  # e.g. the API token's name
    # the ApiToken the request came with: its scopes and places narrow every command's check
    token: Any = None

    @property
    def name(self) -> str:
        """Who to show: ``user (token name)``, at most NAME_MAX characters (the columns that
        keep it are varchar(150); a long username with a long token name must not overflow)."""
        if self.user is not None:
            base = self.user.get_username()
            name = f"{base} ({self.via})" if self.via else base
        else:
            name = self.via or "switchyard"
        return name if len(name) <= NAME_MAX else name[: NAME_MAX - 1] + "…"

    @classmethod
    def system(cls, via: str = "reconciler") -> Actor:
        return cls(user=None, channel=Channel.SYSTEM, via=via)

    @classmethod
    def from_request(cls, request, channel: str, via: str = "", token: Any = None) -> Actor:
        address = client_address(request)
        user = (
            request.user
            if getattr(request, "user", None) and request.user.is_authenticated
            else None
        )
        return cls(user=user, channel=channel, address=address, via=via, token=token)
