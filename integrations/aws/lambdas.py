"""The ``aws-lambda`` provider's ``Target``: a function's alias shifting between published versions.

    target = LambdaTarget("thumbs.prod", {"function_name": "thumbs", "alias": "live"})
    target.ensure_slot("green", ReleaseRef("1.4.2", {"s3_bucket": "b", "s3_key": "k.zip"}), 1)
    target.set_weights({"blue": 90, "green": 10})

A slot is an alias of its own (``switchyard-blue``, ``switchyard-green``) pointing at the version
that slot runs; its description records the release and the desired count the engine asked for
(Lambda scales by itself: a slot is ready when its version is ``Active``). A release's artifact
is code to publish -- ``{"s3_bucket", "s3_key", "s3_object_version"?}`` or ``{"image_uri"}`` --
or an already published ``{"function_version": "7"}``. Publishing is ``UpdateFunctionCode``, a
wait (bounded) for the update to land, then ``PublishVersion`` pinned to that code's SHA-256
with the release in its description; a version already published for the release is reused, so
a tick that dies midway is simply run again.

Routing is the traffic alias' (``alias``, default ``live``) ``FunctionVersion`` (the slot with
the most weight) and ``RoutingConfig.AdditionalVersionWeights`` (the other, as a fraction);
"even" (weights ``None``) splits by the slots' desired counts. Lambda allows one additional
version, which is all a stable/canary pair needs. Abort and rollback write the stable version
alone, with no additional weights.
"""

from __future__ import annotations

import json
from typing import Any

from integrations.aws import fencing
from integrations.aws.alb import percentages
from integrations.aws.config import options_for
from integrations.aws.errors import calling
from integrations.aws.session import client
from integrations.base import (
    InstanceStatus,
    IntegrationError,
    ReleaseRef,
    Routing,
    SlotStatus,
    TargetStatus,
)

SLOT_PREFIX = "switchyard-"
PUBLISH_WAIT = {"Delay": 1, "MaxAttempts": 20}  # at most ~20 s for an update to land
_active_versions: set[tuple] = set()  # (options, function, version) seen Active


