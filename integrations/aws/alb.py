"""An Application Load Balancer listener's (or listener rule's) weighted forward.

Routing by slot weight is the forward action's ``ForwardConfig.TargetGroups``: one target group
per slot, weights 0..100 summing to 100. "Evenly over every instance" (weights ``None``, what a
rolling update asks for) is written as weights proportional to each slot's desired count and
remembered by a tag on the listener or rule (``switchyard:weights`` = ``even``), so later scale
changes re-balance it and ``status`` reports ``None`` as the engine wrote it.
"""

from __future__ import annotations

from typing import Any

from integrations.aws import fencing
from integrations.aws.errors import calling

EVEN_TAG = "switchyard:weights"


class Forward:
    """The weighted forward of one listener or rule."""

    def __init__(self, elb, *, listener_arn: str | None = None, rule_arn: str | None = None):
        self.elb = elb
        self.listener_arn = listener_arn
        self.rule_arn = rule_arn
        self.arn = rule_arn or listener_arn
        self.what = f"listener rule {rule_arn}" if rule_arn else f"listener {listener_arn}"

    def read(self) -> dict[str, int]:
        """Target group ARN -> weight, as the load balancer has it now."""
        if self.rule_arn:
            with calling("elasticloadbalancing", "DescribeRules", self.what):
                actions = self.elb.describe_rules(RuleArns=[self.rule_arn])["Rules"][0]["Actions"]
        else:
            with calling("elasticloadbalancing", "DescribeListeners", self.what):
                listener = self.elb.describe_listeners(ListenerArns=[self.listener_arn])
            actions = listener["Listeners"][0]["DefaultActions"]
        return forward_weights(actions)

    def write(self, weights: dict[str, int], fence: tuple[int, int] | None = None) -> None:
        """Forward by these target group weights (every target group named, zeros included);
        refused (``StaleFence``) when the listener or rule records a newer ``fence``."""
        self.claim(fence)
        action = {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [
                    {"TargetGroupArn": arn, "Weight": int(w)} for arn, w in weights.items()
                ],
                "TargetGroupStickinessConfig": {"Enabled": False},
            },
        }
        if self.rule_arn:
            with calling("elasticloadbalancing", "ModifyRule", self.what):
                self.elb.modify_rule(RuleArn=self.rule_arn, Actions=[action])
        else:
            with calling("elasticloadbalancing", "ModifyListener", self.what):
                self.elb.modify_listener(ListenerArn=self.listener_arn, DefaultActions=[action])

    def tags(self) -> dict[str, str]:
        with calling("elasticloadbalancing", "DescribeTags", self.what):
            described = self.elb.describe_tags(ResourceArns=[self.arn])["TagDescriptions"]
        return {t["Key"]: t["Value"] for d in described for t in d.get("Tags", [])}

    def is_even(self) -> bool:
        return self.tags().get(EVEN_TAG) == "even"

    def claim(self, fence: tuple[int, int] | None) -> None:
        """Refuse an older ``fence`` than the listener's (or rule's) tag records; record a
        newer one before the write it fences (``integrations.aws.fencing``)."""
        if fence is None:
            return
        if fencing.check(fence, self.tags().get(fencing.FENCE_TAG), self.what):
            with calling("elasticloadbalancing", "AddTags", self.what):
                self.elb.add_tags(
                    ResourceArns=[self.arn],
                    Tags=[{"Key": fencing.FENCE_TAG, "Value": fencing.text(fence)}],
                )

    def mark(self, even: bool) -> None:
        with calling("elasticloadbalancing", "AddTags", self.what):
            self.elb.add_tags(
                ResourceArns=[self.arn],
                Tags=[{"Key": EVEN_TAG, "Value": "even" if even else "explicit"}],
            )


def forward_weights(actions: list[dict[str, Any]]) -> dict[str, int]:
    """Target group ARN -> weight of the forward among ``actions`` (a plain ``TargetGroupArn``
    forward is 100% to it; no forward action is no weights)."""
    for action in actions:
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
        if groups:
            return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
        if action.get("TargetGroupArn"):
            return {action["TargetGroupArn"]: 100}
    return {}


def percentages(raw: dict[str, int]) -> dict[str, int]:
    """ALB weights (0..999 each) as percentages summing to 100 (largest remainder)."""
    total = sum(raw.values())
    if total <= 0:
        return {key: 0 for key in raw}
    exact = {key: 100 * w / total for key, w in raw.items()}
    shares = {key: int(v) for key, v in exact.items()}
    left = 100 - sum(shares.values())
    for key in sorted(exact, key=lambda k: exact[k] - shares[k], reverse=True)[:left]:
        shares[key] += 1
    return shares
