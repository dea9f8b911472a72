"""The error responses each operation really gives, written into the OpenAPI document.

The routers declare ``{codes_4xx: ErrorOut}`` (every 4xx, 402 and 418 included) because the
errors come from shared exception handlers, not from the views. :func:`truthful` replaces that
list, per operation, with the codes it can answer:

- 401 -- every operation (auth is on by default);
- 422 -- any operation that takes input (a parameter or a body): ``invalid_request`` /
  ``invalid_spec`` with ``details.errors[*].path``;
- 400 and 413 -- any operation with a body (not JSON, nested too deeply, a NUL; too large);
- 404 -- an operation with a path parameter, or whose body names objects that must exist;
- 403 -- every operation that changes something (a role or a token's scope may refuse it);
- 409 -- the operations listed in :data:`CONFLICTS` (a state, a duplicate, a freeze);
- 503 -- every operation (Postgres refused the connection: retry after ``Retry-After``).

Reading (``GET``) never answers 403: what a caller may not see is 404. Another API built on
these errors (the flags API) passes its own :class:`Rules`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from releases.api.schemas import ErrorOut

ERROR_REF = "#/components/schemas/ErrorOut"
REF_TEMPLATE = "#/components/schemas/{model}"
DESCRIPTIONS = {
    "400": "the body is not JSON we can store (malformed, nested too deeply, a NUL character)",
    "401": "no valid API token or session (`not_authenticated`)",
    "403": "the caller's role or the token's scopes do not allow it (`forbidden`)",
    "404": "no such object, or the caller may not see it (`not_found`)",
    "409": "the object's state, a duplicate or a freeze window stands in the way "
    "(`conflict`, `frozen`, `approval_required`)",
    "413": "the body is too large (`request_too_large`)",
    "422": "a field is invalid: `details.errors` lists each by path "
    "(`invalid_request`, `invalid_spec`)",
    "503": "the database is not taking connections just now (`unavailable`): retry after the "
    "`Retry-After` seconds",
}
# writes whose body names objects that must exist (beyond the path's)
BODY_LOOKUPS = {
    ("POST", "/deployments"),
    ("POST", "/freezes"),
    ("POST", "/roles"),
    ("POST", "/notifications/rules"),  # its channel
    ("POST", "/notifications/slack-links"),  # its Switchyard user
}
# operations that may answer 409 (paths relative to the API root; {x} matches any parameter)
CONFLICTS = {
    ("POST", "/services"),
    ("POST", "/environments"),
    ("PUT", "/services/{}/targets/{}"),
    ("POST", "/services/{}/releases"),
    ("POST", "/deployments"),
    ("POST", "/deployments/{}/promote"),
    ("POST", "/deployments/{}/pause"),
    ("POST", "/deployments/{}/resume"),
    ("POST", "/deployments/{}/abort"),
    ("POST", "/deployments/{}/rollback"),
    ("POST", "/deployments/{}/end-window"),
    ("POST", "/deployments/{}/retry"),
    ("POST", "/deployments/{}/approve"),
    ("POST", "/deployments/{}/reject"),
    ("POST", "/roles"),
    ("POST", "/analysis-templates"),
    ("DELETE", "/analysis-templates/{}"),
    ("POST", "/notifications/channels"),  # a channel's name is taken
    ("PATCH", "/notifications/channels/{}"),
    ("POST", "/notifications/channels/{}/test"),  # the channel is disabled
    ("POST", "/notifications/slack-links"),  # the Slack user is linked already
}
WRITES = ("POST", "PUT", "PATCH", "DELETE")
ANYONE = {("POST", "/strategies/validate")}  # no object, no role: never 403


def _shape(path: str, root: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path.removeprefix(root))


@dataclass(frozen=True)
class Rules:
    """What an API's operations may answer beyond what their shape says: those whose body
    names objects that must exist (404), those that can conflict (409), and codes every
    operation may give."""

    body_lookups: frozenset = frozenset(BODY_LOOKUPS)
    conflicts: frozenset = frozenset(CONFLICTS)
    always: frozenset = frozenset({"401", "503"})


RELEASES = Rules()


def error_codes(
    method: str, path: str, op: dict, root: str = "/api/v1", rules: Rules = RELEASES
) -> set[str]:
    key = (method, _shape(path, root))
    parameters = op.get("parameters") or []
    has_body = "requestBody" in op
    codes = set(rules.always)
    if parameters or has_body:
        codes.add("422")
    if has_body:
        codes |= {"400", "413"}
    if any(p.get("in") == "path" for p in parameters) or key in rules.body_lookups:
        codes.add("404")
    if method in WRITES and key not in ANYONE:
        codes.add("403")
    if key in rules.conflicts:
        codes.add("409")
    return codes


def truthful(schema: dict, root: str = "/api/v1", rules: Rules = RELEASES) -> dict:
    """``schema`` with each operation's 4xx responses replaced by those it really gives."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorOut" not in components:  # an API whose routers never named it (flags)
        components["ErrorOut"] = ErrorOut.model_json_schema(ref_template=REF_TEMPLATE)
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            for code in [c for c in responses if str(c).startswith(("4", "5"))]:
                del responses[code]
            for code in sorted(error_codes(method.upper(), path, op, root, rules)):
                responses[int(code)] = {  # (ninja keys responses by int)
                    "description": DESCRIPTIONS[code],
                    "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
                }
    return schema
