"""What every API endpoint shares: who is calling (auth), what they may do (``authorize``), who
acts (``actor_for``), how bodies are parsed, and how every error becomes
``{"code", "message", "details"}`` with its status -- in one place each.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig, SuspiciousOperation
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from releases.actors import Actor, client_address
from releases.errors import DomainError, Forbidden
from releases.governance import policy, tokens
from releases.models import Channel

logger = logging.getLogger(__name__)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
STATUS_CODES = {
    400: "invalid_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    422: "invalid_request",
    429: "throttled",
}
NOT_AUTHENTICATED = (
    "Authentication required: send `Authorization: Bearer <token>` "
    "(create a token with `manage.py token create`), or log in."
)


# --- who is calling ---------------------------------------------------------------------------


class TokenAuth(HttpBearer):
    """``Authorization: Bearer swy_…``. A header that is present but wrong is refused outright
    (no fall-back to the session), so a script with a bad token learns why."""

    def __call__(self, request: HttpRequest) -> Any:
        header = request.headers.get(self.header, "").strip()
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != self.openapi_scheme or not value.strip():
            raise tokens.TokenRefused(
                "The Authorization header must be `Bearer <token>` with a swy_… API token."
            )
        return self.authenticate(request, value.strip())

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        row = tokens.verify(token, address=client_address(request))
        request.user = row.user
        request.api_token = row
        return row.user


class SessionAuth(APIKeyCookie):
    """A logged-in Django session (the dashboard's own calls). Unsafe methods must pass Django's
    CSRF check (the ``X-CSRFToken`` header), exactly as a form post would."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if request.method not in SAFE_METHODS and check_csrf(request) is not None:
            raise Forbidden(
                "CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header "
                "(or use an API token).",
                details={"reason": "csrf"},
            )
        request.api_token = None
        return user


AUTH = [TokenAuth(), SessionAuth()]


# --- what they may do -------------------------------------------------------------------------


def authorize(request: HttpRequest, action: str, obj: Any = None) -> None:
    """The one place that decides whether the caller may do ``action`` (``"<object>.<verb>"``,
    e.g. ``"deployment.promote"``) on ``obj``; raises if not.

    ``releases.governance.policy.check``: roles per environment (and service) decide, narrowed by
    the API
    token's scopes, environments and services. NotFound for what the user may not see
    (outsiders learn nothing), Forbidden for what they may see but not do. The dashboard asks
    the same question through ``releases.web.common.refusal``; the commands ask it again.
    """
    policy.check(request.user, action, obj, token=getattr(request, "api_token", None))


def visible(request: HttpRequest, qs, *, env: str | None, service: str | None):
    """``qs`` limited to what the caller (and their token) may see: pass the field paths of the
    environment and the service (``"target__environment"``, ``"pk"``, or None)."""
    return policy.visible(
        qs, request.user, env=env, service=service, token=getattr(request, "api_token", None)
    )


def actor_for(request: HttpRequest) -> Actor:
    """Who is acting: the token's user through the API (``via`` the token's name), or the
    logged-in user through the dashboard."""
    token = getattr(request, "api_token", None)
    if token is not None:
        actor = Actor.from_request(request, channel=Channel.API, via=token.name, token=token)
    else:
        actor = Actor.from_request(request, channel=Channel.UI)
    return actor


# --- bodies -----------------------------------------------------------------------------------


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _check_text(value: Any, where: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"a string{where} contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"a string{where} is not valid Unicode (a lone surrogate)") from None


class StrictJSONParser(Parser):
    """JSON that the database can store: no NaN/Infinity, no NUL characters, no lone surrogates
    (each would otherwise fail at the INSERT as a 500)."""

    def parse_body(self, request: HttpRequest) -> Any:
        data = json.loads(request.body, parse_constant=_no_constant, parse_float=_finite)
        stack = [(data, "")]
        while stack:  # iterative: the depth was already bounded by json.loads
            value, path = stack.pop()
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_text(key, f" key at {path or 'the top'}")
                    stack.append((item, f"{path}.{key}" if path else str(key)))
            elif isinstance(value, list):
                stack.extend((item, f"{path}[{i}]") for i, item in enumerate(value))
            else:
                _check_text(value, f" at {path}" if path else "")
        return data


# --- errors -----------------------------------------------------------------------------------


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"code": code, "message": message, "details": details or {}}


def json_error(status: int, code: str, message: str, details: dict | None = None) -> HttpResponse:
    """An error response outside an operation (unknown path, method not allowed)."""
    return HttpResponse(
        json.dumps(error_body(code, message, details)),
        status=status,
        content_type="application/json",
    )


def error_path(loc: tuple | list) -> str:
    """ninja's error location -> ``steps[1].set_weight`` (without "body"/the parameter name)."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form"):
        source = parts.pop(0)
        if source == "body" and len(parts) >= 1:
            parts.pop(0)  # the view's parameter name (payload)
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _validation_errors(exc: ValidationError) -> list[dict]:
    errors = []
    for error in exc.errors:
        path = error_path(error.get("loc", ()))
        message = error.get("msg", "is invalid")
        if error.get("type") == "missing":
            message = "is required" if path else "a JSON body is required"
        elif not path and error.get("type") in ("model_attributes_type", "dict_type"):
            message = "the body must be a JSON object"
        elif error.get("type") == "extra_forbidden":
            message = "is not a known field"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        errors.append({"path": path, "message": message})
    return errors


def summarise(errors: list[dict], what: str = "The request is invalid") -> str:
    first = errors[0]
    where = f" at {first['path']}" if first["path"] else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{what}{where}: {first['message']}{more}."


def install_error_handlers(api) -> None:
    """Every non-2xx answer is ``{"code", "message", "details"}``; bad input is never a 5xx."""

    def respond(request, status, code, message, details=None):
        response = api.create_response(request, error_body(code, message, details), status=status)
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="switchyard"'
        return response

    @api.exception_handler(DomainError)
    def domain_error(request, exc: DomainError):
        return respond(request, exc.status, exc.code, exc.message, exc.details)

    @api.exception_handler(ValidationError)
    def validation_error(request, exc: ValidationError):
        errors = _validation_errors(exc)
        if not errors:  # pragma: no cover - ninja always lists at least one
            errors = [{"path": "", "message": "is invalid"}]
        return respond(request, 422, "invalid_request", summarise(errors), {"errors": errors})

    @api.exception_handler(AuthenticationError)
    def not_authenticated(request, exc: AuthenticationError):
        return respond(request, 401, "not_authenticated", NOT_AUTHENTICATED)

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        status = exc.status_code
        message = str(exc)
        if status == 400 and exc.__cause__ is not None:  # the body could not be parsed
            cause = exc.__cause__
            if isinstance(cause, RequestDataTooBig):
                return respond(request, 413, "request_too_large", "The request body is too large.")
            if isinstance(cause, RecursionError):
                detail = "it is nested too deeply"
            else:
                detail = str(cause)[:300]
            message = f"The request body could not be read as JSON: {detail}"
        elif status == 403 and "CSRF" in message:
            message = "CSRF check failed: send the csrftoken cookie's value in X-CSRFToken."
        return respond(request, status, STATUS_CODES.get(status, "error"), message)

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return respond(request, 404, "not_found", str(exc) or "Not found.")

    @api.exception_handler(ObjectDoesNotExist)
    def does_not_exist(request, exc):
        return respond(request, 404, "not_found", str(exc) or "Not found.")

    @api.exception_handler(RequestDataTooBig)
    def too_large(request, exc):
        return respond(request, 413, "request_too_large", "The request body is too large.")

    @api.exception_handler(SuspiciousOperation)
    def suspicious(request, exc):
        return respond(request, 400, "invalid_request", "The request was refused as malformed.")

    @api.exception_handler(OperationalError)
    def database_unavailable(request, exc):
        # Postgres refused or dropped the connection (every slot taken, the pool's wait run
        # out, a restart): a condition to retry on, not a bug (a write sent again with its
        # Idempotency-Key is done once)
        logger.warning("database unavailable for %s %s: %s", request.method, request.path, exc)
        response = respond(
            request,
            503,
            "unavailable",
            "The database is not taking connections just now. Retry in a moment.",
        )
        response["Retry-After"] = "1"
        return response

    @api.exception_handler(Exception)
    def unexpected(request, exc):
        logger.exception("unhandled error in %s %s", request.method, request.path)
        return respond(
            request,
            500,
            "internal_error",
            "Something went wrong on the server; it has been logged. Try again, and report it "
            "if it keeps happening.",
        )
