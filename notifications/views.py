"""The Notifications pages: ``/notifications/`` (channels with their state, delivery log and dead
letters, the rules, Slack user links) and the channel form (``/notifications/channels/new/``,
``.../<pk>/edit/``). Anyone signed in reads them; every change goes through
``notifications.config`` -- the same functions, role checks and audit records as the API -- and a
refusal shows that function's message. Secrets are write-only fields: the form never renders a
stored value, only which secrets are set and from where."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from integrations.notify import registry
from notifications import config, secrets
from notifications.config import channel_dict
from notifications.models import ChatUser, Delivery, NotificationChannel, Rule
from notifications.triggers import TRIGGERS
from releases.api.auth import actor_for
from releases.errors import DomainError
from releases.models import Environment, Service
from releases.web.common import refusal

LOG_ROWS = 20
LIST_CONFIG = {"to"}  # config values that are lists (email recipients): comma-separated here


@login_required
def page(request):
    channels = list(NotificationChannel.objects.prefetch_related("rules"))
    for channel in channels:
        channel.view = channel_dict(channel)
        channel.log = list(Delivery.objects.filter(channel=channel).order_by("-id")[:LOG_ROWS])
        channel.dead = list(config.dead_letters(channel)[:LOG_ROWS])
    return render(
        request,
        "notifications/page.html",
        {
            "channels": channels,
            "rules": Rule.objects.select_related("channel"),
            "links": ChatUser.objects.select_related("user"),
            "triggers": TRIGGERS,
            "services": Service.objects.all(),
            "environments": Environment.objects.order_by("order"),
            "refused": refusal(request, "notification_channel.update"),
        },
    )


def _attempt(request, fn, *args, success: str = "", **kwargs):
    """Run a ``notifications.config`` change; its refusal (role, conflict, invalid) is shown
    as the flash message, exactly as the API would word it."""
    try:
        result = fn(actor_for(request), *args, **kwargs)
    except DomainError as exc:
        messages.error(request, exc.message)
        return None
    if success:
        messages.success(request, success)
    return result if result is not None else True


# --- the channel form -------------------------------------------------------------------------


def _kinds() -> list[dict]:
    out = []
    for kind, label in registry.kind_choices():
        cls = registry.transport_class(kind)
        out.append({"kind": kind, "label": label, "config": cls.CONFIG, "secrets": cls.SECRETS})
    return out


def _read_form(post, kind: dict, *, editing: bool) -> tuple[dict, dict]:
    """(config, secrets) from the form. A secret field left empty keeps what is stored (when
    editing); "remove" drops it; an environment variable name stores ``{"env": NAME}``."""
    cfg: dict = {}
    for key in kind["config"]:
        raw = post.get(f"config_{key}", "").strip()
        if not raw:
            continue
        if key in LIST_CONFIG:
            cfg[key] = [part.strip() for part in raw.replace("\n", ",").split(",") if part.strip()]
        else:
            cfg[key] = raw
    values: dict = {}
    for name in kind["secrets"]:
        value = post.get(f"secret_{name}", "")
        env = post.get(f"env_{name}", "").strip()
        if editing and post.get(f"clear_{name}"):
            values[name] = None
        elif value.strip():
            values[name] = value.strip()
        elif env:
            values[name] = {"env": env}
    return cfg, values


def _form_values(channel: NotificationChannel | None, post=None) -> dict:
    """What the form shows in its plain fields: posted values after an error, else the stored
    config. Never a secret (only environment variable names, which are not secret)."""
    if post is not None:
        return {k.removeprefix("config_"): v for k, v in post.items() if k.startswith("config_")}
    out = {}
    for key, value in (channel.config if channel else {}).items():
        out[key] = ", ".join(value) if isinstance(value, list) else str(value)
    return out


def _env_names(channel: NotificationChannel | None) -> dict:
    if channel is None:
        return {}
    try:
        stored = secrets.stored(channel.secrets)
    except secrets.SecretError:
        return {}
    return {k: v["env"] for k, v in stored.items() if isinstance(v, dict) and "env" in v}


def _render_form(request, channel, kind, *, errors=(), message="", status=200):
    return render(
        request,
        "notifications/channel_form.html",
        {
            "channel": channel,
            "kind": kind,
            "kinds": _kinds(),
            "values": _form_values(channel, request.POST if errors or message else None),
            "name": request.POST.get("name", channel.name if channel else ""),
            "set": channel_dict(channel)["secrets"] if channel else {},
            "env_names": _env_names(channel),
            "errors": errors,
            "message": message,
            "refused": refusal(
                request,
                "notification_channel.update" if channel else "notification_channel.create",
            ),
        },
        status=status,
    )


@login_required
def channel_new(request):
    kinds = {k["kind"]: k for k in _kinds()}
    kind = kinds.get(request.POST.get("kind") or request.GET.get("kind", ""))
    if request.method != "POST" or kind is None:
        return _render_form(request, None, kind)
    cfg, values = _read_form(request.POST, kind, editing=False)
    try:
        channel = config.create_channel(
            actor_for(request),
            name=request.POST.get("name", "").strip(),
            kind=kind["kind"],
            config=cfg,
            values=values,
        )
    except DomainError as exc:
        errors = (exc.details or {}).get("errors", [])
        return _render_form(request, None, kind, errors=errors, message=exc.message, status=400)
    messages.success(request, f"Channel {channel.name} created. Add a rule to send it moments.")
    return redirect(f"{_page_url()}#channel-{channel.pk}")


@login_required
def channel_edit(request, pk: int):
    channel = get_object_or_404(NotificationChannel, pk=pk)
    kind = {k["kind"]: k for k in _kinds()}[channel.kind]
    if request.method != "POST":
        return _render_form(request, channel, kind)
    cfg, values = _read_form(request.POST, kind, editing=True)
    try:
        config.update_channel(
            actor_for(request),
            channel,
            name=request.POST.get("name", "").strip() or channel.name,
            config=cfg,
            values=values,
        )
    except DomainError as exc:
        channel.refresh_from_db()
        errors = (exc.details or {}).get("errors", [])
        return _render_form(request, channel, kind, errors=errors, message=exc.message, status=400)
    messages.success(request, f"Channel {channel.name} saved.")
    return redirect(f"{_page_url()}#channel-{channel.pk}")


def _page_url() -> str:
    from django.urls import reverse

    return reverse("notifications")


@login_required
@require_POST
def channel_delete(request, pk: int):
    channel = get_object_or_404(NotificationChannel, pk=pk)
    _attempt(request, config.delete_channel, channel, success=f"Channel {channel.name} deleted.")
    return redirect("notifications")


# --- channel actions --------------------------------------------------------------------------


@login_required
@require_POST
def test(request, pk: int):
    channel = get_object_or_404(NotificationChannel, pk=pk)
    _attempt(
        request,
        config.send_test,
        channel,
        success=f"A test message to {channel.name} is on its way.",
    )
    return redirect("notifications")


@login_required
@require_POST
def enable(request, pk: int):
    channel = get_object_or_404(NotificationChannel, pk=pk)
    _attempt(
        request,
        config.update_channel,
        channel,
        enabled=True,
        success=f"{channel.name} is enabled again.",
    )
    return redirect("notifications")


@login_required
@require_POST
def retry(request, pk: int):
    row = get_object_or_404(Delivery.objects.select_related("channel"), pk=pk)
    _attempt(
        request,
        config.retry_delivery,
        row,
        success=f"Delivery {row.pk} ({row.trigger}) to {row.channel.name} is queued again.",
    )
    return redirect(f"{_page_url()}#channel-{row.channel_id}")


# --- rules ------------------------------------------------------------------------------------


@login_required
@require_POST
def add_rule(request):
    channel = NotificationChannel.objects.filter(pk=request.POST.get("channel") or 0).first()
    if channel is None:
        messages.error(request, "Choose a channel for the rule.")
        return redirect("notifications")
    _attempt(
        request,
        config.create_rule,
        channel,
        events=request.POST.getlist("events"),
        services=request.POST.getlist("services"),
        environments=request.POST.getlist("environments"),
        success=f"Rule added to {channel.name}.",
    )
    return redirect("notifications")


@login_required
@require_POST
def delete_rule(request, pk: int):
    rule = get_object_or_404(Rule, pk=pk)
    _attempt(request, config.delete_rule, rule, success="Rule removed.")
    return redirect("notifications")


# --- Slack users ------------------------------------------------------------------------------


@login_required
@require_POST
def add_link(request):
    username = request.POST.get("username", "").strip() or request.user.get_username()
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    team, slack_user = (
        request.POST.get("team_id", "").strip(),
        request.POST.get("slack_user_id", "").strip(),
    )
    if username != request.user.get_username():
        why = refusal(request, "chat_user.create")
        if why:
            messages.error(request, why)
            return redirect("notifications")
    if user is None or not team or not slack_user:
        messages.error(request, "Give the Slack team ID, the Slack user ID and a user.")
        return redirect("notifications")
    _attempt(
        request,
        config.link_slack_user,
        team_id=team,
        slack_user_id=slack_user,
        user=user,
        success=f"Slack user {slack_user} now acts as {username}.",
    )
    return redirect("notifications")


@login_required
@require_POST
def delete_link(request, pk: int):
    link = get_object_or_404(ChatUser.objects.select_related("user"), pk=pk)
    _attempt(
        request,
        config.unlink_slack_user,
        link,
        success=f"Slack user {link.slack_user_id} no longer acts as {link.user.get_username()}.",
    )
    return redirect("notifications")


@login_required
@require_POST
def link_code(request):
    """A one-time code for the signed-in user, shown once (it is not stored, only its hash)."""
    code = _attempt(request, config.issue_link_code)
    if code:
        messages.success(
            request,
            f"In Slack, run /switchyard link {code} within 10 minutes: that Slack account will "
            f"then act as {request.user.get_username()}. The code works once.",
        )
    return redirect("notifications")
