"""The REST API v1 (django-ninja): the root ``api``, mounted at ``/api/v1/``.

Auth is on by default (an API token, or a logged-in session with CSRF); the docs and the OpenAPI
schema are public. One router module per resource: ``services``, ``environments``, ``targets``,
``releases``, ``deployments`` (deployments, events, strategies), ``policies``, ``freezes``,
``roles``, ``analysis`` (templates and runs). What they share: ``auth`` (who is calling, what
they may do, bodies, the JSON error mapping), ``schemas`` (XIn/XOut), ``common`` (lookups,
timestamps, create-or-409). The contract is /work/shared/API.md.

State changes go through ``releases.actions``; configuration rows (services, environments,
targets, policies, freezes, roles, templates) are written here with an AuditEvent each.
May import: actions, governance, audit, models, ``releases.live.presenters``/``runs``,
``integrations.registry``. Never the reconcile loop.
"""

from __future__ import annotations

import functools

from django.urls import re_path
from ninja import NinjaAPI

from releases.api import (
    analysis,
    deployments,
    environments,
    freezes,
    openapi,
    policies,
    releases,
    roles,
    services,
    targets,
)
from releases.api.auth import AUTH, StrictJSONParser, install_error_handlers, json_error


def _json_not_allowed(view):
    """ninja answers an unsupported method with a plain-text 405; make it our JSON error."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            allowed = response.get("Allow", "")
            error = json_error(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed on {request.path}; use {allowed}.",
                {"allowed": [m.strip() for m in allowed.split(",") if m.strip()]},
            )
            error["Allow"] = allowed
            return error
        return response

    return wrapper


def _unknown_path(request, *args, **kwargs):
    message = f"There is no API endpoint at {request.path}"
    if request.path.endswith("/"):
        message += " (API paths have no trailing slash)"
    return json_error(404, "not_found", message + "; see /api/v1/docs.")


class SwitchyardAPI(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        """With each operation's real error responses (``releases.api.openapi``)."""
        return openapi.truthful(super().get_openapi_schema(*args, **kwargs))

    def _get_urls(self):
        urls = super()._get_urls()
        for pattern in urls:
            callback = getattr(pattern, "callback", None)
            if callback is not None:
                pattern.callback = _json_not_allowed(callback)
        # last: anything else under /api/v1/ is a JSON 404, not the HTML page
        return [*urls, re_path(r"^.*$", _unknown_path, name="unknown-path")]


api = SwitchyardAPI(
    title="Switchyard API",
    version="1",
    description=(
        "Release control plane: register releases, deploy them with a strategy, watch and "
        "steer rollouts. Authenticate with `Authorization: Bearer swy_…` "
        "(`manage.py token create`). Every error is "
        '`{"code", "message", "details"}`.'
    ),
    urls_namespace="api",
    auth=AUTH,
    parser=StrictJSONParser(),
)
install_error_handlers(api)
# in the order the OpenAPI document lists them
for module in (services, environments, targets, releases, deployments, policies, freezes, roles):
    api.add_router("", module.router)
api.add_router("", analysis.router)
# the notifications app's router, by name: releases never imports that app (it imports us)
api.add_router("", "notifications.api.router")  # channels, rules, test messages, Slack links
