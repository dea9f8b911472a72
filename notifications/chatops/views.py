"""The Slack endpoints: ``POST /chatops/slack/interactivity`` (button clicks) and
``POST /chatops/slack/commands`` (the slash command). Both verify the signature before reading
anything; a refused request changes nothing and says why (401). The slash command answers in
its response (ephemeral); a click answers through the payload's ``response_url`` (a task on the
notify queue: Slack wants the HTTP answer within 3 s, whatever its own speed)."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

from celery import current_app
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.notify.slack.blocks import ACTION_PREFIX, BUTTONS
from notifications import config
from notifications.chatops import commands, identity, verify
from notifications.outbox import NOTIFY_QUEUE

logger = logging.getLogger(__name__)

RESPOND_TASK = "notifications.respond"


def _refuse(reason: str) -> HttpResponse:
    return JsonResponse({"code": "not_authenticated", "message": reason, "details": {}}, status=401)


def _form(request) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}


@csrf_exempt
@require_POST
def slash_command(request):
    try:
        verify.check(request.body, request.headers)
    except verify.Refused as exc:
        return _refuse(str(exc))
    form = _form(request)
    team, slack_user = form.get("team_id", ""), form.get("user_id", "")
    try:
        command = commands.parse(form.get("text", ""))
    except commands.InvalidRequest as exc:
        return JsonResponse({"response_type": "ephemeral", "text": exc.message})
    if command.verb == "link":  # before any lookup by email: the explicit link is asked for
        answer = config.redeem_link_code(team, slack_user, command.code, form.get("user_name", ""))
        return JsonResponse({"response_type": "ephemeral", "text": answer})
    actor = commands.actor_for(
        identity.user_for(team, slack_user), team, slack_user, form.get("user_name", "")
    )
    answer = commands.run(actor, command)
    return JsonResponse({"response_type": "ephemeral", "text": answer})


@csrf_exempt
@require_POST
def interactivity(request):
    try:
        verify.check(request.body, request.headers)
    except verify.Refused as exc:
        return _refuse(str(exc))
    try:
        payload = json.loads(_form(request).get("payload", ""))
        clicked = payload["actions"][0]
        team = (payload.get("team") or {}).get("id", "")
        slack_user = payload["user"]["id"]
        slack_name = payload["user"].get("username") or payload["user"].get("name", "")
        verb, _, raw_id = str(clicked.get("value", "")).partition(":")
        deployment_id = int(raw_id)
    except (ValueError, KeyError, IndexError, TypeError):
        return JsonResponse(
            {"code": "invalid_request", "message": "not a Switchyard button", "details": {}},
            status=400,
        )
    if payload.get("type") != "block_actions" or clicked.get("action_id") != ACTION_PREFIX + verb:
        return HttpResponse(status=200)  # something else of the app's: not ours to answer
    if verb not in BUTTONS:
        return JsonResponse(
            {"code": "invalid_request", "message": f"unknown button {verb!r}", "details": {}},
            status=400,
        )
    actor = commands.actor_for(identity.user_for(team, slack_user), team, slack_user, slack_name)
    answer = commands.run(actor, commands.Command(verb, deployment_id=deployment_id))
    response_url = payload.get("response_url")
    if response_url:
        body = {"response_type": "ephemeral", "replace_original": False, "text": answer}
        try:
            current_app.send_task(RESPOND_TASK, args=(response_url, body), queue=NOTIFY_QUEUE)
        except Exception:  # noqa: BLE001 -- the action is done; only the answer is lost
            logger.warning("could not enqueue the answer to a Slack click", exc_info=True)
    return HttpResponse(status=200)
