"""Figures computed from the record: ``delivery`` (lead time, change failure rate, time to
restore, per environment and service, for the history page) and ``prometheus`` (Switchyard's
own ``/metrics``: deployments by state, ticks, analyses). Read-only. May import:
``releases.models``.
"""
