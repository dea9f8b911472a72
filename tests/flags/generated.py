"""Generated features and contexts for the agreement tests: seeded, so every run checks the same
thousands of cases, and free of randomness on either side (every context has a userId or a
sessionId; variants stick on ``default``), so any disagreement is a real one."""

from __future__ import annotations

import random

OPS_VALUES = {
    "IN": lambda r: {"values": r.sample(["a", "b", "c", "A", "gold", "silver"], r.randint(0, 3))},
    "NOT_IN": lambda r: {"values": r.sample(["a", "b", "c", "gold"], r.randint(0, 2))},
    "STR_CONTAINS": lambda r: {"values": r.sample(["ol", "OL", "x", "il"], r.randint(1, 2))},
    "STR_STARTS_WITH": lambda r: {"values": r.sample(["go", "Go", "si", "b"], r.randint(1, 2))},
    "STR_ENDS_WITH": lambda r: {"values": r.sample(["ld", "LD", "er", "c"], r.randint(1, 2))},
    "NUM_EQ": lambda r: {"value": r.choice(["3", "3.0", "-1", "10"])},
    "NUM_GT": lambda r: {"value": r.choice(["3", "0", "-2.5", "7"])},
    "NUM_GTE": lambda r: {"value": r.choice(["3", "0", "7"])},
    "NUM_LT": lambda r: {"value": r.choice(["3", "0.5", "7"])},
    "NUM_LTE": lambda r: {"value": r.choice(["3", "-1", "7"])},
    "DATE_AFTER": lambda r: {"value": r.choice(["2026-01-01T00:00:00Z", "2030-06-01T12:00:00Z"])},
    "DATE_BEFORE": lambda r: {"value": r.choice(["2026-01-01T00:00:00Z", "2030-06-01T12:00:00Z"])},
    "SEMVER_EQ": lambda r: {"value": r.choice(["1.2.3", "2.0.0-beta.1", "1.2.3+build.5"])},
    "SEMVER_GT": lambda r: {"value": r.choice(["1.2.3", "2.0.0-alpha", "0.9.0"])},
    "SEMVER_LT": lambda r: {"value": r.choice(["1.2.3", "2.0.0", "1.10.0"])},
}
FIELD_FOR = {
    "IN": ["plan", "userId", "region"],
    "NOT_IN": ["plan", "region", "missing"],
    "STR_CONTAINS": ["plan", "email"],
    "STR_STARTS_WITH": ["plan", "email"],
    "STR_ENDS_WITH": ["plan", "email"],
    "NUM": ["age", "plan"],
    "DATE": ["currentTime", "signup"],
    "SEMVER": ["version"],
}


def _field(r, op):
    for prefix in ("NUM", "DATE", "SEMVER"):
        if op.startswith(prefix):
            return r.choice(FIELD_FOR[prefix])
    return r.choice(FIELD_FOR[op])


def constraint(r):
    op = r.choice(list(OPS_VALUES))
    c = {"contextName": _field(r, op), "operator": op, **OPS_VALUES[op](r)}
    c["values"] = c.get("values", [])
    c["inverted"] = r.random() < 0.25
    c["caseInsensitive"] = r.random() < 0.3
    return c


