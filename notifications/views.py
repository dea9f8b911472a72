"""The Notifications page (``/notifications/``): channels with their state and delivery log, a
"send a test message" button, re-enabling a channel a permanent error disabled, the rules, and
Slack user links. Anyone signed in reads it; changes need the admin role everywhere (the API's
``authorize``, through ``releases.web.common.refusal``) and are audited."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from notifications import outbox
from notifications.api import channel_dict, link_dict, rule_dict
from notifications.models import ChatUser, Delivery, NotificationChannel, Rule
from notifications.triggers import TRIGGERS
from releases import audit
from releases.api.auth import actor_for
from releases.models import Environment, Service
from releases.web.common import refusal

LOG_ROWS = 20


@login_required
def page(request):
    channels = list(NotificationChannel.objects.prefetch_related("rules"))
    for channel in channels:
        channel.view = channel_dict(channel)
        channel.log = list(Delivery.objects.filter(channel=channel).order_by("-id")[:LOG_ROWS])
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


def _refused(request) -> bool:
    why = refusal(request, "notification_channel.update")
    if why:
        messages.error(request, why)
    return bool(why)


@login_required
@require_POST
def test(request, pk: int):
    channel = get_object_or_404(NotificationChannel, pk=pk)
    if not _refused(request):
        if not channel.enabled:
            messages.error(request, f"{channel.name} is disabled: enable it first.")
        else:
            outbox.send_test(channel, actor_for(request))
            messages.success(request, f"A test message to {channel.name} is on its way.")
    return redirect("notifications")


@login_required
@require_POST
def enable(request, pk: int):
    channel = get_object_or_404(NotificationChannel, pk=pk)
    if not _refused(request):
        with transaction.atomic():
            before = channel_dict(channel)
            channel.enabled, channel.disabled_reason, channel.disabled_at = True, "", None
            channel.save()
            audit.record(
                actor_for(request),
                "notifications.channel_update",
                channel,
                channel_dict(channel),
                before=before,
            )
        messages.success(request, f"{channel.name} is enabled again.")
    return redirect("notifications")


@login_required
@require_POST
def add_rule(request):
    if not _refused(request):
        channel = get_object_or_404(NotificationChannel, pk=request.POST.get("channel") or 0)
        events = [e for e in request.POST.getlist("events") if e in TRIGGERS]
        with transaction.atomic():
            rule = Rule.objects.create(
                channel=channel,
                events=events,
                services=request.POST.getlist("services"),
                environments=request.POST.getlist("environments"),
            )
            audit.record(actor_for(request), "notifications.rule_create", rule, rule_dict(rule))
        messages.success(request, f"Rule added to {channel.name}.")
    return redirect("notifications")


@login_required
@require_POST
def delete_rule(request, pk: int):
    rule = get_object_or_404(Rule, pk=pk)
    if not _refused(request):
        with transaction.atomic():
            audit.record(
                actor_for(request), "notifications.rule_delete", rule, before=rule_dict(rule)
            )
            rule.delete()
        messages.success(request, "Rule removed.")
    return redirect("notifications")


@login_required
@require_POST
def add_link(request):
    username = request.POST.get("username", "").strip() or request.user.get_username()
    if username != request.user.get_username() and _refused(request):
        return redirect("notifications")
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    team, slack_user = (
        request.POST.get("team_id", "").strip(),
        request.POST.get("slack_user_id", ""),
    )
    if user is None or not team or not slack_user.strip():
        messages.error(request, "Give the Slack team ID, the Slack user ID and a user.")
        return redirect("notifications")
    try:
        with transaction.atomic():
            link = ChatUser.objects.create(
                team_id=team,
                slack_user_id=slack_user.strip(),
                user=user,
                linked_by=request.user.get_username(),
            )
            audit.record(actor_for(request), "notifications.slack_link", link, link_dict(link))
    except IntegrityError:
        messages.error(request, f"Slack user {slack_user} is linked already.")
        return redirect("notifications")
    messages.success(request, f"Slack user {slack_user} now acts as {username}.")
    return redirect("notifications")
