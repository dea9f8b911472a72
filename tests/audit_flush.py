"""Transactional tests end with Django's flush, a TRUNCATE of every table -- which the audit
trail's triggers refuse (migration 0007). The test database role is a superuser, so the flush
runs with ``session_replication_role = replica`` (triggers do not fire), exactly what a
superuser could do by hand; the application's own role cannot (docs/audit.md)."""

from __future__ import annotations

from django.db import transaction
from django.db.backends.postgresql.operations import DatabaseOperations

_flush = DatabaseOperations.execute_sql_flush


def execute_sql_flush(self, sql_list):
    with transaction.atomic(using=self.connection.alias):
        with self.connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
        _flush(self, sql_list)


DatabaseOperations.execute_sql_flush = execute_sql_flush