def variants(r, prefix="v"):
    count = r.randint(2, 4)
    weights = [1000 // count] * count
    weights[0] += 1000 - sum(weights)
    if r.random() < 0.5:  # uneven splits too
        weights = [100, 900] if count == 2 else weights
    out = []
    for i, w in enumerate(weights):
        v = {"name": f"{prefix}{i}", "weight": w, "weightType": "variable", "stickiness": "default"}
        v["payload"] = {"type": "string", "value": f"{prefix}-{i}"}
        if i == 1 and r.random() < 0.3:
            v["overrides"] = [{"contextName": "userId", "values": ["u1", "u2"]}]
        out.append(v)
    return out


def strategy(r, name, segment_ids):
    kind = r.choice(
        ["flexibleRollout", "flexibleRollout", "default", "userWithId", "remoteAddress"]
    )
    s = {"name": kind, "parameters": {}, "constraints": [], "segments": [], "variants": []}
    if kind == "flexibleRollout":
        s["parameters"] = {
            "rollout": str(r.choice([0, 1, 10, 33, 50, 90, 100])),
            "stickiness": r.choice(["default", "default", "userId", "sessionId", "tenant"]),
            "groupId": r.choice([name, "shared-group"]),
        }
    elif kind == "userWithId":
        s["parameters"] = {"userIds": ", ".join(r.sample(["u1", "u2", "u3", "u7", "u42"], 2))}
    elif kind == "remoteAddress":
        s["parameters"] = {"IPs": r.choice(["10.0.0.0/8", "192.168.1.7, 10.1.2.3", "::1"])}
    s["constraints"] = [constraint(r) for _ in range(r.choice([0, 0, 1, 2]))]
    if segment_ids and r.random() < 0.3:
        s["segments"] = [r.choice(segment_ids)]
    if r.random() < 0.3:
        s["variants"] = variants(r, prefix="s")
    return s


def payload(seed=14, features=40):
    r = random.Random(seed)
    segments = [
        {
            "id": 1,
            "name": "internal",
            "constraints": [
                {
                    "contextName": "email",
                    "operator": "STR_ENDS_WITH",
                    "values": ["@example.com"],
                    "inverted": False,
                    "caseInsensitive": True,
                }
            ],
        },
        {"id": 2, "name": "beta", "constraints": [constraint(r)]},
    ]
    out = []
    for i in range(features):
        name = f"flag-{i}"
        f = {
            "name": name,
            "type": "release",
            "enabled": r.random() < 0.85,
            "project": "default",
            "stale": False,
            "impressionData": False,
            "strategies": [strategy(r, name, [1, 2]) for _ in range(r.choice([0, 1, 1, 2, 3]))],
            "variants": variants(r) if r.random() < 0.4 else [],
        }
        out.append(f)
    return {"version": 2, "features": out, "segments": segments}


def contexts(seed=41, count=2000):
    r = random.Random(seed)
    for i in range(count):
        c = {"appName": "agreement", "environment": "default"}
        roll = r.random()
        if roll < 0.8:
            c["userId"] = r.choice(["u1", "u2", "u7"]) if r.random() < 0.1 else f"user-{i}"
        if roll >= 0.6:
            c["sessionId"] = f"s-{r.randint(0, 10**6)}"
        if r.random() < 0.4:
            c["remoteAddress"] = r.choice(["10.4.5.6", "192.168.1.7", "172.16.0.1", "::1"])
        c["currentTime"] = r.choice(
            ["2025-06-01T00:00:00Z", "2027-03-04T05:06:07+00:00", "2031-01-01T00:00:00.5Z"]
        )
        props = {}
        if r.random() < 0.9:
            props["tenant"] = f"t{r.randint(0, 50)}"
        for key, choices in {
            "plan": ["gold", "Gold", "silver", "bronze", "a", "3", "3.0", ""],
            "email": ["ann@example.com", "bob@EXAMPLE.com", "eve@other.org", "gil@old.io"],
            "region": ["a", "b", "c", "eu"],
            "age": ["3", "7", "-1", "2.5", "10", "x", "1e1", "inf"],
            "signup": ["2025-12-31T23:59:59Z", "2030-06-01T12:00:00+02:00", "yesterday"],
            "version": [
                "1.2.3",
                "1.2.3+build.5",
                "1.2.3+build.10",
                "2.0.0-beta.1",
                "2.0.0-alpha",
                "2.0.0",
                "1.10.0",
                "1.2",
                "v1.2.3",
            ],
        }.items():
            if r.random() < 0.75:
                props[key] = r.choice(choices)
        c["properties"] = props
        yield c


def wait_for(condition, timeout=15.0, every=0.05):
    """Poll ``condition`` until it holds (a bound, not a timing assertion)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"not true within {timeout} s: {condition}")
