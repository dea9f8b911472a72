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
