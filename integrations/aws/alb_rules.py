"""Header and cookie rules on an ALB listener: requests carrying a header (or cookie) go to one
slot's target group whatever the weights (``Routing.header`` / ``cookie`` with the values
``always`` -> the canary, ``never`` -> the stable, and the named ``header_routes`` -> the canary).

Each is a listener rule with ``http-header`` conditions forwarding to the slot's target group, at
a priority in a band the target owns on the production listener: ``header_rule_priority`` (the
config's; default 40000) and the next ``BAND`` priorities. Rules in the band are Switchyard's:
written in order (header ``always``/``never``, cookie ``always``/``never``, then header routes in
name order), modified in place when they differ, and the ones left over deleted. When the target
routes through a listener rule (``rule_arn``), that rule's own conditions (its path or host) are
added to each, so the header rules cover the same requests.

What an ALB condition can say: a header's value exactly, or with the wildcards ``*`` / ``?``, case
insensitively. A header route's ``prefix`` is written as ``value*``; a ``regex`` cannot be
expressed and is refused (permanent). A cookie rule matches the ``Cookie`` header against
``*name=always*`` -- a wildcard match, so a cookie whose name ends with ``name`` matches too.
"""

from __future__ import annotations

from typing import Any

from integrations.aws.errors import calling
from integrations.base import IntegrationError, Routing

DEFAULT_PRIORITY = 40000
BAND = 20  # priorities the target owns: header_rule_priority .. header_rule_priority + 19


def wanted_rules(routing: Routing, group_of: dict[str, str]) -> list[tuple[list[dict], str]]:
    """(conditions, target group ARN) of each rule the routing needs, in priority order."""
    stable, canary = routing.stable_slot, routing.canary_slot
    if not stable or not canary or stable not in group_of or canary not in group_of:
        return []
    rules = []
    for value, slot in (("always", canary), ("never", stable)):
        if routing.header:
            rules.append(([_header(routing.header, [value])], group_of[slot]))
    for value, slot in (("always", canary), ("never", stable)):
        if routing.cookie:
            rules.append(([_header("Cookie", [f"*{routing.cookie}={value}*"])], group_of[slot]))
    for route in sorted(routing.header_routes or (), key=lambda r: str(r.get("name"))):
        conditions = []
        for match in route.get("match") or ():
            ((kind, text),) = dict(match["value"]).items()
            if kind == "regex":
                raise IntegrationError(
                    f"header route {route.get('name')!r}: an ALB rule cannot match a header by "
                    f"regular expression ({match['header']}: {text!r}); use exact or prefix",
                    permanent=True,
                )
            conditions.append(_header(match["header"], [text if kind == "exact" else f"{text}*"]))
        if conditions:
            rules.append((conditions, group_of[canary]))
    if len(rules) > BAND:
        raise IntegrationError(
            f"{len(rules)} header rules do not fit the {BAND} priorities a target owns",
            permanent=True,
        )
    return rules


def _header(name: str, values: list[str]) -> dict[str, Any]:
    return {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": name, "Values": values}}


class HeaderRules:
    """The header rules of one target on its production listener."""

    def __init__(self, elb, listener_arn: str, *, base_rule_arn: str | None, priority: int):
        self.elb = elb
        self.listener_arn = listener_arn
        self.base_rule_arn = base_rule_arn
        self.priority = priority
        self.what = f"the header rules of listener {listener_arn}"

    def apply(self, wanted: list[tuple[list[dict], str]]) -> None:
        """Make the band hold exactly these rules (no call beyond one read when it does)."""
        with calling("elasticloadbalancing", "DescribeRules", self.what):
            rules = self.elb.describe_rules(ListenerArn=self.listener_arn)["Rules"]
        band = range(self.priority, self.priority + BAND)
        ours = {int(r["Priority"]): r for r in rules if r["Priority"].isdigit()}
        ours = {p: r for p, r in ours.items() if p in band}
        base = self._base_conditions(rules) if wanted else []
        for i, (conditions, group) in enumerate(wanted):
            conditions = conditions + base
            action = [{"Type": "forward", "TargetGroupArn": group}]
            current = ours.pop(self.priority + i, None)
            if current is None:
                with calling("elasticloadbalancing", "CreateRule", self.what):
                    self.elb.create_rule(
                        ListenerArn=self.listener_arn,
                        Priority=self.priority + i,
                        Conditions=conditions,
                        Actions=action,
                    )
            elif (
                _conditions(current) != _conditions({"Conditions": conditions})
                or _target(current) != group
            ):
                with calling("elasticloadbalancing", "ModifyRule", self.what):
                    self.elb.modify_rule(
                        RuleArn=current["RuleArn"], Conditions=conditions, Actions=action
                    )
        for leftover in ours.values():
            with calling("elasticloadbalancing", "DeleteRule", self.what):
                self.elb.delete_rule(RuleArn=leftover["RuleArn"])

    def _base_conditions(self, rules: list[dict]) -> list[dict]:
        if not self.base_rule_arn:
            return []
        base = next((r for r in rules if r["RuleArn"] == self.base_rule_arn), None)
        if base is None:
            raise IntegrationError(
                f"the target's rule {self.base_rule_arn} is not on listener {self.listener_arn}",
                permanent=True,
            )
        return [
            {k: v for k, v in c.items() if k != "Values"}
            for c in base.get("Conditions") or []
            if c.get("Field") != "http-header"
        ]


def _conditions(rule: dict) -> list[tuple]:
    out = []
    for c in rule.get("Conditions") or []:
        header = c.get("HttpHeaderConfig") or {}
        values = tuple(header.get("Values") or c.get("Values") or ())
        for key in ("PathPatternConfig", "HostHeaderConfig"):
            values = values or tuple((c.get(key) or {}).get("Values") or ())
        out.append((c.get("Field"), str(header.get("HttpHeaderName", "")).lower(), values))
    return sorted(out)


def _target(rule: dict) -> str | None:
    for action in rule.get("Actions") or []:
        if action.get("Type") == "forward":
            groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
            return action.get("TargetGroupArn") or (groups[0]["TargetGroupArn"] if groups else None)
    return None
