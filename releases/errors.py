"""Domain errors. The API maps each to its HTTP status in one place; the UI shows the message."""

from __future__ import annotations


class DomainError(Exception):
    code = "invalid_request"
    status = 400

    def __init__(self, message: str, *, details: dict | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code:
            self.code = code


class InvalidRequest(DomainError):
    code, status = "invalid_request", 400


class InvalidSpec(DomainError):
    code, status = "invalid_spec", 422


class NotFound(DomainError):
    code, status = "not_found", 404


class Forbidden(DomainError):
    code, status = "forbidden", 403


class Conflict(DomainError):
    code, status = "conflict", 409


class ApprovalRequired(Conflict):
    """The deployment (or its current canary step) waits for approvals that have not all been
    given: 409 ``approval_required``, with ``details.required`` / ``details.approved``."""

    code, status = "approval_required", 409


class Frozen(Conflict):
    """A freeze window blocks a new deployment or an automatic promotion: 409 ``frozen``, with
    ``details.window`` naming the window (id, name, reason, until). 409 rather than 423: the
    request conflicts with the environment's current state and can be retried when the window
    ends (or with an admin's written override); 423 is WebDAV's lock and clients rarely know it.
    """

    code, status = "frozen", 409
