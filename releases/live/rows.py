"""Deployments read as the plain rows ``presenters.deployment_view`` shows, for the API's hot
reads (a deployment, a page of them): one query whose SQL is compiled once per process.

The SQL is the ORM's own (``values(*DEPLOYMENT_COLUMNS)`` over the deployment's joins, by id),
compiled the first time and reused with an id array (``= ANY(%s)``): compiling that six-join
query cost ~1 ms a request, and ``values()`` another ~1.5 ms in per-value converters for a
page of 51 rows (docs/serving.md). The JSON columns are decoded here as ``JSONField`` would;
timestamps come as psycopg gives them (aware, in the connection's UTC, as the ORM's).
"""

from __future__ import annotations

import json
import threading

from django.conf import settings
from django.db import connection
from django.db.models import JSONField
from psycopg import postgres
from psycopg.pq import Format

from releases.live.presenters import DEPLOYMENT_COLUMNS
from releases.models import Deployment

# what a scope check needs beside what is shown (``policy.scope_of``: the target's ids)
SCOPE_COLUMNS = ("target__service", "target__environment")
COLUMNS = (*DEPLOYMENT_COLUMNS, *SCOPE_COLUMNS)
BIGINT = 2**63

_compiled: dict[str, tuple[str, tuple[int, ...]]] = {}
_lock = threading.Lock()


def rows_sql() -> tuple[str, tuple[int, ...]]:
    """The query (compiled on first use; its one parameter is an id array) and the positions
    of its JSON columns."""
    found = _compiled.get(connection.alias)
    if found is None:
        with _lock:
            rows = Deployment.objects.using(connection.alias).filter(pk=-1).order_by()
            sql, params = rows.values(*COLUMNS).query.sql_with_params()
            head, equals, tail = sql.rpartition(" = %s")
            if not equals or tail or params != (-1,):  # pragma: no cover - the ORM changed
                raise RuntimeError(f"unexpected deployment rows SQL: {sql}")
            json_at = tuple(
                i
                for i, name in enumerate(COLUMNS)
                if "__" not in name and isinstance(Deployment._meta.get_field(name), JSONField)
            )
            found = _compiled[connection.alias] = (f"{head} = ANY(%s)", json_at)
    return found


def _fast_timestamps(cursor) -> None:
    """Read this cursor's timestamps with psycopg's own (C) loader rather than Django's
    Python subclass of it (~1 ms of a page's 200 timestamps): the same aware datetimes, as
    Django has the connection's time zone UTC (``USE_TZ``)."""
    if not settings.USE_TZ:  # pragma: no cover - Switchyard always sets it
        return
    oid = postgres.types["timestamptz"].oid
    cursor.adapters.register_loader(oid, postgres.adapters.get_loader(oid, Format.TEXT))


def deployment_rows(ids: list[int]) -> dict[int, dict]:
    """{id: row} for the deployments among ``ids`` that exist (``COLUMNS``: what
    ``deployment_view`` shows and what ``policy.scope_of`` asks). The caller decides what may be
    seen: these are read by id, without a visibility filter. Rows with the same JSON document
    share its decoded value: read them, never change them in place."""
    ids = [pk for pk in ids if -BIGINT <= pk < BIGINT]  # no other id is stored (nor a 500)
    if not ids:
        return {}
    if connection.vendor != "postgresql":  # the same rows, the slower way
        return {r["id"]: r for r in Deployment.objects.filter(pk__in=ids).values(*COLUMNS)}
    sql, json_at = rows_sql()
    with connection.cursor() as cursor:
        _fast_timestamps(cursor.cursor)
        cursor.execute(sql, [list(ids)])
        fetched = cursor.fetchall()
    rows, decoded = {}, {}  # a page's rows mostly repeat their strategies, weights, progress
    for values in fetched:
        values = list(values)
        for i in json_at:
            text = values[i]
            if text is not None:
                if text not in decoded:
                    decoded[text] = json.loads(text)
                values[i] = decoded[text]
        row = dict(zip(COLUMNS, values, strict=True))
        rows[row["id"]] = row
    return rows
