"""Web security: sign-in throttling and the security headers Django does not set itself.

**Throttling.** After ``LOGIN_MAX_FAILURES`` failed sign-ins for one username from one address
within ``LOGIN_FAILURE_WINDOW`` seconds, further attempts from there are refused until the oldest
failure leaves the window, whatever the password; an address with ``LOGIN_MAX_FAILURES_PER_ADDRESS``
failures over any usernames is refused too (password spraying). Failures are rows
(``LoginFailure``), so every web process sees the same counts; a success clears that
username's failures from that address. The check sits in the authentication backend, so it
covers the dashboard's sign-in and the Django admin's alike; the dashboard's form also says why.

**Headers.** ``SecurityHeadersMiddleware`` sends a Content-Security-Policy without inline or
remote scripts (the templates load only ``/static/`` files; style attributes are allowed, for
bar widths), and a Permissions-Policy. Django's own middleware sends the rest (nosniff,
X-Frame-Options, Referrer-Policy, Cross-Origin-Opener-Policy, HSTS over HTTPS).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django import forms
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.utils import timezone

from releases import audit
from releases.actors import Actor, client_address
from releases.models import Channel, LoginFailure

logger = logging.getLogger(__name__)


def _limits() -> tuple[int, timedelta, int]:
    return (
        getattr(settings, "LOGIN_MAX_FAILURES", 5),
        timedelta(seconds=getattr(settings, "LOGIN_FAILURE_WINDOW", 900)),
        getattr(settings, "LOGIN_MAX_FAILURES_PER_ADDRESS", 50),
    )


def _key(username) -> str:
    return (username or "").strip().lower()[:150]


def throttled_until(username: str, address: str | None, now=None) -> datetime | None:
    """When sign-ins for ``username`` from ``address`` are allowed again, or None if they are."""
    now = now or timezone.now()
    per_user, window, per_address = _limits()
    recent = LoginFailure.objects.filter(created_at__gt=now - window, address=address)
    for rows, limit in ((recent.filter(username=_key(username)), per_user), (recent, per_address)):
        times = list(rows.order_by("-created_at").values_list("created_at", flat=True)[:limit])
        if len(times) >= limit:
            return times[-1] + window
    return None


def record_failure(username: str, address: str | None) -> None:
    LoginFailure.objects.create(username=_key(username), address=address)
    # keep the table small: failures older than a day tell nothing any more
    LoginFailure.objects.filter(created_at__lt=timezone.now() - timedelta(days=1)).delete()


def _minutes(until: datetime) -> int:
    return max(1, round((until - timezone.now()).total_seconds() / 60))


class ThrottledModelBackend(ModelBackend):
    """Django's backend, refusing anyone throttled before the password is even checked."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None and username is not None:
            until = throttled_until(username, client_address(request))
            if until is not None:
                request._signin_throttled = until  # noqa: SLF001 -- read by the handlers below
                raise PermissionDenied("too many failed sign-ins")
        return super().authenticate(request, username=username, password=password, **kwargs)


class ThrottledAuthenticationForm(AuthenticationForm):
    """The sign-in form, saying when a throttled sign-in may be tried again (``throttled``)."""

    throttled = ""

    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError:
            until = getattr(self.request, "_signin_throttled", None)
            if until is not None:
                self.throttled = (
                    "Too many failed sign-ins for this username from your address: try again in "
                    f"{_minutes(until)} minute(s)."
                )
                raise forms.ValidationError(self.throttled, code="throttled") from None
            raise


@receiver(user_login_failed)
def _failed(sender, credentials, request=None, **kwargs):
    if request is None:
        return
    username = credentials.get("username", "")
    address = client_address(request)
    until = getattr(request, "_signin_throttled", None)
    if until is not None:
        return  # refused without checking the password: not another failure
    record_failure(username, address)
    if throttled_until(username, address) is not None:
        logger.warning("sign-ins for %r from %s are throttled", _key(username), address)
        audit.record(
            Actor(channel=Channel.UI, address=address, via="sign-in"),
            "session.throttled",
            data={"username": _key(username)},
            object_type="user",
            object_id=_key(username),
            object_repr=_key(username),
        )


@receiver(user_logged_in)
def _signed_in(sender, request, user, **kwargs):
    if request is None:
        return
    address = client_address(request)
    LoginFailure.objects.filter(username=_key(user.get_username()), address=address).delete()
    audit.record(Actor(user=user, channel=Channel.UI, address=address), "session.login", user)


@receiver(user_logged_out)
def _signed_out(sender, request, user, **kwargs):
    if request is None or user is None:
        return
    actor = Actor(user=user, channel=Channel.UI, address=client_address(request))
    audit.record(actor, "session.logout", user)


# --- headers ----------------------------------------------------------------------------------

PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


def content_security_policy(request) -> str:
    host = request.get_host()
    sockets = f"wss://{host}" + ("" if request.is_secure() else f" ws://{host}")
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",  # style attributes (bar widths), no remote CSS
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self' {sockets}",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeadersMiddleware:
    """Sync and async alike (as Django's own middleware): one sync-only middleware in the ASGI
    chain makes every request hop threads twice more."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        return self._headers(request, self.get_response(request))

    async def _acall(self, request):
        return self._headers(request, await self.get_response(request))

    @staticmethod
    def _headers(request, response):
        if getattr(settings, "CONTENT_SECURITY_POLICY", True):
            response.headers.setdefault("Content-Security-Policy", content_security_policy(request))
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
