"""HTTP calls to a provider's API, with failures said the same way everywhere.

:func:`send` makes the request (on a shared client or alone) and turns a transport failure into a
transient ``IntegrationError`` that names the server and the call: not answering (refused or
unreachable: is it running?), too slow (read timeout), broken off. :func:`refused` maps an
unsuccessful answer: 401/403 refused credentials (permanent), 5xx failing (transient), other 4xx
refused (permanent); callers check their own special answers first (a 404 that means "create it
again", Prometheus' ``bad_data``). :func:`json_of` reads a body, or says it was not JSON.

A call without a shared client verifies TLS with one SSL context built once per process
(:func:`ssl_context`, httpx's default): httpx would otherwise build a fresh one per call, which
reads the whole CA bundle -- 20 ms idle, 300 ms on a loaded machine, paid even for plain-HTTP
loopback URLs (the local provider reads the fleet's counters this way at every look of every
metric; ``bench/analysis.py --mode real`` found it to be most of a look).
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx

from integrations.base import IntegrationError


def send(
    client: httpx.Client | None,
    method: str,
    url: str,
    *,
    where: str,
    what: str,
    hint: str = "",
    timeout: httpx.Timeout | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """``where`` names the server ("the fleet agent at http://…"), ``what`` the call ("GET /x");
    ``hint`` is added when it does not answer (what to check)."""
    if timeout is not None:
        kwargs["timeout"] = timeout
    try:
        if client is not None:
            return client.request(method, url, **kwargs)
        return httpx.request(method, url, verify=ssl_context(), **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise IntegrationError(
            f"{where} is not answering{': ' + hint if hint else ''} ({type(exc).__name__}: {exc})",
            permanent=False,
        ) from exc
    except httpx.TimeoutException as exc:
        seconds = (timeout or getattr(client, "timeout", None) or httpx.Timeout(5.0)).read
        raise IntegrationError(
            f"{where} did not answer {what} within {seconds:g}s: is it overloaded or stuck?",
            permanent=False,
        ) from exc
    except httpx.HTTPError as exc:
        raise IntegrationError(
            f"{where} broke off {what}: {type(exc).__name__}: {exc}", permanent=False
        ) from exc


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR),
    built on first use and shared by every call that has no client of its own."""
    return httpx.create_ssl_context()


def refused(response: httpx.Response, *, where: str, what: str, detail: str = "") -> None:
    """Raise for an unsuccessful answer (``detail``: the server's own message, if it gave one)."""
    if response.is_success:
        return
    code = response.status_code
    said = detail or response.text.strip()[:300] or f"HTTP {code}"
    if code in (401, 403):
        raise IntegrationError(
            f"{where} refused the token for {what} (HTTP {code})", permanent=True
        )
    if code >= 500:
        raise IntegrationError(f"{where} failed on {what}: {said}", permanent=False)
    raise IntegrationError(f"{where} refused {what}: {said}", permanent=True)


def json_of(response: httpx.Response, *, where: str, what: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise IntegrationError(f"{where} sent invalid JSON for {what}", permanent=False) from exc
