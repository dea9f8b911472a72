"""Plain-dict views of the domain, shared by the REST API and the WebSocket messages."""

from __future__ import annotations

from django.urls import reverse

from releases.models import Deployment, DeploymentEvent, Release, Target


def _ts(value):
    return value.isoformat() if value else None


def slots_view(target: Target) -> dict:
    """Per slot: version, replicas ready/desired, weight and instances (as last observed)."""
    return target.observed or {}


def role_weights(deployment: Deployment) -> dict:
    return deployment.weights or {}


def deployment_dict(d: Deployment) -> dict:
    target = d.target
    return {
        "id": d.pk,
        "service": target.service.slug,
        "environment": target.environment.slug,
        "state": d.state,
        "active": d.is_active,
        "strategy": d.strategy,
        "step": {"index": d.step_index, "description": d.step},
        "weights": role_weights(d),
        "slots": {"stable": d.stable_slot, "canary": d.canary_slot},
        "stable_version": d.from_release.version if d.from_release_id else None,
        "target_version": d.release.version,
        "intent": d.intent or None,
        "message": d.message,
        "failure_reason": d.failure_reason or None,
        "reason": d.reason,
        "rollback_of": d.rollback_of_id,
        "analysis": [],
        "created_by": d.created_by.get_username() if d.created_by_id else None,
        "created_at": _ts(d.created_at),
        "started_at": _ts(d.started_at),
        "finished_at": _ts(d.finished_at),
        "updated_at": _ts(d.updated_at),
        "version": d.version,
        "links": {
            "self": f"/api/v1/deployments/{d.pk}",
            "events": f"/api/v1/deployments/{d.pk}/events",
            "page": reverse("deployment", args=[d.pk]),
        },
    }


def event_dict(e: DeploymentEvent) -> dict:
    return {
        "id": e.pk,
        "deployment": e.deployment_id,
        "kind": e.kind,
        "message": e.message,
        "data": e.data,
        "actor": e.actor,
        "created_at": _ts(e.created_at),
    }


def release_dict(r: Release) -> dict:
    return {
        "service": r.service.slug,
        "version": r.version,
        "artifact": r.artifact,
        "commit": r.commit,
        "notes": r.notes,
        "created_by": r.created_by.get_username() if r.created_by_id else None,
        "created_at": _ts(r.created_at),
    }


def target_dict(t: Target) -> dict:
    return {
        "service": t.service.slug,
        "environment": t.environment.slug,
        "provider": t.provider,
        "config": t.config,
        "strategy": t.strategy or None,
        "endpoint": t.endpoint or None,
        "stable_version": t.stable_release.version if t.stable_release_id else None,
        "stable_slot": t.stable_slot,
        "slots": slots_view(t),
        "observed_at": _ts(t.observed_at),
    }
