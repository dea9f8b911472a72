"""The dashboard: server-rendered pages that ``static/js/*.js`` keep live over WebSockets.

One module per page, with what they share here:

- ``views_board``: the service x environment matrix (``/``);
- ``views_deployment``: one deployment (``/deployments/<id>/``), its action buttons (a partial
  the page re-fetches when the state changes) and the list of deployments;
- ``views_release``: one release and its "Deploy to..." form;
- ``views_history``: deployments per service and environment, with delivery figures;
- ``views_audit``: the audit log, filtered, and its JSON lines export.

Views only read; every state change goes through ``releases.actions``. Who may see or do what
is decided in one place, ``releases.api.auth.authorize`` (the REST API's), through ``refusal``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.core.paginator import Paginator

from releases.errors import Forbidden, NotFound
from releases.governance import policy
from releases.models import Deployment, Environment, Service


def deployments():
    return Deployment.objects.select_related(
        "target__service", "target__environment", "release", "from_release", "created_by"
    )


def words(value) -> str:
    return str(value).replace("_", " ")


def one_of(states) -> str:
    names = [words(s) for s in states]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def visible(request, qs, *, env: str | None, service: str | None):
    """``qs`` limited to what the signed-in user may see (``releases.governance.policy``, as the
    API asks): give the field paths of its environment and service (``"target__environment"``,
    ``"pk"``, or None)."""
    return policy.visible(qs, request.user, env=env, service=service)


def visible_deployments(request, qs=None):
    qs = deployments() if qs is None else qs
    return visible(request, qs, env="target__environment", service="target__service")


def refusal(request, action: str, obj=None) -> str:
    """Why the signed-in user may not do ``action`` (``"deployment.promote"``…) on ``obj``, or ""
    when they may: the same ``policy.check`` as the REST API's ``authorize``, so that roles apply
    to both the same way."""
    try:
        policy.check(request.user, action, obj)
    except (Forbidden, NotFound) as exc:
        return exc.message
    return ""


def span(value: timedelta | None) -> str:
    """A duration in words a person reads at a glance: "45 s", "3 min 20 s", "2 h 5 min",
    "3 d 4 h"; "—" for None."""
    if value is None:
        return "—"
    seconds = max(0, round(value.total_seconds()))
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60)):
        if seconds >= size:
            rest = (seconds % size) // sub_size
            return f"{seconds // size} {unit}" + (f" {rest} {sub}" if rest else "")
    if seconds >= 60:
        return f"{seconds // 60} min" + (f" {seconds % 60} s" if seconds % 60 else "")
    return f"{seconds} s"


# --- periods (history, audit) --------------------------------------------------------------------

PERIODS = {"7": "7 days", "30": "30 days", "90": "90 days", "365": "a year"}
DEFAULT_PERIOD = "30"


def parse_day(value: str) -> datetime | None:
    """``YYYY-MM-DD`` as midnight UTC, or None."""
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except (AttributeError, ValueError):
        return None


def parse_moment(value: str) -> datetime | None:
    """``YYYY-MM-DDTHH:MM`` (an ``<input type="datetime-local">``, read as UTC) or a day."""
    value = (value or "").strip()
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def period_from(query, now: datetime) -> tuple[datetime, datetime, dict]:
    """[start, end) from ``?period=7|30|90|365`` or ``?from=YYYY-MM-DD&to=YYYY-MM-DD`` (both days
    included), and the values to put back in the form."""
    start, end = parse_day(query.get("from", "")), parse_day(query.get("to", ""))
    if start or end:
        end = end + timedelta(days=1) if end else now
        start = start or end - timedelta(days=int(DEFAULT_PERIOD))
        if start > end:
            start, end = end - timedelta(days=1), start + timedelta(days=1)
        form = {"period": "", "from": start.date().isoformat()}
        form["to"] = (end - timedelta(days=1)).date().isoformat() if query.get("to") else ""
        return start, end, form
    period = query.get("period", DEFAULT_PERIOD)
    if period not in PERIODS:
        period = DEFAULT_PERIOD
    return now - timedelta(days=int(period)), now, {"period": period, "from": "", "to": ""}


def list_context(request, qs, filters: dict, page_size: int) -> dict:
    """What every paged, filtered list page gives its template: the page, the filters, the
    filters as a query string (kept by the pager, ``_pager.html``) and the services and
    environments the user may filter by."""
    return {
        "page": Paginator(qs, page_size).get_page(request.GET.get("page")),
        "filters": filters,
        "query": urlencode({k: v for k, v in filters.items() if v}),
        "services": visible(request, Service.objects.all(), env=None, service="pk"),
        "environments": visible(request, Environment.objects.all(), env="pk", service=None),
    }
