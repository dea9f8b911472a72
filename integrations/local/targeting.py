"""Which slot a request asks for: header/cookie overrides and sticky placement by a user key.

The routing (``integrations.base.Routing``) is compiled once when it is set into ``Rules``, which
the router reads once per request (a new ``Rules`` object replaces the old one whole, so a request
never sees half of a change):

1. ``header`` (then ``cookie``) with value ``always`` asks for ``canary_slot``, ``never`` for
   ``stable_slot`` (case-insensitive; any other value is ignored);
2. with ``sticky_key`` (``header:NAME`` or ``cookie:NAME``) and weights set, a request carrying
   the key is placed by a hash of its value into [0, 100): below the canary slot's weight it asks
   for ``canary_slot``, otherwise for ``stable_slot``. The point of a key never moves, so while the
   canary weight only grows, the keys on the canary only grow (and the same for stable while it
   shrinks);
3. a request matching every header match of one of ``header_routes`` (exact, prefix or a
   regular expression over the whole value) asks for ``canary_slot``;
4. anything else asks for nothing: the balancer picks a slot by weight.

The hash is not salted per target: a user placed on the canary of one service at 5% is placed on
the canary of every service at 5% or more (one cohort of dogfooders, not a different one each time).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from integrations.base import Routing
from integrations.local.mirroring import compile_routes

ALWAYS, NEVER = "always", "never"
_SCALE = 100 / float(1 << 64)


def sticky_point(value: str) -> float:
    """Where a user key falls in [0, 100): the same key always falls on the same point."""
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") * _SCALE


class Rules:
    """A routing, ready for the router: what each request asks for, decided in a few lookups."""

    __slots__ = (
        "routing",
        "weights",
        "_header",
        "_cookie",
        "_sticky_header",
        "_sticky_cookie",
        "_canary_weight",
        "_header_routes",
        "_targeted",
        "mirrors",
    )

    def __init__(self, routing: Routing) -> None:
        self.routing = routing
        self.weights = routing.weights
        self._header = routing.header
        self._cookie = routing.cookie
        kind, _, name = (routing.sticky_key or "").partition(":")
        sticky = routing.sticky_key is not None and routing.weights is not None
        self._sticky_header = name if sticky and kind == "header" else None
        self._sticky_cookie = name if sticky and kind == "cookie" else None
        weights = routing.weights or {}
        self._canary_weight = weights.get(routing.canary_slot or "", 0)
        self._header_routes = [_compile(route) for route in routing.header_routes or ()]
        self._targeted = bool(self._header or self._cookie or sticky or self._header_routes)
        self.mirrors = compile_routes(routing.mirror_routes) if routing.canary_slot else ()

    @property
    def uses_cookies(self) -> bool:
        return bool(self._cookie or self._sticky_cookie)

    def preferred_slot(
        self, headers: Mapping[str, str], cookies: Mapping[str, str] | None
    ) -> str | None:
        """The slot this request asks for, or None to go by weight. ``headers`` must look names
        up case-insensitively; ``cookies`` is only read when ``uses_cookies``."""
        if not self._targeted:
            return None
        routing = self.routing
        for value in (
            headers.get(self._header) if self._header else None,
            cookies.get(self._cookie) if self._cookie and cookies is not None else None,
        ):
            if value:
                value = value.strip().lower()
                if value == ALWAYS:
                    return routing.canary_slot
                if value == NEVER:
                    return routing.stable_slot
        for matches in self._header_routes:
            if all(test(headers.get(name)) for name, test in matches):
                return routing.canary_slot
        key = None
        if self._sticky_header:
            key = headers.get(self._sticky_header)
        elif self._sticky_cookie and cookies is not None:
            key = cookies.get(self._sticky_cookie)
        if key:
            key = key.strip()
        if not key:
            return None
        if sticky_point(key) < self._canary_weight:
            return routing.canary_slot
        return routing.stable_slot


def _compile(route: dict) -> list[tuple[str, object]]:
    """A header route as (header name, test of its value) pairs, all of which must pass."""
    out = []
    for match in route.get("match") or ():
        ((kind, text),) = match["value"].items()
        if kind == "exact":
            out.append((match["header"], lambda v, t=text: v == t))
        elif kind == "prefix":
            out.append((match["header"], lambda v, t=text: v is not None and v.startswith(t)))
        else:
            pattern = re.compile(text)
            out.append(
                (match["header"], lambda v, p=pattern: v is not None and bool(p.fullmatch(v)))
            )
    return out
