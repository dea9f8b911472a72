"""Who is acting, and through which channel: passed to every command."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from releases.models import Channel


@dataclass(frozen=True)
class Actor:
    user: Any = None  # a User, or None for the system
    channel: str = Channel.SYSTEM
    address: str | None = None
    via: str = ""  # e.g. the API token's name

    @property
    def name(self) -> str:
        if self.user is not None:
            base = self.user.get_username()
            return f"{base} ({self.via})" if self.via else base
        return self.via or "switchyard"

    @classmethod
    def system(cls, via: str = "reconciler") -> Actor:
        return cls(user=None, channel=Channel.SYSTEM, via=via)

    @classmethod
    def from_request(cls, request, channel: str, via: str = "") -> Actor:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        address = forwarded.split(",")[0].strip() or request.META.get("REMOTE_ADDR") or None
        user = request.user if getattr(request, "user", None) and request.user.is_authenticated else None
        return cls(user=user, channel=channel, address=address, via=via)