class LambdaTarget:
    # the reconcile loop's fence (``integrations.aws.fencing``): kept in each alias' description
    fence: tuple[int, int] | None = None

    def __init__(self, key: str, config: dict[str, Any] | None, **settings: Any) -> None:
        self.key = key
        self.config = dict(config or {})
        self.options = options_for(self.config, settings)
        self.function = self.config.get("function_name", "")
        self.alias = self.config.get("alias") or "live"
        self.lam = client("lambda", self.options)

    # -- the Target protocol ------------------------------------------------------------------

    def ensure_slot(self, slot: str, release: ReleaseRef, replicas: int) -> None:
        aliases = self._aliases()
        current = aliases.get(SLOT_PREFIX + slot)
        if current is not None:
            note = _note(current)
            if note.get("release") == release.version:
                if note.get("replicas") != replicas:
                    self._point(
                        slot, current["FunctionVersion"], release.version, replicas, current
                    )
                return
        version = self._publish(release)
        self._point(slot, version, release.version, replicas, current)

    def set_weights(self, weights: dict[str, int] | None) -> None:
        aliases = self._aliases()
        slots = self._slots(aliases)
        if weights is None:
            desired = {s: info["replicas"] for s, info in slots.items() if info["replicas"]}
            weights = percentages(desired or dict.fromkeys(slots, 1))
        by_version: dict[str, int] = {}
        for slot, weight in weights.items():
            if weight <= 0:
                continue
            if slot not in slots:
                raise IntegrationError(
                    f"slot {slot!r} of function {self.function} runs no version yet: "
                    "it cannot take traffic",
                    permanent=True,
                )
            version = slots[slot]["version"]
            by_version[version] = by_version.get(version, 0) + int(weight)
        if not by_version:
            raise IntegrationError("weights send traffic nowhere", permanent=True)
        ranked = sorted(by_version.items(), key=lambda item: -item[1])
        if len(ranked) > 2:
            raise IntegrationError("a Lambda alias routes to two versions at most", permanent=True)
        primary = ranked[0][0]
        extra = {v: round(w / 100, 4) for v, w in ranked[1:]}
        request = {
            "FunctionName": self.function,
            "Name": self.alias,
            "FunctionVersion": primary,
            "RoutingConfig": {"AdditionalVersionWeights": extra},
        }
        current = aliases.get(self.alias)
        if current is not None:
            self._fenced(request, current, _note(current), self._alias_text())
            with calling("lambda", "UpdateAlias", self._alias_text()):
                self.lam.update_alias(**request)
        else:
            self._fenced(request, None, {}, self._alias_text())
            with calling("lambda", "CreateAlias", self._alias_text()):
                self.lam.create_alias(**request)

    def set_routing(self, routing: Routing) -> None:
        refused = [
            name
            for name, value in (
                ("preview", routing.preview_slot),
                ("header", routing.header),
                ("cookie", routing.cookie),
                ("sticky_key", routing.sticky_key),
            )
            if value
        ]
        if refused:
            raise IntegrationError(
                f"the aws-lambda provider cannot route by {', '.join(refused)}", permanent=True
            )
        self.set_weights(routing.weights)

    def status(self) -> TargetStatus:
        aliases = self._aliases()
        slots_info = self._slots(aliases)
        slots = {}
        for slot, info in slots_info.items():
            active = info["replicas"] > 0 and self._active(info["version"])
            instances = tuple(
                InstanceStatus(
                    id=f"{self.function}:{info['version']}#{i}",
                    slot=slot,
                    version=info["release"],
                    state="ready" if active else "starting",
                    ready_for=3600.0 if active else 0.0,
                )
                for i in range(info["replicas"])
            )
            slots[slot] = SlotStatus(
                name=slot, version=info["release"], desired=info["replicas"], instances=instances
            )
        weights = self._weights(aliases.get(self.alias), slots_info)
        return TargetStatus(
            endpoint=self.config.get("endpoint") or self._alias_text(),
            slots=slots,
            weights=weights,
            routing=Routing(weights=weights),
        )

    def remove_slot(self, slot: str) -> None:
        current = self._aliases().get(SLOT_PREFIX + slot)
        if current is None or not _note(current).get("replicas"):
            return
        note = _note(current)
        self._point(slot, current["FunctionVersion"], note.get("release", ""), 0, current)

    # -- helpers ------------------------------------------------------------------------------

    def _alias_text(self) -> str:
        return f"alias {self.alias} of function {self.function}"

    def _aliases(self) -> dict[str, dict[str, Any]]:
        with calling("lambda", "ListAliases", f"function {self.function}"):
            pages = self.lam.get_paginator("list_aliases").paginate(FunctionName=self.function)
            return {a["Name"]: a for page in pages for a in page.get("Aliases", [])}

    def _slots(self, aliases: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        slots = {}
        for name, alias in aliases.items():
            if not name.startswith(SLOT_PREFIX):
                continue
            note = _note(alias)
            slots[name[len(SLOT_PREFIX) :]] = {
                "version": alias["FunctionVersion"],
                "release": note.get("release"),
                "replicas": int(note.get("replicas") or 0),
            }
        return slots

    def _weights(self, alias: dict[str, Any] | None, slots: dict[str, dict]) -> dict[str, int]:
        out = dict.fromkeys(slots, 0)
        if alias is None:
            return out
        extra = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        shares = {v: round(100 * float(w)) for v, w in extra.items()}
        shares[alias["FunctionVersion"]] = 100 - sum(shares.values())
        for version, share in shares.items():
            holders = [s for s, info in slots.items() if info["version"] == version]
            if holders:  # two slots on one version: the first by name holds its traffic
                out[sorted(holders)[0]] += share
        return out

    def _active(self, version: str) -> bool:
        """Whether a published version is ``Active`` (remembered once it is: a version's code
        never changes, and one that went idle is made active again by its next invocation)."""
        key = (self.options, self.function, version)
        if key in _active_versions:
            return True
        with calling("lambda", "GetFunctionConfiguration", f"{self.function}:{version}"):
            answer = self.lam.get_function_configuration(
                FunctionName=self.function, Qualifier=version
            )
        active = answer.get("State", "Active") == "Active"
        if active:
            _active_versions.add(key)
        return active

    def _fenced(
        self, request: dict[str, Any], current: dict[str, Any] | None, note: dict, what: str
    ) -> None:
        """Refuse (``StaleFence``) when ``current`` records a newer fence; else record ours in
        the request's description and make the update conditional on the alias' revision."""
        if self.fence is None:
            return
        fencing.check(self.fence, _note(current or {}).get("fence"), what)
        request["Description"] = json.dumps({**note, "fence": fencing.text(self.fence)})
        if current is not None and current.get("RevisionId"):
            request["RevisionId"] = current["RevisionId"]

    def _point(
        self, slot: str, version: str, release: str, replicas: int, current: dict | None
    ) -> None:
        note = {"release": release, "replicas": replicas}
        request = {
            "FunctionName": self.function,
            "Name": SLOT_PREFIX + slot,
            "FunctionVersion": version,
            "Description": json.dumps(note),
        }
        what = f"alias {SLOT_PREFIX + slot} of function {self.function}"
        self._fenced(request, current, note, what)
        exists = current is not None
        if exists:
            with calling("lambda", "UpdateAlias", what):
                self.lam.update_alias(**request)
        else:
            with calling("lambda", "CreateAlias", what):
                self.lam.create_alias(**request)

    def _publish(self, release: ReleaseRef) -> str:
        artifact = dict(release.artifact or {})
        if artifact.get("function_version"):
            return str(artifact["function_version"])
        description = f"switchyard {release.version}"
        what = f"function {self.function}"
        with calling("lambda", "ListVersionsByFunction", what):
            pages = self.lam.get_paginator("list_versions_by_function").paginate(
                FunctionName=self.function
            )
            for page in pages:
                for version in page.get("Versions", []):
                    if version.get("Description") == description:
                        return version["Version"]  # published by an earlier tick
        code = _code_of(artifact, release.version)
        with calling("lambda", "UpdateFunctionCode", what):
            updated = self.lam.update_function_code(FunctionName=self.function, **code)
        with calling("lambda", "GetFunctionConfiguration", what):
            self.lam.get_waiter("function_updated_v2").wait(
                FunctionName=self.function, WaiterConfig=PUBLISH_WAIT
            )
        with calling("lambda", "PublishVersion", what):
            published = self.lam.publish_version(
                FunctionName=self.function,
                CodeSha256=updated["CodeSha256"],
                Description=description,
            )
        return published["Version"]


def _note(alias: dict[str, Any]) -> dict[str, Any]:
    try:
        note = json.loads(alias.get("Description") or "{}")
    except ValueError:
        return {}
    return note if isinstance(note, dict) else {}


def _code_of(artifact: dict[str, Any], version: str) -> dict[str, Any]:
    if artifact.get("image_uri"):
        return {"ImageUri": artifact["image_uri"]}
    if artifact.get("s3_bucket") and artifact.get("s3_key"):
        code = {"S3Bucket": artifact["s3_bucket"], "S3Key": artifact["s3_key"]}
        if artifact.get("s3_object_version"):
            code["S3ObjectVersion"] = artifact["s3_object_version"]
        return code
    raise IntegrationError(
        f"release {version} has no code: an aws-lambda release's artifact is "
        '{"s3_bucket": ..., "s3_key": ...}, {"image_uri": ...} or {"function_version": ...}',
        permanent=True,
    )
