"""The ``aws-route53`` provider's ``Target``: DNS-level blue-green and canary on weighted records.

    target = Route53Target("web.prod", {
        "hosted_zone_id": "Z123", "record_name": "www.example.com", "ttl": 60,
        "slots": {"blue": {"value": "blue.example.com"}, "green": {"value": "green.example.com"}},
    })
    target.set_weights({"blue": 90, "green": 10})

Each slot is a weighted record set of ``record_name`` (``SetIdentifier`` = ``switchyard-<slot>``)
whose value is where that slot's release already runs: the slot's configured ``value``, or the
release artifact's ``{"value": "..."}`` (a per-release hostname or address). Route 53 runs
nothing, so ``ensure_slot`` only records which release a slot serves, and its desired count, in a
TXT record beside it (``_switchyard-<slot>.<record_name>``), and points the slot's record at the
value. A slot is ready when its record exists (and, with a ``health_check_id`` in its config,
when Route 53's health checkers say so). Weights are the records' ``Weight`` (0..100);
changes are UPSERTs in one change batch. A DNS switch is not instant: resolvers keep the old
answer for up to the record's TTL (``ttl``, default 60 s), which ``status`` reports in its
endpoint's text, which the deployment page shows beside its slots
(``dns://www.example.com (TTL 60s: resolvers may keep the old answer that long after a change)``).
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

PREFIX = "switchyard-"
TTL_NOTE = "resolvers may keep the old answer that long after a change"


class Route53Target:
    # the reconcile loop's fence (``integrations.aws.fencing``): a TXT record beside the slots'
    fence: tuple[int, int] | None = None

    def __init__(self, key: str, config: dict[str, Any] | None, **settings: Any) -> None:
        self.key = key
        self.config = dict(config or {})
        self.options = options_for(self.config, settings)
        self.zone = self.config.get("hosted_zone_id", "")
        self.name = self.config.get("record_name", "").rstrip(".") + "."
        self.type = self.config.get("record_type", "CNAME")
        self.ttl = int(self.config.get("ttl", 60))
        self.slots: dict[str, dict[str, str]] = dict(self.config.get("slots") or {})
        self.r53 = client("route53", self.options)

    def ensure_slot(self, slot: str, release: ReleaseRef, replicas: int) -> None:
        self._slot(slot)
        records = self._records()
        value = (release.artifact or {}).get("value") or self.slots[slot].get("value")
        note = {"release": release.version, "replicas": replicas}
        current = records["weighted"].get(slot)
        changes = []
        if records["notes"].get(slot) != note:
            changes.append(self._note_change(slot, note))
        if current is None or current["value"] != value:
            weight = current["weight"] if current else 0
            changes.append(self._weighted_change(slot, value, weight))
        self._change(changes)

    def set_weights(self, weights: dict[str, int] | None) -> None:
        records = self._records()
        if weights is None:
            desired = {s: n.get("replicas", 0) for s, n in records["notes"].items()}
            weights = percentages(
                {s: d for s, d in desired.items() if d} or dict.fromkeys(records["weighted"], 1)
            )
        changes = []
        for slot in self.slots:
            weight = int(weights.get(slot, 0))
            current = records["weighted"].get(slot)
            if current is None:
                if weight:
                    raise IntegrationError(
                        f"slot {slot!r} of {self.name} has no record yet: it cannot take traffic",
                        permanent=True,
                    )
                continue
            if current["weight"] != weight:
                changes.append(self._weighted_change(slot, current["value"], weight))
        self._change(changes)

    def set_routing(self, routing: Routing) -> None:
        if routing.preview_slot or routing.header or routing.cookie or routing.sticky_key:
            raise IntegrationError("the aws-route53 provider routes by weight only", permanent=True)
        self.set_weights(routing.weights)

    def status(self) -> TargetStatus:
        records = self._records()
        slots = {}
        for slot in self.slots:
            note = records["notes"].get(slot) or {}
            desired = int(note.get("replicas") or 0)
            exists = slot in records["weighted"]
            healthy = exists and self._healthy(slot)
            state = "ready" if healthy else "starting"
            slots[slot] = SlotStatus(
                name=slot,
                version=note.get("release"),
                desired=desired,
                instances=tuple(
                    InstanceStatus(
                        id=f"{PREFIX}{slot}#{i}",
                        slot=slot,
                        version=note.get("release") or "",
                        state=state,
                        ready_for=3600.0 if healthy else 0.0,
                        address=records["weighted"].get(slot, {}).get("value", ""),
                    )
                    for i in range(desired)
                ),
            )
        weights = percentages(
            {s: records["weighted"].get(s, {}).get("weight", 0) for s in self.slots}
        )
        return TargetStatus(
            endpoint=f"dns://{self.name.rstrip('.')} (TTL {self.ttl}s: {TTL_NOTE})",
            slots=slots,
            weights=weights,
            routing=Routing(weights=weights),
        )

    def remove_slot(self, slot: str) -> None:
        records = self._records()
        note = records["notes"].get(slot)
        if note and note.get("replicas"):
            self._change([self._note_change(slot, {**note, "replicas": 0})])

    # -- helpers ------------------------------------------------------------------------------

    def _slot(self, slot: str) -> None:
        if slot not in self.slots:
            known = ", ".join(sorted(self.slots))
            raise IntegrationError(
                f"slot {slot!r} is not in the target's config (its slots: {known})",
                permanent=True,
            )

    def _records(self) -> dict[str, dict[str, Any]]:
        weighted: dict[str, dict[str, Any]] = {}
        notes: dict[str, dict[str, Any]] = {}
        fence: dict[str, Any] | None = None
        note_names = {self._note_name(s): s for s in self.slots}
        what = f"hosted zone {self.zone}"
        with calling("route53", "ListResourceRecordSets", what):
            pages = self.r53.get_paginator("list_resource_record_sets").paginate(
                HostedZoneId=self.zone
            )
            sets = [r for page in pages for r in page.get("ResourceRecordSets", [])]
        for record in sets:
            name = record["Name"]
            ident = record.get("SetIdentifier", "")
            if name == self.name and record["Type"] == self.type and ident.startswith(PREFIX):
                weighted[ident[len(PREFIX) :]] = {
                    "weight": int(record.get("Weight", 0)),
                    "value": (record.get("ResourceRecords") or [{}])[0].get("Value", ""),
                }
            elif name == self._fence_name() and record["Type"] == "TXT":
                fence = record
            elif name in note_names and record["Type"] == "TXT":
                raw = (record.get("ResourceRecords") or [{}])[0].get("Value", '""')
                try:
                    notes[note_names[name]] = json.loads(json.loads(raw))
                except ValueError:
                    pass
        self._fence_record = fence
        return {"weighted": weighted, "notes": notes}

    def _fence_name(self) -> str:
        return f"_{PREFIX}fence.{self.name}"

    def _fence_changes(self) -> list[dict[str, Any]]:
        """Refuse (``StaleFence``) when the fence record (read by the ``_records`` before this
        change) holds a newer fence; else the batch's first change writes ours: a CREATE when
        there was none (the batch, applied all or nothing, then fails if another tick created it
        meanwhile), else an UPSERT. (A DELETE-as-read + CREATE pair would make every change
        conditional on Route 53, but moto refuses that pair, so it could not be tested: the
        check-then-write window is one round trip, as for the ALB's tags.)"""
        if self.fence is None:
            return []
        current = getattr(self, "_fence_record", None)
        raw = ((current or {}).get("ResourceRecords") or [{}])[0].get("Value", '""')
        try:
            recorded = json.loads(raw)
        except ValueError:
            recorded = None
        fencing.check(self.fence, recorded, f"{self.name} in zone {self.zone}")
        record = {
            "Name": self._fence_name(),
            "Type": "TXT",
            "TTL": self.ttl,
            "ResourceRecords": [{"Value": json.dumps(fencing.text(self.fence))}],
        }
        return [{"Action": "UPSERT" if current else "CREATE", "ResourceRecordSet": record}]

    def _note_name(self, slot: str) -> str:
        return f"_{PREFIX}{slot}.{self.name}"

    def _note_change(self, slot: str, note: dict[str, Any]) -> dict[str, Any]:
        text = json.dumps(json.dumps(note, separators=(",", ":")))
        return {
            "Action": "UPSERT",
            "ResourceRecordSet": {
                "Name": self._note_name(slot),
                "Type": "TXT",
                "TTL": self.ttl,
                "ResourceRecords": [{"Value": text}],
            },
        }

    def _weighted_change(self, slot: str, value: str, weight: int) -> dict[str, Any]:
        record: dict[str, Any] = {
            "Name": self.name,
            "Type": self.type,
            "SetIdentifier": PREFIX + slot,
            "Weight": weight,
            "TTL": self.ttl,
            "ResourceRecords": [{"Value": value}],
        }
        check = self.slots[slot].get("health_check_id")
        if check:
            record["HealthCheckId"] = check
        return {"Action": "UPSERT", "ResourceRecordSet": record}

    def _change(self, changes: list[dict[str, Any]]) -> None:
        if not changes:
            return
        changes = [*self._fence_changes(), *changes]
        with calling("route53", "ChangeResourceRecordSets", f"{self.name} in zone {self.zone}"):
            self.r53.change_resource_record_sets(
                HostedZoneId=self.zone,
                ChangeBatch={"Comment": f"switchyard {self.key}", "Changes": changes},
            )

    def _healthy(self, slot: str) -> bool:
        check = self.slots[slot].get("health_check_id")
        if not check:
            return True
        with calling("route53", "GetHealthCheckStatus", f"health check {check}"):
            answer = self.r53.get_health_check_status(HealthCheckId=check)
        observations = answer.get("HealthCheckObservations") or []
        return (
            any(
                o.get("StatusReport", {}).get("Status", "").startswith("Success")
                for o in observations
            )
            or not observations
        )
